//! Dynamics 365 Channel Integration Framework (CIF 2.0, and 1.0 when the library has no
//! `notifyEvent`): the inputs the widget passes to `Microsoft.CIFramework` and the results it
//! reads back, with the shapes of the CIF reference and the quirks of the real library (JSON
//! strings, index-keyed search results, `{"value": …}` around notifyEvent's result). The
//! template and slug names default to Microsoft's sample solution (`docs/host-protocol.md`).

use serde_json::{Map, Value, json};

use super::{call_subject, clicked_number, encode_component};
use crate::history::{CallDirection, CallRecord};
use crate::notification::IncomingCall;

/// The CIF names an organisation configures (`cif` in config.json).
#[derive(Debug, Clone, PartialEq)]
pub struct CifNames {
    /// `msdyn_notificationtemplate` unique name for incoming calls.
    pub notification_template: String,
    /// `msdyn_sessiontemplate` unique name opened on accept.
    pub session_template: String,
    /// Phone fields searched for the caller, on `contact`.
    pub phone_fields: Vec<String>,
}

impl Default for CifNames {
    fn default() -> Self {
        // The names of Microsoft's sample solution (FastTrack "CIF 2.0 Sample Adaptor").
        Self {
            notification_template: "extn_voice_notification".into(),
            session_template: "extn_voice_identified_session".into(),
            phone_fields: vec![
                "mobilephone".into(),
                "telephone1".into(),
                "telephone2".into(),
            ],
        }
    }
}

/// The `searchAndOpenRecords("contact", query, true)` query that finds the caller by number:
/// `?$select=contactid,fullname&$filter=mobilephone eq '…' or telephone1 eq '…'`. Quotes are
/// doubled (OData) and the value is URL-encoded (`+` would read as a space).
pub fn cif_caller_query(number: &str, fields: &[String]) -> String {
    let value = encode_component(&number.replace('\'', "''"));
    let filter = fields
        .iter()
        .map(|f| [f.as_str(), "%20eq%20'", &value, "'"].concat())
        .collect::<Vec<_>>()
        .join("%20or%20");
    ["?$select=contactid,fullname&$filter=", &filter].concat()
}

/// The caller as found in the CRM.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    /// The entity's logical name (`contact`).
    pub entity: String,
    /// The record's id (`contactid`).
    pub id: String,
    /// Its display name (`fullname`; empty when the record has none).
    pub name: String,
}

/// Reads `searchAndOpenRecords`' result (a JSON text: an index-keyed object `{"0": {…}}` from
/// the real library, or an array); the first record with a `contactid`.
pub fn cif_customer(result: &str) -> Option<Customer> {
    let v: Value = serde_json::from_str(result).ok()?;
    let first = match &v {
        Value::Array(a) => a.first()?,
        Value::Object(o) => o.get("0").or_else(|| o.values().next())?,
        _ => return None,
    };
    Some(Customer {
        entity: "contact".into(),
        id: first.get("contactid")?.as_str()?.to_owned(),
        name: first
            .get("fullname")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    })
}

/// The template parameters (slugs) for the notification and the session: the sample's names,
/// with the call id as the interaction id.
fn cif_parameters(call: &IncomingCall, call_id: &str, customer: Option<&Customer>) -> Value {
    let mut p = Map::new();
    let name = customer
        .map(|c| c.name.clone())
        .filter(|n| !n.is_empty())
        .or_else(|| call.caller_name.clone())
        .unwrap_or_else(|| call.phone_number.clone());
    p.insert("customerName".into(), json!(name));
    if let Some(c) = customer {
        p.insert("customerEntityName".into(), json!(c.entity));
        p.insert("customerRecordId".into(), json!(c.id));
    }
    p.insert("extn_media_type".into(), json!(1));
    p.insert("extn_phonenumber".into(), json!(call.phone_number));
    p.insert("extn_interactionid".into(), json!(call_id));
    p.insert("extn_callid".into(), json!(call_id));
    if let Some(c) = &call.comments {
        p.insert("extn_comments".into(), json!(c));
    }
    if let Some(q) = &call.queue {
        p.insert("extn_queue".into(), json!(q));
    }
    Value::Object(p)
}

/// `notifyEvent`'s input: the notification template, its parameters, and the call id as the
/// cancellation token (so `cancelEvent(callId)` removes the toast when the caller hangs up).
pub fn cif_notify_input(
    names: &CifNames,
    call: &IncomingCall,
    call_id: &str,
    customer: Option<&Customer>,
) -> Value {
    let mut params = cif_parameters(call, call_id, customer);
    params["extnbr_session_template"] = json!(names.session_template);
    json!({
        "templateName": names.notification_template,
        "templateParameters": params,
        "cancellationToken": call_id,
    })
}

