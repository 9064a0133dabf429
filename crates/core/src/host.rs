//! The CRM host the widget lives in (issue 5): which one it is, and every message shape the
//! adapters exchange with it. Pure; the browser adapters (`crates/widget/src/host/`) only move
//! these values across `postMessage`, `Microsoft.CIFramework` or `sforce.opencti`.
//!
//! - [`detect`]: `config.host` / `?host=` / what the page's URL and parent say.
//! - [`origin_allowed`]: the postMessage allow-list (exact origins, or `https://*.example.com`).
//! - [`Envelope`], [`Command`] and the `*_event` builders: the postMessage protocol of
//!   `docs/host-protocol.md` (`SYNC`/`SYNC_ACK`, `{type, messageId, payload}`).
//! - `cif_*`: Dynamics 365 Channel Integration Framework 2.0 / 1.0 inputs and results, with the
//!   shapes of the CIF reference (and the quirks of the real library: JSON strings, index-keyed
//!   search results, `{"value": …}` around notifyEvent's result).
//! - `opencti_*`: Salesforce Open CTI (Lightning) arguments.

use serde_json::{Map, Value, json};

use crate::config::string_list;
use crate::history::{CallDirection, CallRecord};
use crate::notification::IncomingCall;

/// Version of the postMessage protocol, sent in `SYNC_ACK`.
pub const PROTOCOL_VERSION: u32 = 1;
/// Longest `messageId` or `type` accepted, in characters.
pub const MAX_ID_CHARS: usize = 100;

/// The host adapters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    /// Dynamics 365 Channel Integration Framework (2.0, or 1.0 when the library has no
    /// `notifyEvent`).
    Cif,
    /// Any CRM over the documented postMessage protocol.
    PostMessage,
    /// Salesforce Open CTI (Lightning).
    OpenCti,
    /// A browser tab of its own.
    Standalone,
}

impl HostKind {
    /// `cif` | `postmessage` | `opencti` | `standalone`; `None` for anything else (`auto`).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "cif" => HostKind::Cif,
            "postmessage" => HostKind::PostMessage,
            "opencti" => HostKind::OpenCti,
            "standalone" => HostKind::Standalone,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HostKind::Cif => "cif",
            HostKind::PostMessage => "postmessage",
            HostKind::OpenCti => "opencti",
            HostKind::Standalone => "standalone",
        }
    }
}

/// What the page knows about where it runs, for [`detect`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PageContext {
    /// `?host=` (dev and tests).
    pub host_param: Option<String>,
    /// `?ucilib=` (how Dynamics passes the CIF library's URL).
    pub ucilib: Option<String>,
    /// `?sfdcIframeOrigin=` (how Salesforce frames a softphone).
    pub sfdc_iframe_origin: Option<String>,
    /// `?mode=` (`Lightning` from Salesforce).
    pub mode: Option<String>,
    /// Whether the page is in a frame.
    pub framed: bool,
    /// The parent's origin when framed (`location.ancestorOrigins[0]`, else the referrer's).
    pub parent_origin: Option<String>,
}

/// Whether `origin` is a Dynamics 365 origin (`https://*.dynamics.com`, also GCC's
/// `*.microsoftdynamics.us` and China's `*.dynamics.cn`).
pub fn is_dynamics_origin(origin: &str) -> bool {
    let Some(host) = origin.strip_prefix("https://") else {
        return false;
    };
    let host = host.split(':').next().unwrap_or(host);
    [".dynamics.com", ".microsoftdynamics.us", ".dynamics.cn"]
        .iter()
        .any(|suffix| host.ends_with(suffix))
}

