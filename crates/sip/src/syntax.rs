//! Character classes and small scanners of the RFC 3261 §25 grammar shared by the header and
//! URI parsers.

/// `token` characters (RFC 3261 §25.1).
pub fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

/// Whether `s` is a non-empty `token`.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_token_char)
}

/// `word` characters (Call-ID, RFC 3261 §25.1).
pub fn is_word_char(c: char) -> bool {
    is_token_char(c) || "()<>:\\\"/[]?{}".contains(c)
}

/// `unreserved` (RFC 3261 §25.1).
pub fn is_unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.!~*'()".contains(c)
}

/// Linear white space as left after unfolding: SP or HTAB.
pub fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Checks that `s` is made of `unreserved`, `escaped` (`%` HEX HEX) and the extra characters.
pub fn check_escaped(s: &str, extra: &str) -> Result<(), String> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i] as char;
        if c == '%' {
            let ok = bytes.len() > i + 2
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit();
            if !ok {
                return Err(format!("`%` not followed by two hex digits in `{s}`"));
            }
            i += 3;
            continue;
        }
        if !(is_unreserved(c) || extra.contains(c)) {
            return Err(format!(
                "character `{}` not allowed in `{s}`",
                c.escape_default()
            ));
        }
        i += 1;
    }
    Ok(())
}

/// Decodes `%HH` escapes (RFC 3261 §19.1.2); invalid escapes are kept as they are.
pub fn unescape(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Escapes every byte outside `unreserved` and `extra` as `%HH`.
pub fn escape(s: &str, extra: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let c = b as char;
        if b < 0x80 && (is_unreserved(c) || extra.contains(c)) {
            out.push(c);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reads a `quoted-string` at the start of `s` (which must begin with `"`). Returns the
/// unescaped content and the rest after the closing quote.
pub fn read_quoted(s: &str) -> Result<(String, &str), String> {
    let mut chars = s.char_indices();
    match chars.next() {
        Some((_, '"')) => {}
        _ => return Err("expected `\"`".into()),
    }
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &s[i + 1..])),
            '\\' => match chars.next() {
                Some((_, q)) if q != '\n' && q != '\r' && (q as u32) <= 0x7f => out.push(q),
                _ => return Err("invalid quoted-pair".into()),
            },
            '\r' | '\n' => return Err("line break in quoted string".into()),
            c => out.push(c),
        }
    }
    Err(format!("unterminated quoted string {s}"))
}

/// Quotes `s` as a `quoted-string`, escaping `"` and `\`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The characters of `s` (with their byte offsets) outside quoted strings; a quoted string,
/// its quotes included, is passed over.
pub fn unquoted_chars(s: &str) -> impl Iterator<Item = (usize, char)> + '_ {
    let mut in_quotes = false;
    let mut escaped = false;
    s.char_indices().filter(move |&(_, c)| {
        if in_quotes {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_quotes = false;
            }
            false
        } else if c == '"' {
            in_quotes = true;
            false
        } else {
            true
        }
    })
}

/// Splits `s` at the top-level occurrences of `sep` (outside quoted strings and `<...>`).
pub fn split_top(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_angle = false;
    for (i, c) in unquoted_chars(s) {
        match c {
            '<' => in_angle = true,
            '>' => in_angle = false,
            c if c == sep && !in_angle => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Generic parameters (`;name[=value]`, RFC 3261 §25.1 `generic-param`), in order. Values are
/// kept as written (a quoted value keeps its quotes); names compare case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, Option<String>)>);

impl Params {
    /// Parses `;a=b;c` (the text after the value, starting at the first `;` or empty). LWS is
    /// allowed around `;` and `=`. `quoted` allows quoted-string values (header params) as
    /// opposed to URI params.
    pub fn parse(s: &str, quoted: bool) -> Result<Params, String> {
        let mut params = Vec::new();
        let s = s.trim_matches(is_ws);
        if s.is_empty() {
            return Ok(Params(params));
        }
        let Some(s) = s.strip_prefix(';') else {
            return Err(format!("expected `;` before `{s}`"));
        };
        for part in split_top(s, ';') {
            let (name, value) = match part.split_once('=') {
                Some((n, v)) => (n.trim_matches(is_ws), Some(v.trim_matches(is_ws))),
                None => (part.trim_matches(is_ws), None),
            };
            if name.is_empty() {
                return Err("empty parameter".into());
            }
            if quoted {
                if !is_token(name) {
                    return Err(format!("parameter name `{name}` is not a token"));
                }
                if let Some(v) = value {
                    if v.starts_with('"') {
                        let (_, rest) = read_quoted(v)?;
                        if !rest.is_empty() {
                            return Err(format!("text after quoted value of `{name}`"));
                        }
                    } else if v.is_empty()
                        || !v.chars().all(|c| is_token_char(c) || "[]:".contains(c))
                    {
                        return Err(format!("invalid value `{v}` of parameter `{name}`"));
                    }
                }
            } else {
                check_escaped(name, "[]/:&+$")?;
                if let Some(v) = value {
                    check_escaped(v, "[]/:&+$")?;
                }
            }
            params.push((name.to_owned(), value.map(str::to_owned)));
        }
        Ok(Params(params))
    }

    /// The raw value of parameter `name` (`Some("")` for a parameter without value).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref().unwrap_or(""))
    }

    /// The value of `name` with surrounding quotes and quoted-pairs removed.
    pub fn get_unquoted(&self, name: &str) -> Option<String> {
        let v = self.get(name)?;
        if v.starts_with('"') {
            read_quoted(v).ok().map(|(s, _)| s)
        } else {
            Some(v.to_owned())
        }
    }

    /// Whether `name` is present.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets `name` (replacing an existing value).
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        let value = value.map(str::to_owned);
        if let Some(slot) = self
            .0
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            slot.1 = value;
        } else {
            self.0.push((name.to_owned(), value));
        }
    }

    /// Removes `name`.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }
}

impl std::fmt::Display for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (n, v) in &self.0 {
            match v {
                Some(v) => write!(f, ";{n}={v}")?,
                None => write!(f, ";{n}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_strings() {
        assert_eq!(
            read_quoted(r#""J Rosenberg \\\"" <x>"#).unwrap(),
            (r#"J Rosenberg \""#.to_owned(), " <x>")
        );
        assert!(read_quoted("\"Mr. J. User <sip:j@x>").is_err());
        assert_eq!(quote(r#"a"b\"#), r#""a\"b\\""#);
    }

    #[test]
    fn params_with_lws() {
        let p = Params::parse(" ;   tag    = 1918181833n", true).unwrap();
        assert_eq!(p.get("TAG"), Some("1918181833n"));
        assert!(Params::parse(";;,;,,", true).is_err());
        let p = Params::parse(";lr;unknownwith=value;unknown-no-value", false).unwrap();
        assert_eq!(p.get("lr"), Some(""));
        assert_eq!(p.to_string(), ";lr;unknownwith=value;unknown-no-value");
    }

    #[test]
    fn split_respects_quotes_and_angles() {
        assert_eq!(
            split_top(r#""a,b" <sip:x;y,z>, <sip:w>"#, ','),
            vec![r#""a,b" <sip:x;y,z>"#, " <sip:w>"]
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape("%75se%72"), b"user");
        assert_eq!(unescape("%00"), vec![0]);
        assert_eq!(escape("a;b@c", ""), "a%3Bb%40c");
    }
}
