//! Languages: message catalogues, choosing a locale, and writing direction. No browser API:
//! plural categories and number formats come from the caller (the widget asks the browser's
//! `Intl.PluralRules` / `Intl.NumberFormat`, i.e. CLDR data already on the agent's machine).
//!
//! A catalogue is one JSON object per language (`crates/widget/locales/<tag>.json`). A value is
//! either a text or, for a message that depends on a count, an object of CLDR plural categories
//! (`zero`, `one`, `two`, `few`, `many`, `other`; `other` is required):
//!
//! ```json
//! { "accept": "Accept",
//!   "seconds_left": { "one": "{n} second left", "other": "{n} seconds left" },
//!   "call_person": "Call {name}" }
//! ```
//!
//! `{name}` is a placeholder filled by [`Catalogue::format`]; text is never HTML. A key missing
//! from a language falls back to English, so a late translation never blanks the panel.
//!
//! Why not `fluent-bundle` or `leptos_i18n`: measured on this machine (wasm32, `opt-level =
//! "z"`, LTO, wasm-opt -Oz), `fluent-bundle` 0.16 adds ~47 KB gzipped to the widget — 40% of
//! its whole 120 KB budget — mostly its parser and bundled plural rules; `leptos_i18n` compiles
//! every language into the wasm. JSON is already parsed by `serde_json`, which the widget needs
//! anyway, and only the agent's own language is downloaded.

use serde_json::Value;

/// The languages shipped with the widget, English first (the fallback).
pub const LOCALES: &[&str] = &["en", "de", "fr", "es", "ar"];

/// Why a catalogue was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    /// Not JSON, or not a JSON object.
    #[error("the catalogue is not a JSON object: {0}")]
    NotAnObject(String),
    /// A value that is neither a text nor an object of plural categories with `other`.
    #[error("\"{0}\" must be a text or an object of plural forms with \"other\"")]
    BadMessage(String),
}

/// One message: a text, or texts per CLDR plural category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A plain text, maybe with `{placeholders}`.
    Text(String),
    /// (category (`one`, `few`, …), text) pairs; always has `other`.
    Plural(Vec<(String, String)>),
}

/// A language's messages, with English behind it for keys it lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalogue {
    locale: String,
    /// Sorted by key (a plain vector: smaller wasm than a map, same lookups).
    messages: Vec<(String, Message)>,
}

impl Message {
    /// The form for a plural `category`, else `other`; a text for any category.
    fn form(&self, category: &str) -> Option<&str> {
        match self {
            Message::Text(text) => Some(text),
            Message::Plural(forms) => forms
                .iter()
                .find(|(c, _)| c == category)
                .or_else(|| forms.iter().find(|(c, _)| c == "other"))
                .map(|(_, text)| text.as_str()),
        }
    }
}

impl Catalogue {
    /// Parses a catalogue for `locale` (a BCP 47 tag such as `de` or `ar`).
    ///
    /// Errors: [`CatalogueError`] when the JSON is not an object or a value has the wrong shape.
    pub fn parse(locale: &str, json: &str) -> Result<Catalogue, CatalogueError> {
        let value: Value =
            serde_json::from_str(json).map_err(|e| CatalogueError::NotAnObject(e.to_string()))?;
        let Value::Object(object) = value else {
            return Err(CatalogueError::NotAnObject("not an object".into()));
        };
        let mut messages = Vec::with_capacity(object.len());
        for (key, value) in object {
            let message = match value {
                Value::String(text) => Message::Text(text),
                Value::Object(forms) if forms.contains_key("other") => {
                    let mut plural = Vec::with_capacity(forms.len());
                    for (category, text) in forms {
                        let Value::String(text) = text else {
                            return Err(CatalogueError::BadMessage(key));
                        };
                        plural.push((category, text));
                    }
                    Message::Plural(plural)
                }
                _ => return Err(CatalogueError::BadMessage(key)),
            };
            messages.push((key, message));
        }
        messages.sort_by(|a, b| a.0.cmp(&b.0));
        messages.dedup_by(|a, b| a.0 == b.0);
        Ok(Catalogue {
            locale: locale.to_owned(),
            messages,
        })
    }

    /// The locale this catalogue was parsed for.
    pub fn locale(&self) -> &str {
        &self.locale
    }

    /// Every key, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.messages.iter().map(|(k, _)| k.as_str())
    }

    /// The raw message for `key`, if this language has it.
    pub fn message(&self, key: &str) -> Option<&Message> {
        self.messages
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| &self.messages[i].1)
    }

    /// The text of `key` (for a plural message, its `other` form).
    pub fn text(&self, key: &str) -> Option<&str> {
        self.message(key)?.form("other")
    }

    /// `key` with its placeholders filled: `args` are `(name, value)` pairs; for a plural
    /// message `category` picks the form (`other` when that form is missing). `None` when the
    /// key is unknown. Unknown placeholders are left as written, so a mistake shows, not hides.
    pub fn format(&self, key: &str, category: &str, args: &[(&str, &str)]) -> Option<String> {
        Some(fill(self.message(key)?.form(category)?, args))
    }
}