/// `createSession`'s input: the session template, with the same slugs as parameters and as
/// context (the automation dictionary), for the screen pop of the customer and a new case.
pub fn cif_session_input(
    names: &CifNames,
    call: &IncomingCall,
    call_id: &str,
    customer: Option<&Customer>,
) -> Value {
    let params = cif_parameters(call, call_id, customer);
    json!({ "templateName": names.session_template, "templateParameters": params, "context": params })
}

/// What the agent did with the toast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyResult {
    /// `Accept` (`auto` for the template's `AutoAccept`).
    Accept {
        /// The `responseReason` was `AutoAccept`.
        auto: bool,
    },
    /// `Reject` with its reason (`DeclinedByAgent`, `NotificationQueueLimitExceeded`,
    /// `NotificationQueueTimeLimitExceeded`).
    Reject {
        /// The `responseReason`, as CIF gave it.
        reason: String,
    },
    /// `Timeout` (`DisplayTimeout`).
    Timeout,
}

/// Reads `notifyEvent`'s result, `{"actionName","responseReason"}` or the documented
/// `{"value": {…}}`; `None` for anything else.
pub fn cif_notify_result(result: &str) -> Option<NotifyResult> {
    let v: Value = serde_json::from_str(result).ok()?;
    let v = match v.get("value") {
        Some(inner @ Value::Object(_)) => inner,
        _ => &v,
    };
    let reason = v
        .get("responseReason")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Some(match v.get("actionName")?.as_str()? {
        "Accept" => NotifyResult::Accept {
            auto: reason == "AutoAccept",
        },
        "Reject" => NotifyResult::Reject {
            reason: reason.to_owned(),
        },
        "Timeout" => NotifyResult::Timeout,
        _ => return None,
    })
}

/// The `onclicktoact` event data (`{value, name, format, entityLogicalName, entityId?}`, a JSON
/// text): the number to dial, when the field is a phone number.
pub fn cif_click_to_act_number(data: &str) -> Option<String> {
    let v: Value = serde_json::from_str(data).ok()?;
    let number = clicked_number(v.get("value")?.as_str()?)?;
    let format = v.get("format").and_then(Value::as_str).unwrap_or("phone");
    let phone_like = number
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    (phone_like || format.eq_ignore_ascii_case("phone")).then(|| number.to_owned())
}

/// A number `{"value": n}` from `onmodechanged` / `onsizechanged`.
pub fn cif_event_number(data: &str) -> Option<i64> {
    serde_json::from_str::<Value>(data)
        .ok()?
        .get("value")?
        .as_i64()
}

/// The signed-in Dynamics user's name (UPN) from `getEnvironment()`'s JSON text (`username`),
/// the login hint for `ssoSilent`. `None` when absent, empty, not text or implausibly long.
pub fn cif_environment_username(environment: &str) -> Option<String> {
    let v: Value = serde_json::from_str(environment).ok()?;
    let name = v.get("username")?.as_str()?.trim();
    (!name.is_empty() && name.len() <= 256).then(|| name.to_owned())
}

/// The activity logged when a ringing call was not taken (as the sample: a `task` whose
/// subject says what happened).
pub fn cif_missed_task(call: &IncomingCall, call_id: &str, outcome: &str) -> Value {
    json!({
        "subject": (["Call ", outcome, ": ", &call.phone_number].concat()),
        "description": (["Call id: ", call_id].concat()),
    })
}

