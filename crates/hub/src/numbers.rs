//! Phone numbers, in the hub: E.164 normalisation and validation with libphonenumber's metadata
//! (the `phonenumber` crate), `tel:` URIs (RFC 3966) with `;ext=`, display strings, and the
//! demo extension directory of colleagues.
//!
//! Normalisation lives here and not in the widget: the widget pays zero bytes for it (the
//! `phonenumber` crate alone measured ~615 KB gzipped as wasm), and the hub is where dialling
//! happens anyway. The widget calls the `normalizeNumber` hub method to check and format what
//! the agent typed; `makeCall` runs the same code.
//!
//! Accepted input (after trimming):
//! - national numbers in the default region (`--default-region`, `US` unless set), with the
//!   usual separators (space, `-`, `.`, `(`, `)`, `/`): `(425) 555-0123`, `020 7946 0958` (GB);
//! - international numbers: `+44 20 7946 0958` or `0044 20 7946 0958`;
//! - an extension after `ext`, `ext.`, `extension`, `x`, `#` or `;ext=`: `+1 425 555 0123 x12`;
//! - `tel:` URIs: `tel:+44-20-7946-0958;ext=12`, `tel:7946-0958;phone-context=+44-20`.
//!
//! Letters (vanity numbers such as `1-800-FLOWERS` included) are refused, as is anything that
//! libphonenumber does not consider a valid number of its region. Errors are sentences meant
//! for the agent: `That is not a phone number: "abc"`, `Too short for GB: "+44 20 7946"`.

use std::collections::HashMap;
use std::str::FromStr;

use phonenumber::country::Id;
use phonenumber::{Mode, ParseError, PhoneNumber};
use serde::Serialize;

/// The default region when none is configured.
pub const DEFAULT_REGION: &str = "US";
/// Longest input looked at, in characters.
pub const MAX_INPUT_CHARS: usize = 80;
/// Longest extension, in digits.
pub const MAX_EXTENSION_DIGITS: usize = 10;

/// A valid number: what `normalizeNumber` answers.
///
/// ```json
/// {"e164":"+442079460958","extension":"12","national":"020 7946 0958",
///  "international":"+44 20 7946 0958","region":"GB","tel":"tel:+442079460958;ext=12"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Normalized {
    /// E.164, no extension: `+442079460958`.
    pub e164: String,
    /// The extension's digits, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
    /// National display format of the number's region, without the extension.
    pub national: String,
    /// International display format, without the extension.
    pub international: String,
    /// The number's region (`GB`), when it belongs to one (not for e.g. `+800` numbers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The RFC 3966 URI, with `;ext=` when there is an extension.
    pub tel: String,
}

impl Normalized {
    /// The JSON object sent on the wire.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a number serialises")
    }

    /// What the agent sees for the number: the national format when the number is in
    /// `home_region`, else the international one; ` ext. N` appended.
    pub fn display(&self, home_region: &str) -> String {
        let base = if self
            .region
            .as_deref()
            .is_some_and(|r| r.eq_ignore_ascii_case(home_region))
        {
            &self.national
        } else {
            &self.international
        };
        match &self.extension {
            Some(ext) => format!("{base} ext. {ext}"),
            None => base.clone(),
        }
    }

    /// The last four digits of the national significant number (the simulator's behaviour
    /// switch: `0000` busy, `0001` no answer, ...).
    pub fn last_four(&self) -> &str {
        let digits = self.e164.trim_start_matches('+');
        &digits[digits.len().saturating_sub(4)..]
    }
}

/// Reads a region code (`us`, `GB`): `None` when libphonenumber does not know it.
pub fn parse_region(region: &str) -> Option<String> {
    let upper = region.trim().to_ascii_uppercase();
    (upper.len() == 2 && Id::from_str(&upper).is_ok()).then_some(upper)
}

/// The error text for an unknown region.
pub fn unknown_region(region: &str) -> String {
    format!(
        "Unknown region \"{}\": use a two-letter country code such as US or GB",
        clip(region, 16)
    )
}

