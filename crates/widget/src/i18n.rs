//! Every string the widget shows comes from a catalogue (DESIGN.md §4: nothing visible is
//! written inline in components): `locales/<tag>.json`, one per language — English, German,
//! French, Spanish and Arabic (right to left). The format, the fallback to English and the
//! choice of language are in `switchboard_core::i18n`; this module adds what needs the browser:
//! plural categories from `Intl.PluralRules`, numbers from `Intl.NumberFormat` and times from
//! `Intl.DateTimeFormat` (CLDR data the browser already has), `<html lang dir>`, and fetching a
//! language's file only when an agent needs it (English is built in).
//!
//! [`strings`] is the current catalogue; [`load`] switches language. Components read their
//! texts when they are built, so the app rebuilds its views when the language changes (once,
//! at start-up, when the host says which language its user has).

use std::cell::Cell;
use std::sync::OnceLock;

use js_sys::{Array, Function, Intl, Object, Reflect};
use switchboard_core::i18n::{self as core_i18n, Catalogue};
use wasm_bindgen::JsValue;

/// English, built in: the first paint needs no download, and every other language falls back
/// to it key by key.
const ENGLISH: &str = include_str!("../locales/en.json");

macro_rules! strings {
    ($($field:ident),* $(,)?) => {
        /// A language's plain texts, one field per catalogue key of the same name.
        /// `repr(C)` with only `&str` fields: laid out exactly as `[&str; N]`, which is how
        /// [`Strings::build`] fills it (one loop instead of code per field: a smaller wasm).
        #[repr(C)]
        pub struct Texts {
            $(pub $field: &'static str,)*
        }

        /// The field names, in field order.
        const KEYS: &[&str] = &[$(stringify!($field),)*];
    };
}

/// A language: its plain texts (fields, through `Deref`), texts with values (methods), and
/// [`Strings::get`] for any key.
pub struct Strings {
    texts: Texts,
    /// The BCP 47 tag of this language (`en`, `de`, `ar`, …).
    pub locale: &'static str,
    catalogue: &'static Catalogue,
    // Built on first use: the first `Intl` constructor of a page loads the browser's locale
    // data (~20 ms in Chromium), which the start-up path to "Connected" does not need.
    plural: OnceLock<Intl::PluralRules>,
    number: OnceLock<Function>,
    padded: OnceLock<Function>,
    time: OnceLock<Function>,
}

impl std::ops::Deref for Strings {
    type Target = Texts;
    fn deref(&self) -> &Texts {
        &self.texts
    }
}

const N: usize = std::mem::size_of::<Texts>() / std::mem::size_of::<&str>();
// One key per field, and no padding: what the transmute in `build` relies on.
const _: () =
    assert!(N == KEYS.len() && N * std::mem::size_of::<&str>() == std::mem::size_of::<Texts>());

impl Strings {
    fn build(catalogue: &'static Catalogue) -> Strings {
        let locale: &'static str = Box::leak(catalogue.locale().to_owned().into_boxed_str());
        let texts: [&'static str; N] = std::array::from_fn(|i| pick(catalogue, KEYS[i]));
        Strings {
            // SAFETY: `Texts` is `repr(C)` with N fields, all `&'static str`, so it has the
            // layout of `[&'static str; N]` (same size, alignment, order).
            texts: unsafe { std::mem::transmute::<[&'static str; N], Texts>(texts) },
            locale,
            plural: OnceLock::new(),
            number: OnceLock::new(),
            padded: OnceLock::new(),
            time: OnceLock::new(),
            catalogue,
        }
    }

    fn locales(&self) -> Array {
        Array::of1(&self.locale.into())
    }

    fn plural(&self) -> &Intl::PluralRules {
        self.plural
            .get_or_init(|| Intl::PluralRules::new(&self.locales(), &Object::new()))
    }

    fn number_format(&self) -> &Function {
        self.number
            .get_or_init(|| Intl::NumberFormat::new(&self.locales(), &Object::new()).format())
    }

    /// `Intl.DateTimeFormat` with 2-digit hour and minute, built once per language: a
    /// `toLocaleTimeString` call builds a new formatter every time (~0.2 ms each, for every row
    /// of the call history at each change).
    fn time_format(&self) -> &Function {
        self.time.get_or_init(|| {
            let options = Object::new();
            let _ = Reflect::set(&options, &"hour".into(), &"2-digit".into());
            let _ = Reflect::set(&options, &"minute".into(), &"2-digit".into());
            Intl::DateTimeFormat::new(&self.locales(), &options).format()
        })
    }

    /// Builds the formatters a ringing dialog and the call panel use (numbers, plurals, `m:ss`)
    /// now, so the first ring of a shift does not wait for the browser's locale data (~40 ms
    /// for the first `Intl.NumberFormat` of a page here). Called when the page is idle after
    /// the desk is built ([`crate::browser::when_idle`]).
    pub fn warm_up(&self) {
        let _ = self.plural();
        let _ = self.number_format();
        let _ = self.padded_format();
    }

    fn padded_format(&self) -> &Function {
        self.padded.get_or_init(|| {
            let padded = Object::new();
            let _ = Reflect::set(&padded, &"minimumIntegerDigits".into(), &2.into());
            Intl::NumberFormat::new(&self.locales(), &padded).format()
        })
    }
}

strings!(
    app_name,
    connected,
    connecting,
    reconnecting,
    disconnected,
    reconnect,
    loading,
    config_failed,
    signed_in_as,
    sign_in,
    sign_in_title,
    sign_in_hint,
    user_name,
    sign_out,
    msal_sign_in_hint,
    sign_in_again,
    session_expired,
    incoming_call,
    unknown_caller,
    queue,
    ringing,
    accept,
    reject,
    on_call,
    hang_up,
    ready,
    ready_hint,
    waiting_for_hub,
    last_accepted,
    last_rejected,
    last_missed,
    last_abandoned,
    last_elsewhere,
    last_ended,
    hub_error,
    dismiss,
    presence,
    presence_states,
    presence_teams,
    teams_now,
    source_here,
    source_teams,
    source_automatic,
    sync_held_stability,
    sync_held_loop,
    team,
    search_team,
    team_loading,
    team_failed,
    team_empty,
    not_connected,
    unknown_presence,
    phone_number,
    call,
    redial,
    keypad,
    enter_number,
    already_on_call,
    dialling,
    alerting,
    on_hold,
    conference_on,
    call_controls,
    mute,
    unmute,
    muted,
    hold,
    resume,
    transfer,
    transfer_to,
    transfer_now,
    consult_first,
    complete_transfer,
    merge_conference,
    cancel_transfer,
    talk_time,
    held_for,
    wrap_up,
    wrap_up_with,
    disposition,
    no_disposition,
    notes,
    save,
    history,
    history_empty,
    inbound,
    outbound,
    last_not_reached,
    ringtone_locked,
    call_not_allowed,
    diagnostics,
    diagnostics_title,
    diag_connection,
    diag_transport,
    diag_hub,
    diag_user,
    diag_versions,
    diag_language,
    diag_errors,
    diag_no_errors,
    diag_log,
    diag_redacted,
    copy,
    copied,
    copy_failed,
    download,
    close,
    pop_out,
    pop_out_after_call,
    popped_out,
    bring_back,
    pop_out_blocked,
    try_now,
    connection_lost,
    hub_silent,
    resume_failed,
    attempting,
    finish_now,
    notes_required,
    not_ready_hint
);

/// A field's text, English when the language lacks it. Not inlined: it runs once per field
/// and language, and one copy keeps the wasm small.
#[inline(never)]
fn pick(catalogue: &Catalogue, key: &str) -> &'static str {
    let text = catalogue
        .text(key)
        .or_else(|| english().text(key))
        .unwrap_or(key);
    Box::leak(text.to_owned().into_boxed_str())
}

fn english() -> &'static Catalogue {
    thread_local! {
        static EN: &'static Catalogue = Box::leak(Box::new(
            Catalogue::parse("en", ENGLISH).expect("locales/en.json is checked by the core tests"),
        ));
    }
    EN.with(|en| *en)
}