/// Chooses the adapter: `?host=` wins (dev/testing), then `config.host` unless it is `auto`;
/// `auto` picks CIF for a `ucilib` parameter or a Dynamics parent, Open CTI for Salesforce's
/// `sfdcIframeOrigin` / `mode=Lightning`, postMessage for a frame whose parent is allow-listed,
/// else the standalone tab.
pub fn detect(config_host: &str, page: &PageContext, allowed: &[String]) -> HostKind {
    if let Some(kind) = page.host_param.as_deref().and_then(HostKind::from_name) {
        return kind;
    }
    if let Some(kind) = HostKind::from_name(config_host) {
        return kind;
    }
    let parent = page.parent_origin.as_deref();
    if page.ucilib.is_some() || (page.framed && parent.is_some_and(is_dynamics_origin)) {
        return HostKind::Cif;
    }
    if page.sfdc_iframe_origin.is_some() || page.mode.as_deref() == Some("Lightning") {
        return HostKind::OpenCti;
    }
    if page.framed && parent.is_some_and(|p| origin_allowed(p, allowed)) {
        return HostKind::PostMessage;
    }
    HostKind::Standalone
}

/// Whether `origin` (`scheme://host[:port]`, as `MessageEvent.origin` gives it) is in the
/// allow-list. Entries are exact origins or `scheme://*.domain[:port]`, which matches
/// subdomains of `domain` (not `domain` itself). `null` and `*` never match.
pub fn origin_allowed(origin: &str, allowed: &[String]) -> bool {
    if origin.is_empty() || origin == "null" || origin.contains('/') && !origin.contains("://") {
        return false;
    }
    allowed.iter().any(|entry| {
        if entry == origin {
            return true;
        }
        let Some((scheme, rest)) = entry.split_once("://*.") else {
            return false;
        };
        let Some((o_scheme, o_rest)) = origin.split_once("://") else {
            return false;
        };
        o_scheme == scheme
            && o_rest.len() > rest.len() + 1
            && o_rest.ends_with(rest)
            && o_rest.as_bytes()[o_rest.len() - rest.len() - 1] == b'.'
    })
}

/// The origin part of a URL (`https://crm.example.com:8443/x?y` → `https://crm.example.com:8443`);
/// `None` for anything that is not an absolute http(s) URL.
pub fn url_origin(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if end == 0 || rest[..end].contains('@') {
        return None;
    }
    Some(&url[..url.len() - rest.len() + end])
}

/// The host section of config.json: `hostOrigins` (the parent origins the widget trusts:
/// postMessage hosts, the CRM that may pass a `ucilib` or `sfdcIframeOrigin`), `crmUrl` (the
/// Dynamics org, added to the origins) and `cif` (`notificationTemplate`, `sessionTemplate`,
/// `phoneFields`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostOptions {
    pub origins: Vec<String>,
    pub crm_url: Option<String>,
    pub cif: CifNames,
}

impl HostOptions {
    /// Reads the fields from config.json's root object; `Err` names the field at fault.
    pub fn from_root(root: &Map<String, Value>) -> Result<Self, String> {
        let mut options = HostOptions {
            origins: string_list(root.get("hostOrigins"), "hostOrigins")?.unwrap_or_default(),
            ..Default::default()
        };
        for o in &options.origins {
            let plain = o
                .strip_prefix("https://*.")
                .map(|h| ["https://", h].concat());
            if url_origin(plain.as_deref().unwrap_or(o)) != Some(plain.as_deref().unwrap_or(o)) {
                return Err([
                    "hostOrigins: \"",
                    o,
                    "\" is not an origin such as https://crm.example.com",
                ]
                .concat());
            }
        }
        match root.get("crmUrl") {
            None | Some(Value::Null) => {}
            Some(Value::String(u)) => {
                let origin = url_origin(u).ok_or("crmUrl must be an http(s) URL")?;
                options.origins.push(origin.to_owned());
                options.crm_url = Some(u.trim_end_matches('/').to_owned());
            }
            Some(_) => return Err("crmUrl must be a string".into()),
        }
        match root.get("cif") {
            None | Some(Value::Null) => {}
            Some(Value::Object(cif)) => {
                let text = |k: &str| match cif.get(k) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
                    Some(_) => Err(["cif.", k, " must be a template's unique name"].concat()),
                };
                if let Some(t) = text("notificationTemplate")? {
                    options.cif.notification_template = t;
                }
                if let Some(t) = text("sessionTemplate")? {
                    options.cif.session_template = t;
                }
                if let Some(f) = string_list(cif.get("phoneFields"), "cif.phoneFields")? {
                    if f.is_empty()
                        || f.iter()
                            .any(|f| !f.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
                    {
                        return Err(
                            "cif.phoneFields must list attribute names such as mobilephone".into(),
                        );
                    }
                    options.cif.phone_fields = f;
                }
            }
            Some(_) => return Err("cif must be an object".into()),
        }
        Ok(options)
    }
}

