//! What the hub sends the widget (docs/hub-contract.md, "Client methods"): a client method's
//! name and arguments read into a typed [`HubEvent`], or the warning that says why it was
//! ignored. Method names match case-insensitively, as in the official client.

use serde_json::Value;

use crate::agent_state::AgentState;
use crate::notification::IncomingCall;
use crate::presence::{Presence, read_presence};

/// A client method the widget acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum HubEvent {
    /// `ReceiveNotification(message)` (the seed's JSON text) or `IncomingCall(call)`: a call
    /// to offer the agent.
    Offer(IncomingCall),
    /// `CallUpdated(call)`: the call object as the hub has it (it has a `callId`).
    CallUpdated(Value),
    /// `CallEnded(callId, reason?)`; the reason is `completed` when the hub sent none.
    CallEnded { call_id: String, reason: String },
    /// `PresenceChanged(presence)`: someone's Teams presence.
    PresenceChanged { id: String, presence: Presence },
    /// `AgentStateChanged(state)`: an agent's state as the hub keeps it (this agent's, or
    /// anyone's on a supervisor's connection: [`AgentState::replaces`] tells).
    AgentStateChanged(AgentState),
}

/// Reads `target(arguments)`. `Ok(None)`: nothing to do and nothing to say (a presence push
/// without a usable presence); `Err`: the warning for the diagnostics log.
pub fn parse(target: &str, arguments: &[Value]) -> Result<Option<HubEvent>, String> {
    let event = match target.to_ascii_lowercase().as_str() {
        "receivenotification" => match arguments.first().and_then(Value::as_str) {
            Some(message) => match IncomingCall::from_seed_message(message) {
                Ok(call) => HubEvent::Offer(call),
                Err(e) => return Err(format!("ReceiveNotification ignored: {e}")),
            },
            None => {
                return Err("ReceiveNotification ignored: its argument is not a string.".into());
            }
        },
        "incomingcall" => match arguments.first().map(IncomingCall::from_value) {
            Some(Ok(call)) => HubEvent::Offer(call),
            Some(Err(e)) => return Err(format!("IncomingCall ignored: {e}")),
            None => return Err("IncomingCall ignored: no argument.".into()),
        },
        "callupdated" => match arguments.first() {
            Some(call) if call.get("callId").and_then(Value::as_str).is_some() => {
                HubEvent::CallUpdated(call.clone())
            }
            _ => return Err("CallUpdated ignored: it has no callId.".into()),
        },
        "callended" => match (
            arguments.first().and_then(Value::as_str),
            arguments.get(1).and_then(Value::as_str),
        ) {
            (Some(id), reason) => HubEvent::CallEnded {
                call_id: id.to_owned(),
                reason: reason.unwrap_or("completed").to_owned(),
            },
            _ => return Err("CallEnded ignored: it has no callId.".into()),
        },
        "presencechanged" => match arguments.first().and_then(read_presence) {
            Some((id, presence)) => HubEvent::PresenceChanged { id, presence },
            None => return Ok(None),
        },
        "agentstatechanged" => match arguments.first().map(AgentState::from_value) {
            Some(Ok(state)) => HubEvent::AgentStateChanged(state),
            Some(Err(e)) => return Err(format!("AgentStateChanged ignored: {e}.")),
            None => return Err("AgentStateChanged ignored: no argument.".into()),
        },
        _ => return Err(format!("No client method with the name '{target}' found.")),
    };
    Ok(Some(event))
}