thread_local! {
    static CURRENT: Cell<Option<&'static Strings>> = const { Cell::new(None) };
}

/// The catalogue of the language in use (English until [`load`] switches).
pub fn strings() -> &'static Strings {
    CURRENT.with(|current| match current.get() {
        Some(strings) => strings,
        None => {
            let strings: &'static Strings = Box::leak(Box::new(Strings::build(english())));
            current.set(Some(strings));
            strings
        }
    })
}

impl Strings {
    /// The text of any catalogue key (English when this language lacks it; the key itself
    /// when no language has it, so a missing text shows instead of vanishing).
    pub fn get(&'static self, key: &'static str) -> &'static str {
        self.catalogue
            .text(key)
            .or_else(|| english().text(key))
            .unwrap_or(key)
    }

    /// `key` with `{placeholders}` filled; `count` picks the plural form through
    /// `Intl.PluralRules` of this language.
    fn format(&self, key: &str, count: Option<f64>, args: &[(&str, &str)]) -> String {
        let category = count
            .map(|n| String::from(self.plural().select(n)))
            .unwrap_or_else(|| "other".into());
        self.catalogue
            .format(key, &category, args)
            .or_else(|| english().format(key, &category, args))
            .unwrap_or_else(|| key.to_owned())
    }

    /// A whole number in this language's digits and grouping (`1.234`, `١٬٢٣٤`).
    pub fn number(&self, n: f64) -> String {
        self.number_format()
            .call1(&JsValue::UNDEFINED, &n.into())
            .ok()
            .and_then(|s| s.as_string())
            .unwrap_or_default()
    }

    fn two_digits(&self, n: u64) -> String {
        self.padded_format()
            .call1(&JsValue::UNDEFINED, &(n as f64).into())
            .ok()
            .and_then(|s| s.as_string())
            .unwrap_or_default()
    }

    /// `m:ss` (or `h:mm:ss`) of a duration in milliseconds, in this language's digits.
    pub fn clock(&self, ms: f64) -> String {
        let s = (ms.max(0.0) / 1000.0) as u64;
        let (m, sec) = (self.two_digits(s / 60 % 60), self.two_digits(s % 60));
        if s >= 3600 {
            [self.number((s / 3600) as f64), m, sec].join(":")
        } else {
            [self.number((s / 60) as f64), sec].join(":")
        }
    }

    /// A time of day (`10:42`, `10:42 AM`) from Unix milliseconds, as this language writes it.
    pub fn time_of_day(&self, unix_ms: u64) -> String {
        let date = js_sys::Date::new(&JsValue::from_f64(unix_ms as f64));
        self.time_format()
            .call1(&JsValue::UNDEFINED, &date)
            .ok()
            .and_then(|s| s.as_string())
            .unwrap_or_default()
    }

    /// "12 seconds left to answer".
    pub fn seconds_left(&self, n: u32) -> String {
        // Kept per language (at most a ring time's worth of texts): the first text a ringing
        // dialog shows is then made without the two `Intl` calls (issue 17).
        thread_local! {
            static MADE: std::cell::RefCell<(&'static str, std::collections::HashMap<u32, String>)> =
                std::cell::RefCell::new(("", std::collections::HashMap::new()));
        }
        if let Some(text) = MADE.with(|m| {
            let m = m.borrow();
            (m.0 == self.locale).then(|| m.1.get(&n).cloned()).flatten()
        }) {
            return text;
        }
        let shown = self.number(n.into());
        let text = self.format("seconds_left", Some(n.into()), &[("n", &shown)]);
        MADE.with(|m| {
            let mut m = m.borrow_mut();
            if m.0 != self.locale || m.1.len() >= 1_000 {
                *m = (self.locale, std::collections::HashMap::new());
            }
            m.1.insert(n, text.clone());
        });
        text
    }

    /// "Next attempt in 12 seconds." (the hub connection's next reconnect attempt).
    pub fn next_attempt(&self, n: u32) -> String {
        let shown = self.number(n.into());
        self.format("next_attempt", Some(n.into()), &[("n", &shown)])
    }

    /// "Showing 50 of 700. Search to find others."
    pub fn team_shown(&self, shown: usize, total: usize) -> String {
        let (shown, total) = (self.number(shown as f64), self.number(total as f64));
        self.format("team_shown", None, &[("shown", &shown), ("total", &total)])
    }

    /// "Favourite Ada Lovelace".
    pub fn favourite(&self, name: &str) -> String {
        self.format("favourite", None, &[("name", name)])
    }

    /// "Call Ada Lovelace".
    pub fn call_person(&self, name: &str) -> String {
        self.format("call_person", None, &[("name", name)])
    }

    /// "Redial +44 20 7946 0000".
    pub fn redial_to(&self, number: &str) -> String {
        self.format("redial_to", None, &[("number", number)])
    }

    /// "Consulting 2002".
    pub fn consulting(&self, target: &str) -> String {
        self.format("consulting", None, &[("target", target)])
    }

    /// A control's name with its keyboard shortcut, for tooltips: "Hold (Alt+Shift+H)".
    pub fn with_shortcut(&self, action: &str, keys: &str) -> String {
        self.format("with_shortcut", None, &[("action", action), ("keys", keys)])
    }

    /// Why the hub could not be reached (`hub_unreachable`, `hub_unauthorized`,
    /// `hub_not_found`, `hub_http_error`), naming the URL and the HTTP status.
    pub fn hub_text(&self, key: &str, url: &str, status: u16) -> String {
        self.format(key, None, &[("url", url), ("status", &status.to_string())])
    }

    /// The agent state with how long it has lasted: "Break · 12 min" (`state` already in words).
    pub fn state_since(&self, state: &str, since: switchboard_core::agent_state::Since) -> String {
        use switchboard_core::agent_state::Since;
        match since {
            Since::JustNow => self.format("state_since_now", None, &[("state", state)]),
            Since::Minutes(n) => {
                let shown = self.number(n as f64);
                self.format(
                    "state_since_minutes",
                    Some(n as f64),
                    &[("state", state), ("n", &shown)],
                )
            }
            Since::Hours(h, m) => {
                let (h, m) = (self.number(h as f64), self.number(m as f64));
                self.format(
                    "state_since_hours",
                    None,
                    &[("state", state), ("h", &h), ("m", &m)],
                )
            }
        }
    }

    /// "You missed 3 calls. Choose Ready to take calls again."
    pub fn missed_notice(&self, n: u32) -> String {
        let shown = self.number(n.into());
        self.format("missed_notice", Some(n.into()), &[("n", &shown)])
    }

    /// "Back to Ready in 0:42" (the wrap-up countdown; `state` already in words).
    pub fn wrap_up_left(&self, state: &str, seconds: u64) -> String {
        let time = self.clock(seconds as f64 * 1000.0);
        self.format("wrap_up_left", None, &[("state", state), ("time", &time)])
    }

    /// A sign-in problem in words, naming what the admin must change where it is a setting.
    pub fn sign_in_problem(&self, problem: &switchboard_core::signin::SignInProblem) -> String {
        self.format(problem.catalogue_key(), None, &[("code", problem.code())])
    }
}