/// The `phonecall` activity for a finished call: direction (`directioncode`: true = outgoing),
/// number, duration (minutes, rounded up, plus the seconds in the description) and notes.
pub fn cif_phonecall(record: &CallRecord) -> Value {
    let outgoing = record.direction == CallDirection::Outbound;
    let minutes = record.duration_s.div_ceil(60);
    let mut description = String::new();
    if !record.notes.is_empty() {
        description.push_str(&record.notes);
        description.push_str("\n\n");
    }
    if let Some(d) = &record.disposition {
        description.push_str(&["Disposition: ", d, ". "].concat());
    }
    description.push_str(&format!(
        "Duration: {} s. Outcome: {}. Call id: {}",
        record.duration_s, record.outcome, record.call_id
    ));
    json!({
        "subject": call_subject(record),
        "phonenumber": record.number,
        "directioncode": outgoing,
        "actualdurationminutes": minutes,
        "description": description,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fixtures::{call, record};

    #[test]
    fn cif_query_escapes() {
        let names = CifNames::default();
        assert_eq!(
            cif_caller_query("+1 425'5", &names.phone_fields[..2]),
            "?$select=contactid,fullname&$filter=mobilephone%20eq%20'%2B1%20425''5'%20or%20telephone1%20eq%20'%2B1%20425''5'"
        );
    }

    #[test]
    fn cif_search_results() {
        let found = Customer {
            entity: "contact".into(),
            id: "id-1".into(),
            name: "Dana".into(),
        };
        assert_eq!(
            cif_customer(r#"{"0":{"contactid":"id-1","fullname":"Dana"}}"#),
            Some(found.clone())
        );
        assert_eq!(
            cif_customer(r#"[{"contactid":"id-1","fullname":"Dana"}]"#),
            Some(found)
        );
        assert_eq!(cif_customer("[]"), None);
        assert_eq!(cif_customer("{}"), None);
        assert_eq!(cif_customer("nope"), None);
    }

    #[test]
    fn cif_notify_and_session_inputs() {
        let names = CifNames::default();
        let customer = Customer {
            entity: "contact".into(),
            id: "id-1".into(),
            name: "Dana".into(),
        };
        let n = cif_notify_input(&names, &call(), "c1", Some(&customer));
        assert_eq!(n["templateName"], "extn_voice_notification");
        assert_eq!(n["cancellationToken"], "c1");
        let p = &n["templateParameters"];
        assert_eq!(p["customerName"], "Dana");
        assert_eq!(p["customerRecordId"], "id-1");
        assert_eq!(p["customerEntityName"], "contact");
        assert_eq!(p["extn_phonenumber"], "+14255550123");
        assert_eq!(p["extn_interactionid"], "c1");
        assert_eq!(p["extn_comments"], "Billing");
        assert_eq!(
            p["extnbr_session_template"],
            "extn_voice_identified_session"
        );
        let unknown = cif_notify_input(&names, &call(), "c1", None);
        assert_eq!(
            unknown["templateParameters"]["customerName"],
            "+14255550123"
        );
        assert!(
            unknown["templateParameters"]
                .get("customerRecordId")
                .is_none()
        );
        let s = cif_session_input(&names, &call(), "c1", Some(&customer));
        assert_eq!(s["templateName"], "extn_voice_identified_session");
        assert_eq!(s["context"], s["templateParameters"]);
        assert_eq!(s["context"]["customerRecordId"], "id-1");
    }

    #[test]
    fn cif_notify_results() {
        assert_eq!(
            cif_notify_result(r#"{"actionName":"Accept","responseReason":"Accept"}"#),
            Some(NotifyResult::Accept { auto: false })
        );
        assert_eq!(
            cif_notify_result(r#"{"value":{"actionName":"Accept","responseReason":"AutoAccept"}}"#),
            Some(NotifyResult::Accept { auto: true })
        );
        assert_eq!(
            cif_notify_result(
                r#"{"actionName":"Reject","responseReason":"NotificationQueueLimitExceeded"}"#
            ),
            Some(NotifyResult::Reject {
                reason: "NotificationQueueLimitExceeded".into()
            })
        );
        assert_eq!(
            cif_notify_result(r#"{"actionName":"Timeout","responseReason":"DisplayTimeout"}"#),
            Some(NotifyResult::Timeout)
        );
        assert_eq!(cif_notify_result(r#"{"actionName":"Dance"}"#), None);
        assert_eq!(cif_notify_result("x"), None);
    }

    #[test]
    fn cif_events() {
        let d = r#"{"value":"+1 (425) 555-0199","name":"mobilephone","format":"phone","entityLogicalName":"contact","entityId":"x"}"#;
        assert_eq!(
            cif_click_to_act_number(d).as_deref(),
            Some("+1 (425) 555-0199")
        );
        assert_eq!(
            cif_click_to_act_number(r#"{"value":"someone@example.com","format":"email"}"#),
            None
        );
        assert_eq!(cif_click_to_act_number(r#"{"value":""}"#), None);
        assert_eq!(cif_event_number(r#"{"value":2}"#), Some(2));
        assert_eq!(cif_event_number("{}"), None);
        assert_eq!(
            cif_environment_username(
                r#"{"appid":"a","username":" alice@contoso.com ","userLcid":1033}"#
            )
            .as_deref(),
            Some("alice@contoso.com")
        );
        for none in [
            r#"{"appid":"a"}"#,
            r#"{"username":""}"#,
            r#"{"username":7}"#,
            "not json",
        ] {
            assert_eq!(cif_environment_username(none), None, "{none}");
        }
    }

    #[test]
    fn call_logs() {
        let p = cif_phonecall(&record());
        assert_eq!(p["subject"], "Call from Dana");
        assert_eq!(p["phonenumber"], "+14255550123");
        assert_eq!(p["directioncode"], false);
        assert_eq!(p["actualdurationminutes"], 2);
        assert_eq!(
            p["description"],
            "Refund agreed\n\nDisposition: Resolved. Duration: 61 s. Outcome: completed. Call id: c1"
        );
        let t = cif_missed_task(&call(), "c1", "missed");
        assert_eq!(t["subject"], "Call missed: +14255550123");
    }
}