// ---------------------------------------------------------------------------------------------
// postMessage protocol (docs/host-protocol.md)

/// One postMessage: `{type, messageId, payload}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub kind: String,
    pub message_id: String,
    pub payload: Value,
}

/// Why a message was ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeError {
    NotAnObject,
    MissingType,
    MissingMessageId,
}

impl Envelope {
    /// Reads an envelope; `payload` defaults to `{}`.
    pub fn parse(value: &Value) -> Result<Self, EnvelopeError> {
        let o = value.as_object().ok_or(EnvelopeError::NotAnObject)?;
        let text = |k: &str| {
            o.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty() && s.chars().count() <= MAX_ID_CHARS)
                .map(str::to_owned)
        };
        Ok(Self {
            kind: text("type").ok_or(EnvelopeError::MissingType)?,
            message_id: text("messageId").ok_or(EnvelopeError::MissingMessageId)?,
            payload: o.get("payload").cloned().unwrap_or_else(|| json!({})),
        })
    }

    /// The wire form.
    pub fn to_value(&self) -> Value {
        json!({ "type": self.kind, "messageId": self.message_id, "payload": self.payload })
    }
}

/// A command from the host (docs/host-protocol.md, "Commands in").
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `SYNC {locale?, theme?}`: the handshake; answered with `SYNC_ACK`. `locale` is the host
    /// user's language (a BCP 47 tag, e.g. `"de-DE"`), `theme` the host's `"light"` or
    /// `"dark"`; anything else there is ignored.
    Sync {
        locale: Option<String>,
        theme: Option<&'static str>,
    },
    /// `DIAL {number}`.
    Dial(String),
    /// `ACCEPT` / `REJECT` the ringing call.
    Accept,
    Reject,
    /// `SET_PRESENCE {state}` (a contact-centre state) or `{availability}` (a Teams
    /// availability): the widget's presence choice `state:X` / `teams:X`.
    SetPresence(String),
    /// `SET_VISIBILITY {visible}`: the host shows or hides the widget's panel.
    SetVisibility(bool),
    /// Any other type: answered with an `ERROR`.
    Unknown(String),
}

/// `"light"` or `"dark"` (any case), else `None` (follow the system).
pub fn theme(name: Option<&str>) -> Option<&'static str> {
    match name?.trim().to_ascii_lowercase().as_str() {
        "light" => Some("light"),
        "dark" => Some("dark"),
        _ => None,
    }
}

/// Reads the command in an envelope; `Err` names what is wrong with its payload.
pub fn parse_command(envelope: &Envelope) -> Result<Command, &'static str> {
    let p = &envelope.payload;
    let text = |k: &str| p.get(k).and_then(Value::as_str).map(str::trim);
    Ok(match envelope.kind.as_str() {
        "SYNC" => Command::Sync {
            locale: text("locale")
                .filter(|l| crate::i18n::is_language_tag(l))
                .map(str::to_owned),
            theme: theme(text("theme")),
        },
        "DIAL" => match text("number") {
            Some(n) if !n.is_empty() && n.chars().count() <= 64 => Command::Dial(n.to_owned()),
            _ => return Err("DIAL needs payload.number"),
        },
        "ACCEPT" => Command::Accept,
        "REJECT" => Command::Reject,
        "SET_PRESENCE" => match (text("state"), text("availability")) {
            (Some(s), _) if !s.is_empty() => Command::SetPresence(format!("state:{s}")),
            (_, Some(a)) if !a.is_empty() => Command::SetPresence(format!("teams:{a}")),
            _ => return Err("SET_PRESENCE needs payload.state or payload.availability"),
        },
        "SET_VISIBILITY" => match p.get("visible").and_then(Value::as_bool) {
            Some(v) => Command::SetVisibility(v),
            None => return Err("SET_VISIBILITY needs payload.visible"),
        },
        other => Command::Unknown(other.to_owned()),
    })
}