/// The call id a client method's first argument names (a seed message's JSON text or a call
/// object), for the diagnostics log; never the caller's number or name.
pub fn call_id(arguments: &[Value]) -> Option<String> {
    match arguments.first() {
        Some(Value::String(message)) => serde_json::from_str::<Value>(message)
            .ok()
            .and_then(|m| m.get("callId").and_then(Value::as_str).map(str::to_owned)),
        Some(Value::Object(o)) => o.get("callId").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

/// The diagnostics line for a client method received: `received CallUpdated callId=c1`.
pub fn received_line(target: &str, arguments: &[Value]) -> String {
    format!(
        "received {target}{}",
        call_id(arguments)
            .map(|id| format!(" callId={id}"))
            .unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::presence::{Activity, Availability};

    #[test]
    fn a_seed_notification_is_an_offer() {
        let message = json!({"PhoneNumber": "+15551234567", "callId": "c1"}).to_string();
        let Ok(Some(HubEvent::Offer(call))) = parse("ReceiveNotification", &[json!(message)])
        else {
            panic!("an offer");
        };
        assert_eq!(call.phone_number, "+15551234567");
        assert_eq!(
            parse("ReceiveNotification", &[json!({"PhoneNumber": "1"})]),
            Err("ReceiveNotification ignored: its argument is not a string.".into())
        );
        assert_eq!(
            parse("ReceiveNotification", &[json!("not json")])
                .unwrap_err()
                .split(':')
                .next(),
            Some("ReceiveNotification ignored")
        );
    }

    #[test]
    fn an_incoming_call_object_is_an_offer() {
        let Ok(Some(HubEvent::Offer(call))) = parse(
            "IncomingCall",
            &[json!({"callId": "c2", "phoneNumber": "+15550000000"})],
        ) else {
            panic!("an offer");
        };
        assert_eq!(call.phone_number, "+15550000000");
        assert_eq!(
            parse("IncomingCall", &[]),
            Err("IncomingCall ignored: no argument.".into())
        );
        assert_eq!(
            parse("IncomingCall", &[json!({"callId": "c2"})]),
            Err("IncomingCall ignored: notification has no phone number (PhoneNumber)".into())
        );
    }

    #[test]
    fn method_names_match_case_insensitively() {
        let update = json!({"callId": "c1", "state": "held"});
        for name in ["CallUpdated", "callupdated", "CALLUPDATED"] {
            assert_eq!(
                parse(name, std::slice::from_ref(&update)),
                Ok(Some(HubEvent::CallUpdated(update.clone())))
            );
        }
        assert_eq!(
            parse("CallUpdated", &[json!({"state": "held"})]),
            Err("CallUpdated ignored: it has no callId.".into())
        );
    }

    #[test]
    fn call_ended_defaults_to_completed() {
        assert_eq!(
            parse("CallEnded", &[json!("c1")]),
            Ok(Some(HubEvent::CallEnded {
                call_id: "c1".into(),
                reason: "completed".into()
            }))
        );
        assert_eq!(
            parse("callEnded", &[json!("c1"), json!("missed")]),
            Ok(Some(HubEvent::CallEnded {
                call_id: "c1".into(),
                reason: "missed".into()
            }))
        );
        assert_eq!(
            parse("CallEnded", &[json!(7)]),
            Err("CallEnded ignored: it has no callId.".into())
        );
    }

    #[test]
    fn presence_pushes_name_someone_or_are_dropped_quietly() {
        assert_eq!(
            parse(
                "PresenceChanged",
                &[json!({"id": "u1", "availability": "Away", "activity": "Away"})]
            ),
            Ok(Some(HubEvent::PresenceChanged {
                id: "u1".into(),
                presence: Presence::new(Availability::Away, Activity::Away)
            }))
        );
        assert_eq!(parse("PresenceChanged", &[json!({"id": "u1"})]), Ok(None));
        assert_eq!(parse("PresenceChanged", &[]), Ok(None));
    }

    #[test]
    fn agent_state_changes_are_read_or_explained() {
        let Ok(Some(HubEvent::AgentStateChanged(state))) = parse(
            "AgentStateChanged",
            &[json!({"userId": "alice", "state": "Break", "since": 5, "source": "agent"})],
        ) else {
            panic!("an agent state");
        };
        assert_eq!((state.state.as_str(), state.since_ms), ("Break", 5));
        assert_eq!(
            parse(
                "agentstatechanged",
                &[json!({"userId": "alice", "since": 5})]
            ),
            Err("AgentStateChanged ignored: AgentState has no valid state.".into())
        );
        assert_eq!(
            parse("AgentStateChanged", &[]),
            Err("AgentStateChanged ignored: no argument.".into())
        );
    }

    #[test]
    fn unknown_methods_are_named_in_the_warning() {
        assert_eq!(
            parse("Surprise", &[]),
            Err("No client method with the name 'Surprise' found.".into())
        );
    }

    #[test]
    fn the_log_line_names_the_call_id_only() {
        let seed = json!({"PhoneNumber": "+15551234567", "callId": "c1"}).to_string();
        assert_eq!(
            received_line("ReceiveNotification", &[json!(seed)]),
            "received ReceiveNotification callId=c1"
        );
        assert_eq!(
            received_line(
                "CallUpdated",
                &[json!({"callId": "c2", "phoneNumber": "+1555"})]
            ),
            "received CallUpdated callId=c2"
        );
        assert_eq!(
            received_line("CallEnded", &[json!("c3")]),
            "received CallEnded"
        );
        assert_eq!(received_line("Ping", &[]), "received Ping");
    }
}