/// Replaces `{name}` by its value in one pass (a value containing braces is not re-read).
pub fn fill(pattern: &str, args: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match args.iter().find(|(n, _)| *n == name) {
                    Some((_, value)) => out.push_str(value),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The placeholders a pattern uses, sorted and without repeats.
pub fn placeholders(pattern: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        names.push(&after[..close]);
        rest = &after[close + 1..];
    }
    names.sort_unstable();
    names.dedup();
    names
}

/// Picks the shipped locale for the agent's preferences, best first (`de-AT`, `fr`, …): an
/// exact match, else the same language (`de-AT` → `de`), trying each preference in order;
/// English when none matches. Tags compare case-insensitively; `_` counts as `-`.
pub fn negotiate<'a>(preferred: &[&str], available: &[&'a str]) -> &'a str {
    let norm = |tag: &str| tag.trim().replace('_', "-").to_ascii_lowercase();
    for want in preferred {
        let want = norm(want);
        if want.is_empty() {
            continue;
        }
        if let Some(hit) = available.iter().find(|a| norm(a) == want) {
            return hit;
        }
        let language = want.split('-').next().unwrap_or_default();
        if let Some(hit) = available
            .iter()
            .find(|a| norm(a).split('-').next() == Some(language))
        {
            return hit;
        }
    }
    available.first().copied().unwrap_or("en")
}

/// A BCP 47 language tag as far as the widget needs: 2–3 letters, then subtags of 1–8 letters
/// or digits (`de`, `fr-CA`, `zh-Hant-TW`; `_` counts as `-`).
pub fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split(['-', '_']);
    let language = parts.next().unwrap_or_default();
    (2..=3).contains(&language.len())
        && language.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Whether a language is written right to left (Arabic, Hebrew, Persian, Urdu, and a few
/// more): the widget then sets `dir="rtl"` and its layout mirrors.
pub fn is_rtl(tag: &str) -> bool {
    let language = tag.split(['-', '_']).next().unwrap_or_default();
    matches!(
        language.to_ascii_lowercase().as_str(),
        "ar" | "he" | "iw" | "fa" | "ur" | "ps" | "sd" | "ug" | "yi" | "dv" | "ckb"
    )
}

/// The BCP 47 tag of a Windows LCID, as Dynamics 365 reports the user's language
/// (`getEnvironment().userLcid`, e.g. `1031`). Covers the languages Dynamics offers most;
/// `None` for others (the browser's language is used then). Source: [MS-LCID] §2.2.
pub fn lcid_to_tag(lcid: u32) -> Option<&'static str> {
    Some(match lcid {
        1025 => "ar-SA",
        3073 => "ar-EG",
        14337 => "ar-AE",
        1026 => "bg-BG",
        1027 => "ca-ES",
        1028 => "zh-TW",
        2052 => "zh-CN",
        3076 => "zh-HK",
        1029 => "cs-CZ",
        1030 => "da-DK",
        1031 => "de-DE",
        3079 => "de-AT",
        2055 => "de-CH",
        1032 => "el-GR",
        1033 => "en-US",
        2057 => "en-GB",
        3081 => "en-AU",
        4105 => "en-CA",
        1034 | 3082 => "es-ES",
        2058 => "es-MX",
        1035 => "fi-FI",
        1036 => "fr-FR",
        3084 => "fr-CA",
        2060 => "fr-BE",
        4108 => "fr-CH",
        1037 => "he-IL",
        1038 => "hu-HU",
        1040 => "it-IT",
        1041 => "ja-JP",
        1042 => "ko-KR",
        1043 => "nl-NL",
        1044 => "nb-NO",
        1045 => "pl-PL",
        1046 => "pt-BR",
        2070 => "pt-PT",
        1048 => "ro-RO",
        1049 => "ru-RU",
        1053 => "sv-SE",
        1054 => "th-TH",
        1055 => "tr-TR",
        1058 => "uk-UA",
        1065 => "fa-IR",
        _ => return None,
    })
}