/// The catalogue for `tag` (one of [`core_i18n::LOCALES`]): built in for English, else
/// `locales/<tag>.json` fetched from next to the widget. Errors name the file and the reason;
/// the language in use stays then.
pub async fn fetch(tag: &'static str) -> Result<&'static Strings, String> {
    if strings().locale == tag {
        return Ok(strings());
    }
    let catalogue: &'static Catalogue = if tag == "en" {
        english()
    } else {
        let url = format!("locales/{tag}.json");
        let response = gloo_net::http::Request::get(&url)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !response.ok() {
            return Err(format!("{url}: HTTP {}", response.status()));
        }
        let text = response.text().await.map_err(|e| format!("{url}: {e}"))?;
        Box::leak(Box::new(
            Catalogue::parse(tag, &text).map_err(|e| format!("{url}: {e}"))?,
        ))
    };
    Ok(Box::leak(Box::new(Strings::build(catalogue))))
}

/// Makes `strings` the language in use and sets `<html lang dir>`; views built from now on
/// speak it.
pub fn activate(strings: &'static Strings) {
    CURRENT.with(|current| current.set(Some(strings)));
    apply_document(strings.locale);
}

/// `<html lang="de" dir="ltr">`: screen readers pick the voice, the layout mirrors for RTL.
fn apply_document(tag: &str) {
    if let Some(root) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element())
    {
        let _ = root.set_attribute("lang", tag);
        let _ = root.set_attribute("dir", if core_i18n::is_rtl(tag) { "rtl" } else { "ltr" });
    }
}

