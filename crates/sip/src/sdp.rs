//! The small part of SDP (RFC 4566, RFC 3264 §8.4) the signalling core needs: reading and
//! rewriting the media direction for hold (`a=sendonly` / `a=inactive`) and resume.

/// A media direction attribute (RFC 4566 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `a=sendrecv` (the default when none is given).
    SendRecv,
    /// `a=sendonly`: we put the other side on hold.
    SendOnly,
    /// `a=recvonly`: the other side put us on hold.
    RecvOnly,
    /// `a=inactive`: no media either way.
    Inactive,
}

impl Direction {
    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn parse(line: &str) -> Option<Direction> {
        match line {
            "a=sendrecv" => Some(Direction::SendRecv),
            "a=sendonly" => Some(Direction::SendOnly),
            "a=recvonly" => Some(Direction::RecvOnly),
            "a=inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// The direction an answer takes to an offer with this direction (RFC 3264 §6.1):
    /// sendonly → recvonly, recvonly → sendonly, the rest unchanged.
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }
}

/// The direction of the first media section (its own attribute, else the session-level one,
/// else sendrecv).
pub fn direction(sdp: &str) -> Direction {
    let mut session = None;
    let mut in_media = false;
    for line in sdp.lines().map(|l| l.trim_end_matches('\r')) {
        if line.starts_with("m=") {
            if in_media {
                break;
            }
            in_media = true;
            continue;
        }
        if let Some(d) = Direction::parse(line) {
            if in_media {
                return d;
            }
            session = Some(d);
        }
    }
    session.unwrap_or(Direction::SendRecv)
}

/// `sdp` with every direction attribute removed and `a=<dir>` added to each media section
/// (after its `m=`/`c=`/`b=` lines' block, at its end). Line endings become CRLF.
pub fn set_direction(sdp: &str, dir: Direction) -> String {
    let mut out = String::with_capacity(sdp.len() + 32);
    let mut in_media = false;
    for line in sdp.lines().map(|l| l.trim_end_matches('\r')) {
        if Direction::parse(line).is_some() {
            continue;
        }
        if line.starts_with("m=") {
            if in_media {
                out.push_str(&format!("a={}\r\n", dir.as_str()));
            }
            in_media = true;
        }
        if line.is_empty() {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    if in_media {
        out.push_str(&format!("a={}\r\n", dir.as_str()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\na=rtpmap:111 opus/48000/2\r\n";

    #[test]
    fn hold_and_resume_rewrite() {
        let held = set_direction(OFFER, Direction::SendOnly);
        assert_eq!(direction(&held), Direction::SendOnly);
        assert!(!held.contains("a=sendrecv"));
        assert_eq!(held.matches("a=sendonly").count(), 1);
        assert!(held.ends_with("a=rtpmap:111 opus/48000/2\r\na=sendonly\r\n"));
        let resumed = set_direction(&held, Direction::SendRecv);
        assert_eq!(direction(&resumed), Direction::SendRecv);
        let inactive = set_direction(OFFER, Direction::Inactive);
        assert_eq!(direction(&inactive), Direction::Inactive);
    }

    #[test]
    fn two_media_sections_and_session_level() {
        let sdp = "v=0\ns=-\na=recvonly\nm=audio 1 RTP/AVP 0\nm=video 2 RTP/AVP 31\na=inactive\n";
        assert_eq!(direction(sdp), Direction::RecvOnly);
        let out = set_direction(sdp, Direction::SendOnly);
        assert_eq!(out.matches("a=sendonly").count(), 2);
        assert!(!out.contains("recvonly") && !out.contains("inactive"));
        assert_eq!(Direction::SendOnly.answer(), Direction::RecvOnly);
        assert_eq!(
            direction("v=0\r\nm=audio 1 RTP/AVP 0\r\n"),
            Direction::SendRecv
        );
    }
}