/// The plural categories CLDR defines for a shipped language's cardinal numbers: every plural
/// message in that language must have each of them (checked by the catalogue tests).
pub fn plural_categories(language: &str) -> &'static [&'static str] {
    match language {
        "ar" => &["zero", "one", "two", "few", "many", "other"],
        "fr" | "es" => &["one", "many", "other"],
        _ => &["one", "other"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_catalogue_fills_placeholders_and_picks_plural_forms() {
        let c = Catalogue::parse(
            "en",
            r#"{"hello": "Hello {name}, {name}!", "left": {"one": "{n} second", "other": "{n} seconds"}}"#,
        )
        .unwrap();
        assert_eq!(
            c.format("hello", "other", &[("name", "Ada")]).unwrap(),
            "Hello Ada, Ada!"
        );
        assert_eq!(c.format("left", "one", &[("n", "1")]).unwrap(), "1 second");
        assert_eq!(c.format("left", "few", &[("n", "3")]).unwrap(), "3 seconds");
        assert_eq!(c.text("left"), Some("{n} seconds"));
        assert_eq!(c.format("missing", "other", &[]), None);
    }

    #[test]
    fn placeholders_are_filled_once_and_unknown_ones_show() {
        assert_eq!(fill("{a}{b}", &[("a", "{b}"), ("b", "x")]), "{b}x");
        assert_eq!(fill("x {nope} y", &[]), "x {nope} y");
        assert_eq!(fill("open { end", &[]), "open { end");
        assert_eq!(placeholders("{b} and {a} and {b}"), vec!["a", "b"]);
    }

    #[test]
    fn malformed_catalogues_are_refused_with_the_key() {
        assert!(matches!(
            Catalogue::parse("en", "[1]"),
            Err(CatalogueError::NotAnObject(_))
        ));
        assert!(matches!(
            Catalogue::parse("en", "{"),
            Err(CatalogueError::NotAnObject(_))
        ));
        assert_eq!(
            Catalogue::parse("en", r#"{"x": {"one": "a"}}"#),
            Err(CatalogueError::BadMessage("x".into()))
        );
        assert_eq!(
            Catalogue::parse("en", r#"{"y": 3}"#),
            Err(CatalogueError::BadMessage("y".into()))
        );
    }

    #[test]
    fn negotiation_prefers_exact_then_language_then_english() {
        assert_eq!(negotiate(&["de-AT", "fr"], LOCALES), "de");
        assert_eq!(negotiate(&["pt-BR", "fr-CA"], LOCALES), "fr");
        assert_eq!(negotiate(&["AR_sa"], LOCALES), "ar");
        assert_eq!(negotiate(&["ja", ""], LOCALES), "en");
        assert_eq!(negotiate(&[], LOCALES), "en");
    }

    #[test]
    fn right_to_left_languages() {
        assert!(is_rtl("ar"));
        assert!(is_rtl("he-IL"));
        assert!(is_rtl("fa_IR"));
        assert!(!is_rtl("de"));
        assert!(!is_rtl("en-US"));
    }

    #[test]
    fn dynamics_lcids_map_to_shipped_languages() {
        for (lcid, want) in [
            (1031, "de"),
            (1036, "fr"),
            (3082, "es"),
            (1025, "ar"),
            (1033, "en"),
        ] {
            let tag = lcid_to_tag(lcid).unwrap();
            assert_eq!(negotiate(&[tag], LOCALES), want, "LCID {lcid}");
        }
        assert_eq!(lcid_to_tag(9999), None);
    }

    /// The shipped catalogues: every language has exactly English's keys, the same
    /// placeholders per message, and each plural form its language needs.
    #[test]
    fn shipped_catalogues_are_complete_and_consistent() {
        let load = |tag: &str| {
            let path = format!(
                "{}/../widget/locales/{tag}.json",
                env!("CARGO_MANIFEST_DIR")
            );
            let json = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            Catalogue::parse(tag, &json).unwrap_or_else(|e| panic!("{path}: {e}"))
        };
        let en = load("en");
        assert!(en.keys().count() > 100, "English has every visible string");
        for tag in &LOCALES[1..] {
            let other = load(tag);
            let en_keys: Vec<_> = en.keys().collect();
            let keys: Vec<_> = other.keys().collect();
            let missing: Vec<_> = en_keys.iter().filter(|k| !keys.contains(k)).collect();
            let extra: Vec<_> = keys.iter().filter(|k| !en_keys.contains(k)).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "{tag}: missing {missing:?}, extra {extra:?}"
            );
            for key in en.keys() {
                let en_names = match en.message(key).unwrap() {
                    Message::Text(t) => placeholders(t),
                    Message::Plural(_) => placeholders(en.text(key).unwrap()),
                };
                match other.message(key).unwrap() {
                    Message::Text(t) => {
                        assert_eq!(placeholders(t), en_names, "{tag}/{key}");
                        assert!(!t.trim().is_empty(), "{tag}/{key} is empty");
                    }
                    Message::Plural(forms) => {
                        for category in plural_categories(tag) {
                            assert!(
                                forms.iter().any(|(c, _)| c == category),
                                "{tag}/{key} lacks {category}"
                            );
                        }
                        for (category, text) in forms {
                            // `one`/`two`/`zero` may spell the number out ("one second").
                            let names = placeholders(text);
                            assert!(
                                names.iter().all(|n| en_names.contains(n)),
                                "{tag}/{key}/{category} uses an unknown placeholder"
                            );
                            if category == "other" || category == "many" || category == "few" {
                                assert_eq!(names, en_names, "{tag}/{key}/{category}");
                            }
                        }
                    }
                }
            }
        }
        for key in en.keys() {
            if let Some(Message::Plural(forms)) = en.message(key) {
                for category in plural_categories("en") {
                    assert!(
                        forms.iter().any(|(c, _)| c == category),
                        "en/{key} lacks {category}"
                    );
                }
            }
        }
    }
}