fn clip(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

fn not_a_number(input: &str) -> String {
    format!("That is not a phone number: \"{}\"", clip(input, 40))
}

/// Normalises what the agent typed (see the module docs). `default_region` is a two-letter
/// region code for national numbers (an unknown one is an error).
pub fn normalize(input: &str, default_region: &str) -> Result<Normalized, String> {
    let region_name = parse_region(default_region).ok_or_else(|| unknown_region(default_region))?;
    let region = Id::from_str(&region_name).map_err(|_| unknown_region(default_region))?;
    let input = input.trim();
    if input.is_empty() {
        return Err("Enter a phone number.".into());
    }
    if input.chars().count() > MAX_INPUT_CHARS {
        return Err(format!(
            "That is not a phone number: it is longer than {MAX_INPUT_CHARS} characters"
        ));
    }
    let (main, extension, context) = split(input)?;
    // What is left: an optional leading `+`, digits and visual separators.
    let main = main.trim();
    let (plus, rest) = match main.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, main),
    };
    if rest.chars().any(|c| c.is_alphabetic()) {
        return Err(format!(
            "That is not a phone number: letters are not allowed (\"{}\")",
            clip(input, 40)
        ));
    }
    if !rest
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')' | '/' | '\u{a0}'))
    {
        return Err(not_a_number(input));
    }
    let mut digits: String = rest.chars().filter(char::is_ascii_digit).collect();
    let mut international = plus;
    if !international && let Some(context) = context {
        digits = format!("{context}{digits}");
        international = true;
    }
    if !international && digits.starts_with("00") {
        digits = digits[2..].to_owned();
        international = true;
    }
    let home = (!international).then_some(region_name.as_str());
    if digits.len() < 3 {
        return Err(match home {
            Some(r) => format!("Too short for {r}: \"{}\"", clip(input, 40)),
            None => format!("Too short: \"{}\"", clip(input, 40)),
        });
    }
    if digits.len() > 17 {
        return Err(match home {
            Some(r) => format!("Too long for {r}: \"{}\"", clip(input, 40)),
            None => format!("Too long: \"{}\"", clip(input, 40)),
        });
    }
    let text = if international {
        format!("+{digits}")
    } else {
        digits.clone()
    };
    let parsed = phonenumber::parse((!international).then_some(region), &text).map_err(|e| {
        let place = home.map(|r| format!(" for {r}")).unwrap_or_default();
        match e {
            ParseError::InvalidCountryCode => {
                format!("Unknown country code in \"{}\"", clip(input, 40))
            }
            ParseError::TooShortAfterIdd | ParseError::TooShortNsn => {
                format!("Too short{place}: \"{}\"", clip(input, 40))
            }
            ParseError::TooLong => format!("Too long{place}: \"{}\"", clip(input, 40)),
            ParseError::NoNumber | ParseError::MalformedInteger(_) => not_a_number(input),
        }
    })?;
    if !parsed.is_valid() {
        return Err(invalid(&parsed, input, home));
    }
    let e164 = parsed.format().mode(Mode::E164).to_string();
    // libphonenumber's data can accept a national form whose E.164 form it then refuses (in
    // Brazil, "0900907878": a carrier prefix read as part of the number). Such a number could
    // not be dialled back from the history or a CRM record, so it is refused here (found by the
    // `numbers` fuzz target: an accepted number's E.164 form must be accepted, as itself).
    let reread = phonenumber::parse(None, &e164)
        .ok()
        .filter(PhoneNumber::is_valid)
        .map(|again| again.format().mode(Mode::E164).to_string());
    if reread.as_deref() != Some(e164.as_str()) {
        return Err(invalid(&parsed, input, home));
    }
    let tel = match &extension {
        Some(ext) => format!("tel:{e164};ext={ext}"),
        None => format!("tel:{e164}"),
    };
    Ok(Normalized {
        national: parsed.format().mode(Mode::National).to_string(),
        international: parsed.format().mode(Mode::International).to_string(),
        region: parsed.country().id().map(|id| id.as_ref().to_owned()),
        e164,
        extension,
        tel,
    })
}

