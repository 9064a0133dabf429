//! The hub transports `config.json` may name (`hub.transports`), by their SignalR names
//! (TransportProtocols.md): the widget maps them onto its SignalR client's transports.

/// A SignalR transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// `WebSockets`.
    WebSockets,
    /// `ServerSentEvents`.
    ServerSentEvents,
    /// `LongPolling`.
    LongPolling,
}

impl Transport {
    /// Every transport, in the order SignalR prefers them.
    pub const ALL: [Transport; 3] = [
        Transport::WebSockets,
        Transport::ServerSentEvents,
        Transport::LongPolling,
    ];

    /// The SignalR name.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::WebSockets => "WebSockets",
            Transport::ServerSentEvents => "ServerSentEvents",
            Transport::LongPolling => "LongPolling",
        }
    }

    /// Reads a SignalR name, exactly as spelled; `None` for anything else.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// The transports `names` lists, in its order; unknown names are left out.
pub fn transports<S: AsRef<str>>(names: &[S]) -> Vec<Transport> {
    names
        .iter()
        .filter_map(|n| Transport::from_name(n.as_ref()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in Transport::ALL {
            assert_eq!(Transport::from_name(t.as_str()), Some(t));
        }
    }

    #[test]
    fn the_list_keeps_its_order_and_drops_unknown_names() {
        assert_eq!(
            transports(&["LongPolling", "Carrier pigeon", "WebSockets"]),
            vec![Transport::LongPolling, Transport::WebSockets]
        );
        assert_eq!(transports(&["websockets"]), vec![]);
        assert_eq!(transports::<&str>(&[]), vec![]);
    }
}
