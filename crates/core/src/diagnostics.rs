//! The support log: a bounded in-memory list of levelled lines, and the report an agent copies
//! or downloads for support. Everything is redacted when it is recorded ([`redact`]), so the
//! log never holds a token, a phone number or an e-mail address, whatever a caller passes in.

use std::collections::VecDeque;

/// How much a line matters; the widget mirrors each to the console method of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Routine detail (`console.debug`).
    Debug,
    /// What happened (`console.info`).
    Info,
    /// Something was refused or failed and was handled (`console.warn`).
    Warn,
    /// Something failed that the agent notices (`console.error`).
    Error,
}

impl Level {
    /// `DEBUG`, `INFO`, `WARN`, `ERROR`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Milliseconds since the page loaded.
    pub ms: u64,
    pub level: Level,
    /// Already redacted.
    pub text: String,
}

impl Entry {
    /// `   12345 WARN  text`.
    pub fn line(&self) -> String {
        format!("{:>9} {:<5} {}", self.ms, self.level.as_str(), self.text)
    }
}

/// The bounded log: the oldest line goes first when it is full.
#[derive(Debug, Clone, Default)]
pub struct Log {
    entries: VecDeque<Entry>,
}

impl Log {
    /// Lines kept.
    pub const CAPACITY: usize = 1_000;

    /// Appends a line, redacted, dropping the oldest when full.
    pub fn push(&mut self, ms: u64, level: Level, text: &str) {
        if self.entries.len() == Self::CAPACITY {
            self.entries.pop_front();
        }
        self.entries.push_back(Entry {
            ms,
            level,
            text: redact(text),
        });
    }

    /// Every line, oldest first.
    pub fn entries(&self) -> impl DoubleEndedIterator<Item = &Entry> {
        self.entries.iter()
    }

    /// How many lines are kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The last `n` warnings and errors, newest first.
    pub fn problems(&self, n: usize) -> Vec<&Entry> {
        self.entries
            .iter()
            .rev()
            .filter(|e| e.level >= Level::Warn)
            .take(n)
            .collect()
    }

    /// The support report: `facts` as `name: value` lines (redacted too), then the log.
    pub fn report(&self, facts: &[(&str, String)]) -> String {
        let mut out = String::from("Switchboard diagnostics\n");
        for (name, value) in facts {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(&redact(value));
            out.push('\n');
        }
        out.push_str("\nlog (oldest first):\n");
        for entry in &self.entries {
            out.push_str(&entry.line());
            out.push('\n');
        }
        out
    }
}

