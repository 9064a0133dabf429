//! The running sessions as routes find them by connection token: [`SessionHandle`] (transport
//! kind, control channel, POST and poll queues of [`crate::connection`]). The hub state keeps
//! them as [`crate::hub::Session`]s and names no transport; this module gives them back to the
//! transports ([`crate::transport`]).

use std::any::Any;
use std::sync::Arc;

use axum::body::Bytes;

use crate::connection::{Control, Frame, TransportKind};
use crate::hub::{ConnectionInfo, Hub, Session, SessionRequest};
use crate::metrics::TransportLabel;

/// A running session, as routes find it by connection token (see [`crate::connection`]).
#[derive(Debug, Clone)]
pub(crate) struct SessionHandle {
    pub info: ConnectionInfo,
    pub transport: TransportKind,
    pub control: flume::Sender<Control>,
    /// SSE and long polling: where POST bodies go.
    pub inbound: Option<flume::Sender<Bytes>>,
    /// Long polling: the frames waiting for the next poll.
    pub poll: Option<Arc<tokio::sync::Mutex<flume::Receiver<Frame>>>>,
}

impl Session for SessionHandle {
    fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    fn tell(&self, request: SessionRequest) -> bool {
        let control = match request {
            SessionRequest::DropTransport => Control::Drop,
            SessionRequest::Overflow => Control::Overflow,
        };
        self.control.try_send(control).is_ok()
    }
}

impl Hub {
    /// Records a running session under its connection token.
    pub(crate) fn add_session(&self, token: &str, handle: SessionHandle) {
        self.store_session(token, Arc::new(handle));
    }

    /// The running session of a connection token.
    pub(crate) fn session(&self, token: &str) -> Option<SessionHandle> {
        let session: Arc<dyn Any + Send + Sync> = self.stored_session(token)?;
        session.downcast_ref::<SessionHandle>().cloned()
    }
}

impl TransportLabel for TransportKind {
    fn transport_label(self) -> &'static str {
        match self {
            TransportKind::WebSockets => "websockets",
            TransportKind::ServerSentEvents => "sse",
            TransportKind::LongPolling => "longpolling",
        }
    }
}