/// The language built into the wasm (the others are fetched): its tag.
pub const BUILT_IN: &str = "en";

/// The shipped language for the agent: the first of `preferred` (explicit choices first) that
/// matches, else the browser's languages (`navigator.languages`), else English.
pub fn choose(preferred: &[String]) -> &'static str {
    let mut wanted: Vec<String> = preferred.to_vec();
    if let Some(navigator) = web_sys::window().map(|w| w.navigator()) {
        wanted.extend(navigator.languages().iter().filter_map(|l| l.as_string()));
    }
    let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
    core_i18n::negotiate(&wanted, core_i18n::LOCALES)
}

/// The agent's language as far as it is known before the host says anything: `lang` (the
/// page's `?lang=`), else config.json's `locale` (`config_locale`; `"auto"` or `None` defer),
/// else the browser's languages, else English (DESIGN.md, "Languages"). The host's user
/// language, when it arrives later, applies only when neither `?lang=` nor `locale` fixed one.
pub fn for_agent(lang: Option<&str>, config_locale: Option<&str>) -> &'static str {
    match (lang, config_locale) {
        (Some(lang), _) => choose(&[lang.to_owned()]),
        (None, Some(locale)) if locale != "auto" => choose(&[locale.to_owned()]),
        _ => choose(&[]),
    }
}