/// `SYNC_ACK`, the answer to `SYNC` (same `messageId`).
pub fn sync_ack(message_id: &str, host: HostKind) -> Value {
    json!({ "type": "SYNC_ACK", "messageId": message_id,
            "payload": { "version": PROTOCOL_VERSION, "host": host.as_str() } })
}

/// `INCOMING_CALL {callId, number, name?, queue?}`.
pub fn incoming_call_payload(call: &IncomingCall, call_id: &str) -> Value {
    let mut o = Map::new();
    o.insert("callId".into(), json!(call_id));
    o.insert("number".into(), json!(call.phone_number));
    if let Some(n) = &call.caller_name {
        o.insert("name".into(), json!(n));
    }
    if let Some(q) = &call.queue {
        o.insert("queue".into(), json!(q));
    }
    Value::Object(o)
}

/// The outcome word of a ringing call that ended without being accepted here.
pub fn outcome_word(outcome: &crate::desk::Outcome) -> &'static str {
    use crate::desk::Outcome;
    match outcome {
        Outcome::Accepted => "accepted",
        Outcome::Rejected => "rejected",
        Outcome::Missed => "missed",
        Outcome::Abandoned => "abandoned",
        Outcome::HandledElsewhere => "elsewhere",
        Outcome::Ended => "completed",
        Outcome::NotReached(_) => "not-reached",
    }
}

// ---------------------------------------------------------------------------------------------
// Dynamics 365 CIF

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

/// `encodeURIComponent`.
fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
        }
    }
    out
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
    pub entity: String,
    pub id: String,
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
    Accept { auto: bool },
    /// `Reject` with its reason (`DeclinedByAgent`, `NotificationQueueLimitExceeded`,
    /// `NotificationQueueTimeLimitExceeded`).
    Reject { reason: String },
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
    let number = v.get("value")?.as_str()?.trim();
    let format = v.get("format").and_then(Value::as_str).unwrap_or("phone");
    let phone_like = number
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    (!number.is_empty()
        && number.len() <= 64
        && (phone_like || format.eq_ignore_ascii_case("phone")))
    .then(|| number.to_owned())
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
    let who = record.name.as_deref().unwrap_or(&record.number);
    json!({
        "subject": ([if outgoing { "Call to " } else { "Call from " }, who].concat()),
        "phonenumber": record.number,
        "directioncode": outgoing,
        "actualdurationminutes": minutes,
        "description": description,
    })
}

