//! The CRM host the widget lives in (issue 5): which one it is, and every message shape the
//! adapters exchange with it. Pure; the browser adapters (`crates/widget/src/host/`) only move
//! these values across `postMessage`, `Microsoft.CIFramework` or `sforce.opencti`.
//!
//! This module holds what every host kind shares:
//!
//! - [`detect`]: `config.host` / `?host=` / what the page's URL and parent say.
//! - [`origin_allowed`]: the postMessage allow-list (exact origins, or `https://*.example.com`).
//! - [`HostOptions`]: config.json's `hostOrigins`, `crmUrl` and `cif`.
//! - [`theme`] and [`outcome_word`], used by more than one host kind.
//! - The helpers the host kinds share, once: `encodeURIComponent`, a finished call's subject, a
//!   click-to-dial number.
//!
//! One file per host kind, each re-exported here (`switchboard_core::host::X` is the public path):
//!
//! - [`postmessage`]: the postMessage protocol of `docs/host-protocol.md` ([`Envelope`],
//!   [`Command`], `SYNC`/`SYNC_ACK`, `{type, messageId, payload}`).
//! - [`cif`]: Dynamics 365 Channel Integration Framework 2.0 / 1.0 inputs and results (`cif_*`),
//!   with the shapes of the CIF reference (and the quirks of the real library: JSON strings,
//!   index-keyed search results, `{"value": …}` around notifyEvent's result).
//! - [`opencti`]: Salesforce Open CTI (Lightning) arguments (`opencti_*`).

#![warn(missing_docs)]

pub mod cif;
pub mod opencti;
pub mod postmessage;

pub use cif::{
    CifNames, Customer, NotifyResult, cif_caller_query, cif_click_to_act_number, cif_customer,
    cif_environment_username, cif_event_number, cif_missed_task, cif_notify_input,
    cif_notify_result, cif_phonecall, cif_session_input,
};
pub use opencti::{opencti_click_number, opencti_log, opencti_search};
pub use postmessage::{
    Command, Envelope, EnvelopeError, MAX_ID_CHARS, PROTOCOL_VERSION, incoming_call_payload,
    parse_command, sync_ack,
};

use serde_json::{Map, Value};

use crate::desk::Outcome;
use crate::fields::string_list;
use crate::history::{CallDirection, CallRecord};

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

    /// The name [`HostKind::from_name`] reads (`SYNC_ACK`'s `host`, config.json's `host`).
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
    /// The trusted parent origins: `hostOrigins`, then `crmUrl`'s origin.
    pub origins: Vec<String>,
    /// The Dynamics org's URL without a trailing slash (`crmUrl`).
    pub crm_url: Option<String>,
    /// The CIF template and field names (`cif`).
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

/// `"light"` or `"dark"` (any case), else `None` (follow the system): `SYNC`'s `theme`
/// ([`Command::Sync`]) and the widget's `?theme=`.
pub fn theme(name: Option<&str>) -> Option<&'static str> {
    match name?.trim().to_ascii_lowercase().as_str() {
        "light" => Some("light"),
        "dark" => Some("dark"),
        _ => None,
    }
}

/// The outcome word of a ringing call that ended without being accepted here.
pub fn outcome_word(outcome: &Outcome) -> &'static str {
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

/// `encodeURIComponent` (CIF's OData query, Open CTI's `queryParams`).
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

/// A finished call's subject in the CRM (CIF's `phonecall`, Open CTI's Task): `Call to <name or
/// number>` for an outgoing call, `Call from …` for an incoming one.
fn call_subject(record: &CallRecord) -> String {
    let who = record.name.as_deref().unwrap_or(&record.number);
    let outgoing = record.direction == CallDirection::Outbound;
    [if outgoing { "Call to " } else { "Call from " }, who].concat()
}

/// The number a CRM's click-to-dial hands over (CIF's `onclicktoact`, Open CTI's
/// `onClickToDial`): trimmed; `None` when empty or longer than 64 bytes.
fn clicked_number(raw: &str) -> Option<&str> {
    let n = raw.trim();
    (!n.is_empty() && n.len() <= 64).then_some(n)
}

/// The incoming call and the finished call the tests of every host kind use.
#[cfg(test)]
mod fixtures {
    use crate::history::{CallDirection, CallRecord};
    use crate::notification::IncomingCall;

    pub(super) fn call() -> IncomingCall {
        IncomingCall {
            call_id: Some("c1".into()),
            phone_number: "+14255550123".into(),
            caller_name: None,
            queue: Some("Sales".into()),
            comments: Some("Billing".into()),
        }
    }

    pub(super) fn record() -> CallRecord {
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
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

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
}