/// Why a parsed number is not valid: too short or too long for its region, or just invalid.
fn invalid(number: &PhoneNumber, input: &str, home: Option<&str>) -> String {
    let database = &phonenumber::metadata::DATABASE;
    let code = number.code().value();
    // An invalid number often has no region of its own: take the main one of its code.
    let meta = number.metadata(database).or_else(|| {
        database
            .by_code(&code)
            .and_then(|all| all.into_iter().find(|m| m.is_main_country_for_code()))
    });
    let region = number
        .country()
        .id()
        .map(|id| id.as_ref().to_owned())
        .or_else(|| meta.map(|m| m.id().to_owned()))
        .or_else(|| home.map(str::to_owned))
        .unwrap_or_else(|| format!("+{code}"));
    let nsn = number.national().to_string().len() as u16;
    let mut lengths: Vec<u16> = meta
        .map(|m| {
            let d = m.descriptors();
            [Some(d.general()), d.fixed_line(), d.mobile(), d.toll_free()]
                .into_iter()
                .flatten()
                .flat_map(|d| d.possible_length().iter().copied())
                .collect()
        })
        .unwrap_or_default();
    lengths.sort_unstable();
    let input = clip(input, 40);
    match (lengths.first(), lengths.last()) {
        (Some(&min), _) if nsn < min => format!("Too short for {region}: \"{input}\""),
        (_, Some(&max)) if nsn > max => format!("Too long for {region}: \"{input}\""),
        _ => format!("Not a valid number for {region}: \"{input}\""),
    }
}

/// Splits off the extension and, for `tel:` URIs, the `phone-context` digits (with `+`
/// dropped). Returns `(number part, extension, context digits)`.
fn split(input: &str) -> Result<(&str, Option<String>, Option<String>), String> {
    let lower = input.to_ascii_lowercase();
    if let Some(uri) = lower.strip_prefix("tel:") {
        let offset = input.len() - uri.len();
        let mut parts = input[offset..].split(';');
        let number = parts.next().unwrap_or_default();
        let (mut extension, mut context) = (None, None);
        for param in parts.take(8) {
            let (name, value) = param.split_once('=').unwrap_or((param, ""));
            match name.trim().to_ascii_lowercase().as_str() {
                "ext" => extension = Some(extension_digits(value, input)?),
                "phone-context" => {
                    let value = value.trim();
                    if let Some(digits) = value.strip_prefix('+') {
                        let digits: String = digits.chars().filter(char::is_ascii_digit).collect();
                        if digits.is_empty() {
                            return Err(not_a_number(input));
                        }
                        context = Some(digits);
                    }
                    // A domain context (`example.com`): the default region applies.
                }
                _ => {} // isub and others: nothing to dial.
            }
        }
        if number.trim().starts_with('+') && context.is_some() {
            context = None;
        }
        return Ok((number, extension, context));
    }
    for marker in [";ext=", "extension", "ext.", "ext", "x", "#"] {
        if let Some(pos) = lower.find(marker) {
            let tail = input[pos + marker.len()..].trim_start_matches([' ', '.', ':', '=']);
            if tail.is_empty() || !tail.chars().all(|c| c.is_ascii_digit()) {
                continue;
            }
            return Ok((&input[..pos], Some(extension_digits(tail, input)?), None));
        }
    }
    Ok((input, None, None))
}

fn extension_digits(value: &str, input: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty()
        || value.len() > MAX_EXTENSION_DIGITS
        || !value.chars().all(|c| c.is_ascii_digit())
    {
        return Err(format!(
            "The extension must be 1 to {MAX_EXTENSION_DIGITS} digits: \"{}\"",
            clip(input, 40)
        ));
    }
    Ok(value.to_owned())
}