/// Removes what must never reach a support ticket:
/// - JWTs (`eyJ…` with two dots) and anything after `Bearer ` / `access_token=` /
///   `id_token=` / `code=` → `[token]`;
/// - e-mail addresses → `[email]`;
/// - phone numbers: a run of 7 or more digits, with `+`, spaces, dots, dashes or brackets
///   between them → `[number]` (call ids such as `c-12` and times such as `12345 ms` stay).
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        // Secrets introduced by a keyword: everything up to the next space, quote or `&`.
        if let Some(skip) = [
            "Bearer ",
            "access_token=",
            "id_token=",
            "refresh_token=",
            "code=",
        ]
        .iter()
        .find(|k| starts_with(&chars[i..], k))
        .map(|k| k.chars().count())
        {
            let word_start = i == 0 || !chars[i - 1].is_alphanumeric();
            if word_start {
                out.extend(&chars[i..i + skip]);
                i += skip;
                let end = scan(&chars, i, |c| !c.is_whitespace() && !"\"'&,;".contains(c));
                if end > i {
                    out.push_str("[token]");
                }
                i = end;
                continue;
            }
        }
        // A JWT: eyJ… . … . …
        if starts_with(&chars[i..], "eyJ") {
            let end = scan(&chars, i, |c| {
                c.is_ascii_alphanumeric() || "-_.".contains(c)
            });
            if chars[i..end].iter().filter(|c| **c == '.').count() >= 2 {
                out.push_str("[token]");
                i = end;
                continue;
            }
        }
        // An e-mail address: a word with one @ and a dotted domain.
        if chars[i] == '@' {
            let local_start = {
                let mut s = i;
                while s > 0 && is_email_char(chars[s - 1]) {
                    s -= 1;
                }
                s
            };
            let end = scan(&chars, i + 1, |c| c.is_alphanumeric() || "-.".contains(c));
            let domain: String = chars[i + 1..end].iter().collect();
            if local_start < i && domain.trim_end_matches('.').contains('.') {
                let local_len = i - local_start;
                for _ in 0..local_len {
                    out.pop();
                }
                out.push_str("[email]");
                i = end;
                continue;
            }
        }
        // A phone number: digits with separators, at least 7 digits, not inside a word.
        if (chars[i].is_ascii_digit()
            || (chars[i] == '+' && chars.get(i + 1).is_some_and(char::is_ascii_digit)))
            && (i == 0 || !chars[i - 1].is_alphanumeric() && chars[i - 1] != '-')
        {
            let end = scan(&chars, i, |c| c.is_ascii_digit() || " +-.()/".contains(c));
            // Don't swallow trailing separators.
            let mut last = end;
            while last > i && !chars[last - 1].is_ascii_digit() {
                last -= 1;
            }
            let digits = chars[i..last].iter().filter(|c| c.is_ascii_digit()).count();
            let glued = chars.get(last).is_some_and(|c| c.is_alphanumeric());
            let dotted_quad = chars[i..last]
                .iter()
                .all(|c| c.is_ascii_digit() || *c == '.')
                && chars[i..last].iter().filter(|c| **c == '.').count() == 3;
            if digits >= 7 && !glued && !dotted_quad {
                out.push_str("[number]");
                i = last;
                continue;
            }
            // Not a number (too short, an address, part of a word): copy it as it is.
            let last = last.max(i + 1);
            out.extend(&chars[i..last]);
            i = last;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

fn starts_with(chars: &[char], prefix: &str) -> bool {
    let mut it = chars.iter();
    prefix.chars().all(|p| it.next() == Some(&p))
}

fn scan(chars: &[char], from: usize, keep: impl Fn(char) -> bool) -> usize {
    let mut end = from;
    while end < chars.len() && keep(chars[end]) {
        end += 1;
    }
    end
}

fn is_email_char(c: char) -> bool {
    c.is_alphanumeric() || "._%+-".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";

    #[test]
    fn tokens_are_removed_wherever_they_appear() {
        assert_eq!(
            redact(&format!("negotiate with {JWT} failed")),
            "negotiate with [token] failed"
        );
        assert_eq!(
            redact(&format!("GET /hub?id=x&access_token={JWT}&y=1")),
            "GET /hub?id=x&access_token=[token]&y=1"
        );
        assert_eq!(
            redact("Authorization: Bearer abc.def"),
            "Authorization: Bearer [token]"
        );
        assert_eq!(
            redact("redirect?code=0.AXYZ_secret&state=1"),
            "redirect?code=[token]&state=1"
        );
        // Not a keyword inside another word, not a lone eyJ.
        assert_eq!(redact("zipcode=12 eyJ alone"), "zipcode=12 eyJ alone");
    }

    #[test]
    fn phone_numbers_and_emails_are_removed() {
        assert_eq!(
            redact("incoming call from +1 425-555-0123."),
            "incoming call from [number]."
        );
        assert_eq!(redact("dialled 004930123456, ok"), "dialled [number], ok");
        assert_eq!(redact("(425) 555 0123"), "([number]");
        assert_eq!(
            redact("agent ada.l+cc@contoso.example wrote"),
            "agent [email] wrote"
        );
        assert_eq!(redact("team@ten"), "team@ten");
    }

    #[test]
    fn ids_counts_and_times_stay() {
        for kept in [
            "placed call c-1700000000123 (queue 12)",
            "   123456 ms since load",
            "call 7f3a9c1b-22aa-4b1e-9c1d-1234567890ab ended",
            "HTTP 503 after 2000 ms, attempt 3",
            "transport WebSockets, 12 resumed",
            "hub http://192.168.100.200:8080/hub",
        ] {
            let shown = redact(kept);
            assert!(!shown.contains("[number]"), "{kept} → {shown}");
        }
    }

    #[test]
    fn the_log_is_bounded_levelled_and_redacted() {
        let mut log = Log::default();
        for i in 0..(Log::CAPACITY + 20) {
            log.push(i as u64, Level::Info, &format!("line {i}"));
        }
        assert_eq!(log.len(), Log::CAPACITY);
        assert_eq!(log.entries().next().unwrap().text, "line 20");
        log.push(9_000, Level::Warn, "negotiate failed for +44 20 7946 0000");
        log.push(9_001, Level::Error, &format!("token {JWT}"));
        let problems = log.problems(5);
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].text, "token [token]");
        assert_eq!(problems[1].text, "negotiate failed for [number]");
        let report = log.report(&[
            ("Hub", "http://127.0.0.1:8080/hub".into()),
            ("User", "ada@contoso.example".into()),
        ]);
        assert!(report.contains("Hub: http://127.0.0.1:8080/hub\n"));
        assert!(report.contains("User: [email]\n"));
        assert!(report.contains("     9001 ERROR token [token]\n"));
        assert!(!report.contains("eyJ") && !report.contains("7946"));
    }
}
