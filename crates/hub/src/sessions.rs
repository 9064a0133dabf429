//! The running sessions as routes find them by connection token: [`SessionHandle`] (who it is,
//! transport kind, mailbox, POST and poll queues of [`crate::connection`]). The hub state keeps
//! them as [`crate::hub::Session`]s and names no transport; this module gives them back to the
//! transports ([`crate::transport`]).

use std::any::Any;
use std::sync::Arc;

pub(crate) use crate::connection::SessionHandle;
use crate::connection::{Control, TransportKind};
use crate::hub::{ConnectionInfo, Hub, OUTBOX_CAPACITY, Outbound, Session, SessionRequest};
use crate::mailbox::Refused;
use crate::metrics::TransportLabel;

/// Control requests queued for one session at most ([`Session::tell`]).
pub(crate) const CONTROL_CAPACITY: usize = 8;

impl SessionHandle {
    /// Asks the session to act (a reattach or a DELETE, which are not dropped when requests
    /// are waiting); `false` when the session is over.
    pub fn control(&self, control: Control) -> bool {
        self.mailbox.tell(control, None).is_ok()
    }
}

impl Session for SessionHandle {
    fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    fn tell(&self, request: SessionRequest) -> bool {
        let control = match request {
            SessionRequest::DropTransport => Control::Drop,
            SessionRequest::Overflow => Control::Overflow,
            // A wake-up, not a request: it cannot be refused for a full queue.
            SessionRequest::Shutdown => return self.mailbox.notify(),
        };
        self.mailbox.tell(control, Some(CONTROL_CAPACITY)).is_ok()
    }

    fn deliver(&self, message: Outbound) -> Result<(), Refused> {
        self.mailbox.send(message, OUTBOX_CAPACITY)
    }
}

impl Hub {
    /// Records a running session under its connection token.
    pub(crate) fn add_session(&self, token: Arc<str>, handle: Arc<SessionHandle>) {
        self.store_session(token, handle);
    }

    /// The running session of a connection token.
    pub(crate) fn session(&self, token: &str) -> Option<Arc<SessionHandle>> {
        let session: Arc<dyn Any + Send + Sync> = self.stored_session(token)?;
        session.downcast::<SessionHandle>().ok()
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
