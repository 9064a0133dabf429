//! Salesforce Open CTI (Lightning): the arguments the widget passes to `sforce.opencti`
//! (`searchAndScreenPop`, `saveLog`) and what it reads from its events (`onClickToDial`).

use serde_json::{Value, json};

use super::{call_subject, clicked_number, encode_component};
use crate::history::{CallDirection, CallRecord};
use crate::notification::IncomingCall;

/// `searchAndScreenPop`'s arguments (without the callback): search by the number, the call id
/// as a query parameter, `callType` inbound.
pub fn opencti_search(call: &IncomingCall, call_id: &str) -> Value {
    json!({
        "searchParams": call.phone_number,
        "queryParams": (["callId=", &encode_component(call_id)].concat()),
        "callType": "inbound",
        "deferred": false,
    })
}

/// `saveLog`'s `value`: a completed call Task.
pub fn opencti_log(record: &CallRecord) -> Value {
    let outgoing = record.direction == CallDirection::Outbound;
    let mut v = json!({
        "entityApiName": "Task",
        "Subject": call_subject(record),
        "Status": "Completed",
        "TaskSubtype": "Call",
        "CallType": if outgoing { "Outbound" } else { "Inbound" },
        "CallDurationInSeconds": record.duration_s,
        "CallObject": record.call_id,
        "Phone": record.number,
        "Description": record.notes,
    });
    if let Some(d) = &record.disposition {
        v["CallDisposition"] = json!(d);
    }
    v
}

/// The number from an `onClickToDial` payload (`{number, recordId, recordName, objectType}`).
pub fn opencti_click_number(payload: &Value) -> Option<String> {
    clicked_number(payload.get("number")?.as_str()?).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fixtures::{call, record};

    #[test]
    fn call_logs() {
        let l = opencti_log(&record());
        assert_eq!(l["entityApiName"], "Task");
        assert_eq!(l["CallType"], "Inbound");
        assert_eq!(l["CallDurationInSeconds"], 61);
        assert_eq!(l["CallObject"], "c1");
        assert_eq!(l["CallDisposition"], "Resolved");
        let s = opencti_search(&call(), "c 1");
        assert_eq!(
            s,
            json!({"searchParams": "+14255550123", "queryParams": "callId=c%201", "callType": "inbound", "deferred": false})
        );
        assert_eq!(
            opencti_click_number(&json!({"number": " 555 ", "recordId": "001"})).as_deref(),
            Some("555")
        );
        assert_eq!(opencti_click_number(&json!({"recordId": "001"})), None);
    }
}