/// The demo directory: colleagues' short extensions. Users not listed get one from
/// [`FIRST_DYNAMIC_EXTENSION`] on, in the order the hub first sees them.
pub const DEMO_EXTENSIONS: &[(&str, &str)] = &[
    ("alice", "1001"),
    ("bob", "1002"),
    ("carol", "1003"),
    ("dave", "1004"),
    ("erin", "1005"),
    ("frank", "1006"),
];
/// The first extension handed to a user who is not in [`DEMO_EXTENSIONS`].
pub const FIRST_DYNAMIC_EXTENSION: u32 = 2001;
/// Dynamic extensions handed out at most (2001–9999).
pub const MAX_DYNAMIC_EXTENSIONS: usize = 7999;

/// Extensions of colleagues: the demo table plus dynamically assigned ones (bounded).
#[derive(Debug, Default)]
pub struct Directory {
    by_user: HashMap<String, String>,
    by_extension: HashMap<String, String>,
}

impl Directory {
    /// The user's extension, assigning one to a user seen for the first time. `None` when the
    /// dynamic range is exhausted.
    pub fn extension_of(&mut self, user: &str) -> Option<String> {
        if let Some((_, ext)) = DEMO_EXTENSIONS.iter().find(|(u, _)| *u == user) {
            return Some((*ext).to_owned());
        }
        if let Some(ext) = self.by_user.get(user) {
            return Some(ext.clone());
        }
        if self.by_user.len() >= MAX_DYNAMIC_EXTENSIONS {
            return None;
        }
        let ext = (FIRST_DYNAMIC_EXTENSION + self.by_user.len() as u32).to_string();
        self.by_user.insert(user.to_owned(), ext.clone());
        self.by_extension.insert(ext.clone(), user.to_owned());
        Some(ext)
    }

    /// Whether the user has an extension (demo table or assigned).
    pub fn known(&self, user: &str) -> bool {
        DEMO_EXTENSIONS.iter().any(|(u, _)| *u == user) || self.by_user.contains_key(user)
    }

    /// The user behind a short extension.
    pub fn user_of(&self, extension: &str) -> Option<String> {
        DEMO_EXTENSIONS
            .iter()
            .find(|(_, e)| *e == extension)
            .map(|(u, _)| (*u).to_owned())
            .or_else(|| self.by_extension.get(extension).cloned())
    }