// ---------------------------------------------------------------------------------------------
// Salesforce Open CTI

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
    let who = record.name.as_deref().unwrap_or(&record.number);
    let mut v = json!({
        "entityApiName": "Task",
        "Subject": ([if outgoing { "Call to " } else { "Call from " }, who].concat()),
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
    let n = payload.get("number")?.as_str()?.trim();
    (!n.is_empty() && n.len() <= 64).then(|| n.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> IncomingCall {
        IncomingCall {
            call_id: Some("c1".into()),
            phone_number: "+14255550123".into(),
            caller_name: None,
            queue: Some("Sales".into()),
            comments: Some("Billing".into()),
        }
    }

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn detection_order() {
        let allowed = list(&["https://crm.example.com"]);
        let page = |f: &dyn Fn(&mut PageContext)| {
            let mut p = PageContext::default();
            f(&mut p);
            p
        };
        assert_eq!(
            detect("auto", &page(&|_| {}), &allowed),
            HostKind::Standalone
        );
        assert_eq!(
            detect("opencti", &page(&|_| {}), &allowed),
            HostKind::OpenCti
        );
        let over = page(&|p| p.host_param = Some("postmessage".into()));
        assert_eq!(detect("cif", &over, &allowed), HostKind::PostMessage);
        let bogus = page(&|p| p.host_param = Some("nope".into()));
        assert_eq!(detect("auto", &bogus, &allowed), HostKind::Standalone);
        let uci = page(&|p| p.ucilib = Some("https://org.crm.dynamics.com/x.js".into()));
        assert_eq!(detect("auto", &uci, &allowed), HostKind::Cif);
        let dyn_parent = page(&|p| {
            p.framed = true;
            p.parent_origin = Some("https://org.crm4.dynamics.com".into());
        });
        assert_eq!(detect("auto", &dyn_parent, &allowed), HostKind::Cif);
        let sf = page(&|p| p.mode = Some("Lightning".into()));
        assert_eq!(detect("auto", &sf, &allowed), HostKind::OpenCti);
        let sf2 = page(&|p| p.sfdc_iframe_origin = Some("https://x.lightning.force.com".into()));
        assert_eq!(detect("auto", &sf2, &allowed), HostKind::OpenCti);
        let framed = |o: &str| {
            let o = o.to_owned();
            page(&move |p| {
                p.framed = true;
                p.parent_origin = Some(o.clone());
            })
        };
        assert_eq!(
            detect("auto", &framed("https://crm.example.com"), &allowed),
            HostKind::PostMessage
        );
        assert_eq!(
            detect("auto", &framed("https://evil.example"), &allowed),
            HostKind::Standalone
        );
    }

    #[test]
    fn options_from_config() {
        let root = |v: Value| HostOptions::from_root(v.as_object().unwrap());
        let o = root(json!({})).unwrap();
        assert_eq!(o, HostOptions::default());
        assert_eq!(
            o.cif.phone_fields,
            list(&["mobilephone", "telephone1", "telephone2"])
        );
        let o = root(json!({
            "hostOrigins": ["https://crm.example.com", "https://*.example.org"],
            "crmUrl": "https://org.crm.dynamics.com/",
            "cif": {"notificationTemplate": "sb_call", "sessionTemplate": "sb_session", "phoneFields": ["telephone1"]}
        }))
        .unwrap();
        assert_eq!(
            o.origins,
            list(&[
                "https://crm.example.com",
                "https://*.example.org",
                "https://org.crm.dynamics.com"
            ])
        );
        assert_eq!(o.crm_url.as_deref(), Some("https://org.crm.dynamics.com"));
        assert_eq!(o.cif.notification_template, "sb_call");
        assert_eq!(o.cif.session_template, "sb_session");
        assert_eq!(o.cif.phone_fields, list(&["telephone1"]));
        assert!(
            root(json!({"hostOrigins": "https://a"}))
                .unwrap_err()
                .contains("hostOrigins")
        );
        assert!(
            root(json!({"hostOrigins": ["*"]}))
                .unwrap_err()
                .contains("\"*\"")
        );
        assert!(root(json!({"hostOrigins": ["https://a.com/path"]})).is_err());
        assert!(root(json!({"crmUrl": "ftp://x"})).is_err());
        assert!(root(json!({"cif": {"phoneFields": ["a eq 1"]}})).is_err());
        assert!(
            root(json!({"cif": {"sessionTemplate": 3}}))
                .unwrap_err()
                .contains("cif.sessionTemplate")
        );
    }

    #[test]
    fn origins() {
        let allowed = list(&[
            "https://crm.example.com",
            "https://*.example.org",
            "http://127.0.0.1:8080",
        ]);
        assert!(origin_allowed("https://crm.example.com", &allowed));
        assert!(origin_allowed("http://127.0.0.1:8080", &allowed));
        assert!(!origin_allowed("http://127.0.0.1:8081", &allowed));
        assert!(!origin_allowed("http://crm.example.com", &allowed));
        assert!(!origin_allowed(
            "https://crm.example.com.evil.net",
            &allowed
        ));
        assert!(origin_allowed("https://a.example.org", &allowed));
        assert!(origin_allowed("https://a.b.example.org", &allowed));
        assert!(!origin_allowed("https://example.org", &allowed));
        assert!(!origin_allowed("https://badexample.org", &allowed));
        assert!(!origin_allowed("null", &allowed));
        assert!(!origin_allowed("", &allowed));
        assert!(!origin_allowed("null", &list(&["null", "*"])));
        assert!(is_dynamics_origin("https://org.crm.dynamics.com"));
        assert!(!is_dynamics_origin("http://org.crm.dynamics.com"));
        assert!(!is_dynamics_origin("https://dynamics.com.evil.net"));
        assert_eq!(
            url_origin("https://a.b:8443/x.js?y"),
            Some("https://a.b:8443")
        );
        assert_eq!(
            url_origin("http://127.0.0.1:1/"),
            Some("http://127.0.0.1:1")
        );
        assert_eq!(url_origin("https://user@evil/x"), None);
        assert_eq!(url_origin("javascript:alert(1)"), None);
        assert_eq!(url_origin("//evil/x.js"), None);
    }

    #[test]
    fn envelopes_and_commands() {
        let env = |v: Value| Envelope::parse(&v);
        assert_eq!(env(json!("x")), Err(EnvelopeError::NotAnObject));
        assert_eq!(
            env(json!({"messageId": "1"})),
            Err(EnvelopeError::MissingType)
        );
        assert_eq!(
            env(json!({"type": "DIAL"})),
            Err(EnvelopeError::MissingMessageId)
        );
        assert_eq!(
            env(json!({"type": "DIAL", "messageId": ""})),
            Err(EnvelopeError::MissingMessageId)
        );
        let dial = env(
            json!({"type": "DIAL", "messageId": "h1", "payload": {"number": " +442071234567 "}}),
        )
        .unwrap();
        assert_eq!(
            parse_command(&dial),
            Ok(Command::Dial("+442071234567".into()))
        );
        assert_eq!(dial.to_value()["payload"]["number"], " +442071234567 ");
        let no_number = env(json!({"type": "DIAL", "messageId": "h1"})).unwrap();
        assert!(parse_command(&no_number).is_err());
        let cmd = |t: &str, p: Value| {
            parse_command(&env(json!({"type": t, "messageId": "m", "payload": p})).unwrap())
        };
        let sync = |locale: Option<&str>, theme| Command::Sync {
            locale: locale.map(str::to_owned),
            theme,
        };
        assert_eq!(cmd("SYNC", json!({})), Ok(sync(None, None)));
        assert_eq!(
            cmd("SYNC", json!({"locale": "de-DE", "theme": "Dark"})),
            Ok(sync(Some("de-DE"), Some("dark")))
        );
        assert_eq!(
            cmd("SYNC", json!({"locale": "<script>", "theme": "sepia"})),
            Ok(sync(None, None))
        );
        assert_eq!(cmd("ACCEPT", json!({})), Ok(Command::Accept));
        assert_eq!(cmd("REJECT", json!({})), Ok(Command::Reject));
        assert_eq!(
            cmd("SET_PRESENCE", json!({"state": "Break"})),
            Ok(Command::SetPresence("state:Break".into()))
        );
        assert_eq!(
            cmd("SET_PRESENCE", json!({"availability": "Busy"})),
            Ok(Command::SetPresence("teams:Busy".into()))
        );
        assert!(cmd("SET_PRESENCE", json!({})).is_err());
        assert_eq!(
            cmd("SET_VISIBILITY", json!({"visible": false})),
            Ok(Command::SetVisibility(false))
        );
        assert_eq!(cmd("FOO", json!({})), Ok(Command::Unknown("FOO".into())));
        let ack = sync_ack("h0", HostKind::PostMessage);
        assert_eq!(
            ack,
            json!({"type": "SYNC_ACK", "messageId": "h0", "payload": {"version": 1, "host": "postmessage"}})
        );
        assert_eq!(
            incoming_call_payload(&call(), "c1"),
            json!({"callId": "c1", "number": "+14255550123", "queue": "Sales"})
        );
    }

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

    fn record() -> CallRecord {
        CallRecord {
            call_id: "c1".into(),
            direction: CallDirection::Inbound,
            number: "+14255550123".into(),
            name: Some("Dana".into()),
            started_at_ms: 0,
            duration_s: 61,
            outcome: "completed".into(),
            notes: "Refund agreed".into(),
            disposition: Some("Resolved".into()),
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
        let l = opencti_log(&record());
        assert_eq!(l["entityApiName"], "Task");
        assert_eq!(l["CallType"], "Inbound");
        assert_eq!(l["CallDurationInSeconds"], 61);
        assert_eq!(l["CallObject"], "c1");
        assert_eq!(l["CallDisposition"], "Resolved");
        let t = cif_missed_task(&call(), "c1", "missed");
        assert_eq!(t["subject"], "Call missed: +14255550123");
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