/// Graph availability in words.
pub fn availability(a: switchboard_core::presence::Availability) -> &'static str {
    use switchboard_core::presence::Availability as A;
    strings().get(match a {
        A::Available | A::AvailableIdle => "availability_available",
        A::Busy | A::BusyIdle => "availability_busy",
        A::DoNotDisturb => "availability_do_not_disturb",
        A::BeRightBack => "availability_be_right_back",
        A::Away => "availability_away",
        A::Offline => "availability_offline",
        A::PresenceUnknown => "availability_unknown",
    })
}

/// Graph activity in words, when it says more than the availability.
pub fn activity(a: switchboard_core::presence::Activity) -> Option<&'static str> {
    use switchboard_core::presence::Activity as A;
    Some(strings().get(match a {
        A::InACall => "activity_in_a_call",
        A::InAConferenceCall => "activity_in_a_conference_call",
        A::InAMeeting => "activity_in_a_meeting",
        A::Presenting => "activity_presenting",
        A::OutOfOffice => "activity_out_of_office",
        A::OffWork => "activity_off_work",
        A::UrgentInterruptionsOnly => "activity_urgent_interruptions_only",
        A::Inactive => "activity_inactive",
        _ => return None,
    }))
}

/// A presence pair in words: `Busy · In a meeting`.
pub fn presence_words(p: switchboard_core::presence::Presence) -> String {
    match activity(p.activity) {
        Some(act) => format!("{} · {act}", availability(p.availability)),
        None => availability(p.availability).to_owned(),
    }
}

/// A contact-centre agent state in words (configured names pass through).
pub fn agent_state(state: &str) -> &str {
    match state {
        "Ready" => strings().get("state_ready"),
        "NotReady" => strings().get("state_not_ready"),
        "WrapUp" => strings().get("state_wrap_up"),
        "OnCall" => strings().get("state_on_call"),
        "Break" => strings().get("state_break"),
        "Offline" => strings().get("state_offline"),
        "Missed" => strings().get("state_missed"),
        other => other,
    }
}

/// A call's outcome in words (`completed`, `missed`, `rejected`, `abandoned`, `busy`,
/// `no-answer`, `failed`, `elsewhere`; others pass through).
pub fn outcome(wire: &str) -> &str {
    let key = match wire {
        "completed" => "outcome_completed",
        "missed" => "outcome_missed",
        "rejected" => "outcome_rejected",
        "abandoned" => "outcome_abandoned",
        "busy" => "outcome_busy",
        "no-answer" => "outcome_no_answer",
        "failed" => "outcome_failed",
        "elsewhere" => "outcome_elsewhere",
        other => return other,
    };
    strings().get(key)
}

/// A wrap-up disposition in words: the five built-in ones (`switchboard_core::config::
/// DEFAULT_DISPOSITIONS`, the value stored in the CRM and sent to the hub) translated; a
/// site's own from config.json `wrapUp.dispositions` as written.
pub fn disposition(value: &str) -> &str {
    match value {
        "Resolved" => strings().get("disposition_resolved"),
        "Follow-up needed" => strings().get("disposition_follow_up"),
        "Escalated" => strings().get("disposition_escalated"),
        "Wrong number" => strings().get("disposition_wrong_number"),
        "Other" => strings().get("disposition_other"),
        other => other,
    }
}