    /// Whether `input` names a colleague: a user id (starts with a letter, user-id characters
    /// only, not a `tel:` URI) or a 3–4 digit extension in the directory. Returns the user id.
    pub fn colleague(&self, input: &str) -> Option<String> {
        let input = input.trim();
        if input.len() >= 3 && input.len() <= 4 && input.chars().all(|c| c.is_ascii_digit()) {
            return self.user_of(input);
        }
        let lower = input.to_ascii_lowercase();
        (input.starts_with(|c: char| c.is_ascii_alphabetic())
            && !lower.starts_with("tel:")
            && crate::auth::is_valid_user_name(input))
        .then(|| input.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_table() {
        // (input, region, Ok(e164, extension, national, international) | Err(prefix))
        type Row = (
            &'static str,
            &'static str,
            Result<
                (
                    &'static str,
                    Option<&'static str>,
                    &'static str,
                    &'static str,
                ),
                &'static str,
            >,
        );
        let rows: &[Row] = &[
            (
                "(425) 555-0123",
                "US",
                Ok(("+14255550123", None, "(425) 555-0123", "+1 425-555-0123")),
            ),
            (
                "425.555.0123",
                "us",
                Ok(("+14255550123", None, "(425) 555-0123", "+1 425-555-0123")),
            ),
            (
                "020 7946 0958",
                "GB",
                Ok(("+442079460958", None, "020 7946 0958", "+44 20 7946 0958")),
            ),
            (
                "+44 20 7946 0958",
                "US",
                Ok(("+442079460958", None, "020 7946 0958", "+44 20 7946 0958")),
            ),
            (
                "0044 20 7946 0958",
                "US",
                Ok(("+442079460958", None, "020 7946 0958", "+44 20 7946 0958")),
            ),
            (
                "030 1234567",
                "DE",
                Ok(("+49301234567", None, "030 1234567", "+49 30 1234567")),
            ),
            (
                "+1 425 555 0123 ext. 42",
                "US",
                Ok((
                    "+14255550123",
                    Some("42"),
                    "(425) 555-0123",
                    "+1 425-555-0123",
                )),
            ),
            (
                "4255550123 x7",
                "US",
                Ok((
                    "+14255550123",
                    Some("7"),
                    "(425) 555-0123",
                    "+1 425-555-0123",
                )),
            ),
            (
                "tel:+44-20-7946-0958;ext=12",
                "US",
                Ok((
                    "+442079460958",
                    Some("12"),
                    "020 7946 0958",
                    "+44 20 7946 0958",
                )),
            ),
            (
                "tel:7946-0958;phone-context=+44-20",
                "US",
                Ok(("+442079460958", None, "020 7946 0958", "+44 20 7946 0958")),
            ),
            (
                "TEL:+14255550123",
                "GB",
                Ok(("+14255550123", None, "(425) 555-0123", "+1 425-555-0123")),
            ),
            ("", "US", Err("Enter a phone number.")),
            ("hello", "US", Err("That is not a phone number: letters")),
            (
                "1-800-FLOWERS",
                "US",
                Err("That is not a phone number: letters"),
            ),
            ("<script>", "US", Err("That is not a phone number")),
            ("12", "US", Err("Too short for US")),
            ("+44 20 7946", "US", Err("Too short for GB")),
            ("020 794", "GB", Err("Too short for GB")),
            ("+44 20 7946 0958 1234 5678", "US", Err("Too long")),
            ("425 555 01234", "US", Err("Too long for US")),
            ("+999 1234 5678", "US", Err("Unknown country code")),
            (
                "tel:+442079460958;ext=12a",
                "US",
                Err("The extension must be"),
            ),
            ("+1 425 555 0123", "ZZ", Err("Unknown region \"ZZ\"")),
            // Valid as typed in Brazil, but its E.164 form is not (fuzz target `numbers`).
            ("0900907878", "BR", Err("Not a valid number for BR")),
        ];
        for (input, region, expected) in rows {
            let got = normalize(input, region);
            match (expected, &got) {
                (Ok((e164, ext, national, international)), Ok(n)) => {
                    assert_eq!(n.e164, *e164, "{input}");
                    assert_eq!(n.extension.as_deref(), *ext, "{input}");
                    assert_eq!(n.national, *national, "{input}");
                    assert_eq!(n.international, *international, "{input}");
                }
                (Err(prefix), Err(e)) => assert!(e.starts_with(prefix), "{input}: {e}"),
                _ => panic!("{input} ({region}): expected {expected:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn tel_uri_and_display() {
        let n = normalize("+1 425 555 0123 #99", "US").unwrap();
        assert_eq!(n.tel, "tel:+14255550123;ext=99");
        assert_eq!(n.display("US"), "(425) 555-0123 ext. 99");
        assert_eq!(n.display("GB"), "+1 425-555-0123 ext. 99");
        assert_eq!(n.last_four(), "0123");
        assert_eq!(n.region.as_deref(), Some("US"));
    }

    #[test]
    fn colleagues_by_id_or_extension() {
        let mut dir = Directory::default();
        assert_eq!(dir.colleague("bob").as_deref(), Some("bob"));
        assert_eq!(dir.colleague("1002").as_deref(), Some("bob"));
        assert_eq!(dir.colleague("1999"), None);
        assert_eq!(dir.colleague("+14255550123"), None);
        assert_eq!(dir.colleague("tel:+14255550123"), None);
        assert_eq!(dir.colleague("1-800-FLOWERS"), None);
        assert_eq!(dir.extension_of("alice").as_deref(), Some("1001"));
        assert_eq!(dir.extension_of("zoe").as_deref(), Some("2001"));
        assert_eq!(dir.extension_of("zoe").as_deref(), Some("2001"));
        assert_eq!(dir.colleague("2001").as_deref(), Some("zoe"));
    }
}
