//! Call quality from the figures WebRTC's `getStats` reports, and the two warnings the agent
//! sees during a call: "poor call quality" and "no sound from your microphone" / "you are muted".
//!
//! Pure and clock-free like the rest of this crate: the adapter feeds samples with the time
//! they were taken and reads back the warning to show.
//!
//! The quality estimate is the E-model (ITU-T G.107) in the simplified form of Cole and
//! Rosenbluth, "Voice over IP performance monitoring", ACM SIGCOMM CCR 31(2), 2001, §4, as VoIP
//! monitors use it (only delay and loss impair a default-rated R of 93.2):
//!
//! - effective latency `d = one_way + 2 · jitter + 10 ms` (one-way delay taken as RTT / 2; the
//!   jitter buffer adds about twice the jitter; 10 ms for the codec),
//! - `R = 93.2 − Id − Ie` with `Id = d / 40` below 160 ms and `(d − 120) / 10` from there, and
//!   `Ie = 2.5 · loss %` (the G.711-with-concealment slope),
//! - MOS from R by G.107 (06/2015) Annex B, eq. B-4:
//!   `1 + 0.035 R + 7·10⁻⁶ R (R − 60)(100 − R)`, 1 at or below R = 0, 4.5 at or above 100.

use std::time::Duration;

/// What `getStats` says about the received audio over one interval.
///
/// Units: seconds for `jitter_s` and `rtt_s` (as WebRTC reports them: `inbound-rtp.jitter`,
/// `candidate-pair.currentRoundTripTime` or `remote-inbound-rtp.roundTripTime`); packet counts
/// are the cumulative `inbound-rtp.packetsLost` and `packetsReceived` since the call began.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LinkStats {
    /// Interarrival jitter (RFC 3550 §6.4.1), seconds.
    pub jitter_s: f64,
    /// Round-trip time, seconds; `None` when not reported yet.
    pub rtt_s: Option<f64>,
    /// Packets lost since the call began (cumulative).
    pub packets_lost: u64,
    /// Packets received since the call began (cumulative).
    pub packets_received: u64,
    /// The far end's view of the audio we send, from its RTCP receiver reports (`None` until
    /// one arrived).
    pub far_end: Option<FarEnd>,
}

/// What the far end reports about the audio it receives from us: RTCP receiver report blocks
/// (RFC 3550 §6.4.1, §6.4.2), as `getStats` shows them in `remote-inbound-rtp` (W3C
/// webrtc-stats §8.6).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FarEnd {
    /// `fractionLost`: the share of our packets lost since its previous report, 0.0–1.0.
    pub fraction_lost: f64,
    /// `jitter` it measured on our packets, seconds.
    pub jitter_s: f64,
    /// `roundTripTime` from the report's LSR/DLSR (end to end to the far RTP peer), seconds.
    pub rtt_s: Option<f64>,
}

/// Which way the audio an estimate is about flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// What the agent hears (our `inbound-rtp`).
    Received,
    /// What the far end hears (its receiver reports: `remote-inbound-rtp`).
    Sent,
}

/// A call's quality over the latest interval: both directions and the one that counts (the
/// worse: a call is as good as its worse direction).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallQuality {
    /// The lower-MOS direction of the two (the received one while the far end has not reported).
    pub call: Estimate,
    /// What the agent hears.
    pub received: Estimate,
    /// What the far end hears, when it sent receiver reports.
    pub sent: Option<Estimate>,
}

impl CallQuality {
    /// One line for Diagnostics: `MOS 4.4 · you hear: loss 0.0 %, jitter 2 ms · the far end
    /// hears: loss 0.0 %, jitter 1 ms · RTT 3 ms` (the far end's part only when it reported).
    pub fn summary(&self) -> String {
        let part = |e: &Estimate| {
            format!(
                "loss {:.1} %, jitter {} ms (MOS {:.1})",
                e.loss_percent,
                e.jitter_ms.round() as i64,
                e.mos
            )
        };
        let mut line = format!(
            "estimated MOS {:.1} · you hear: {}",
            self.call.mos,
            part(&self.received)
        );
        if let Some(sent) = &self.sent {
            line.push_str(" · the far end hears: ");
            line.push_str(&part(sent));
        }
        line.push_str(&format!(" · RTT {} ms", self.call.rtt_ms.round() as i64));
        line
    }
}

/// The impairment that weighs most in a poor estimate, for the agent's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impairment {
    /// Packets lost on the way (the far end's voice breaks up).
    Loss,
    /// Packets arriving unevenly (the jitter buffer grows; delay and gaps).
    Jitter,
    /// A long round trip (people talk over each other).
    Delay,
}

/// One estimate: MOS (1–4.5) and the figures it came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Mean opinion score, 1 (bad) to 4.5 (the best narrowband telephony reaches).
    pub mos: f64,
    /// The E-model's transmission rating R, 0–100.
    pub r: f64,
    /// Packet loss in this interval, percent (0–100).
    pub loss_percent: f64,
    /// Jitter, milliseconds.
    pub jitter_ms: f64,
    /// Round-trip time, milliseconds (0 when unknown).
    pub rtt_ms: f64,
    /// What lowers R the most.
    pub worst: Impairment,
    /// Which way the audio flows that these figures are about ([`estimate`] says `Received`).
    pub direction: Direction,
}

/// The MOS of a call with `loss_percent` packet loss (0–100), `jitter_ms` of jitter and a
/// round trip of `rtt_ms`, by the simplified E-model in this module's documentation. Negative
/// or non-finite inputs count as 0; loss above 100 counts as 100.
pub fn estimate(loss_percent: f64, jitter_ms: f64, rtt_ms: f64) -> Estimate {
    let clean = |x: f64| if x.is_finite() { x.max(0.0) } else { 0.0 };
    let loss = clean(loss_percent).min(100.0);
    let jitter = clean(jitter_ms);
    let rtt = clean(rtt_ms);
    let latency = rtt / 2.0 + 2.0 * jitter + 10.0;
    let delay_impairment = if latency < 160.0 {
        latency / 40.0
    } else {
        (latency - 120.0) / 10.0
    };
    let loss_impairment = 2.5 * loss;
    let r = (93.2 - delay_impairment - loss_impairment).clamp(0.0, 100.0);
    let mos = if r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + 7.0e-6 * r * (r - 60.0) * (100.0 - r)
    };
    // Which term costs most: the jitter's share of the delay term versus the round trip's.
    let jitter_share = delay_impairment * (2.0 * jitter) / latency;
    let delay_share = delay_impairment - jitter_share;
    let worst = if loss_impairment >= jitter_share && loss_impairment >= delay_share {
        Impairment::Loss
    } else if jitter_share >= delay_share {
        Impairment::Jitter
    } else {
        Impairment::Delay
    };
    Estimate {
        mos: mos.clamp(1.0, 4.5),
        r,
        loss_percent: loss,
        jitter_ms: jitter,
        rtt_ms: rtt,
        worst,
        direction: Direction::Received,
    }
}

/// Below this MOS the call counts as poor ("fair" starts at 3.6 in G.107's user-satisfaction
/// table, Annex B Table B.1: R 70 ≈ MOS 3.6).
pub const POOR_MOS: f64 = 3.5;
/// How long the estimate must stay poor before the agent is warned.
pub const POOR_FOR: Duration = Duration::from_secs(5);

/// Watches a call's quality: fed `getStats` samples, says when the call has been poor for
/// [`POOR_FOR`] and why. Loss is taken over each interval (the difference of the cumulative
/// counters), so an early burst does not colour the rest of the call.
#[derive(Debug, Clone, Default)]
pub struct QualityWatch {
    last: Option<LinkStats>,
    poor_since: Option<Duration>,
    latest: Option<CallQuality>,
}

impl QualityWatch {
    /// A watch for a new call.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the sample taken at `now` (any monotonic clock); returns the call's estimate for
    /// the interval since the previous sample (`None` for the first, which has no interval, or
    /// when no packet was expected in it): the worse of what the agent hears (loss over the
    /// interval, our jitter) and, once the far end reports, what it hears (its `fraction_lost`
    /// and jitter). Both use the longer of the two round trips known (ICE pair and RTCP), as the
    /// delay is the path's. Counters that went backwards (a new receiver) start over.
    pub fn push(&mut self, now: Duration, stats: LinkStats) -> Option<Estimate> {
        let previous = self.last.replace(stats);
        let previous = previous?;
        if stats.packets_lost < previous.packets_lost
            || stats.packets_received < previous.packets_received
        {
            self.poor_since = None;
            return None;
        }
        let lost = (stats.packets_lost - previous.packets_lost) as f64;
        let received = (stats.packets_received - previous.packets_received) as f64;
        if lost + received == 0.0 {
            return None;
        }
        let far = stats.far_end;
        let rtt_ms = [stats.rtt_s, far.and_then(|f| f.rtt_s)]
            .into_iter()
            .flatten()
            .filter(|r| r.is_finite())
            .fold(0.0_f64, f64::max)
            * 1000.0;
        let heard = estimate(
            100.0 * lost / (lost + received),
            stats.jitter_s * 1000.0,
            rtt_ms,
        );
        let sent = far.map(|f| Estimate {
            direction: Direction::Sent,
            ..estimate(f.fraction_lost * 100.0, f.jitter_s * 1000.0, rtt_ms)
        });
        let e = match sent {
            Some(sent) if sent.mos < heard.mos => sent,
            _ => heard,
        };
        if e.mos < POOR_MOS {
            self.poor_since.get_or_insert(now);
        } else {
            self.poor_since = None;
        }
        self.latest = Some(CallQuality {
            call: e,
            received: heard,
            sent,
        });
        Some(e)
    }

    /// The latest interval's estimates, both ways (Diagnostics); `None` before the second sample.
    pub fn latest(&self) -> Option<CallQuality> {
        self.latest
    }

    /// The estimate to warn about at `now`: the latest one, once every estimate for at least
    /// [`POOR_FOR`] has been below [`POOR_MOS`]; `None` while the call is fine.
    pub fn warning(&self, now: Duration) -> Option<Estimate> {
        let since = self.poor_since?;
        (now.saturating_sub(since) >= POOR_FOR)
            .then_some(self.latest.map(|q| q.call))
            .flatten()
    }
}

/// Below this level (dBFS, RMS) the microphone counts as silent: a muted or dead microphone
/// gives −100 dB or less; a quiet room through a headset is around −60 dB; speech −40 to −15.
pub const SILENT_DB: f64 = -70.0;
/// Above this level the agent is talking (for the "you are muted" hint).
pub const TALKING_DB: f64 = -45.0;
/// How long the microphone must be silent on a call before the agent is told.
pub const SILENT_FOR: Duration = Duration::from_secs(5);
/// How long the agent must talk while muted before the hint shows.
pub const TALKING_FOR: Duration = Duration::from_millis(1500);

/// What the microphone's level says, for the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MicHint {
    /// Nothing to say.
    Fine,
    /// Not muted, yet nothing heard for [`SILENT_FOR`].
    NoSound,
    /// Muted, yet talking for [`TALKING_FOR`]: the far end does not hear it.
    TalkingWhileMuted,
}

/// Watches the microphone's level during a call. The level must be read from a copy of the
/// microphone's track that muting does not silence (`MediaStreamTrack.clone()`), so talking
/// while muted can be told apart from a dead microphone.
#[derive(Debug, Clone, Default)]
pub struct MicWatch {
    silent_since: Option<Duration>,
    talking_since: Option<Duration>,
    muted: bool,
}

impl MicWatch {
    /// A watch for a new call.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the level (dBFS, RMS over the last analysis window) at `now`, and whether the agent
    /// has muted; returns what to tell the agent. Muting or unmuting starts the counts over.
    pub fn push(&mut self, now: Duration, level_db: f64, muted: bool) -> MicHint {
        if muted != self.muted {
            self.muted = muted;
            self.silent_since = None;
            self.talking_since = None;
        }
        let level = if level_db.is_nan() {
            f64::NEG_INFINITY
        } else {
            level_db
        };
        if level < SILENT_DB {
            self.silent_since.get_or_insert(now);
        } else {
            self.silent_since = None;
        }
        if level > TALKING_DB {
            self.talking_since.get_or_insert(now);
        } else {
            self.talking_since = None;
        }
        let lasted = |since: Option<Duration>, d: Duration| {
            since.is_some_and(|s| now.saturating_sub(s) >= d)
        };
        if muted && lasted(self.talking_since, TALKING_FOR) {
            MicHint::TalkingWhileMuted
        } else if !muted && lasted(self.silent_since, SILENT_FOR) {
            MicHint::NoSound
        } else {
            MicHint::Fine
        }
    }
}

/// The level in dBFS of a block of samples (−1.0 … 1.0, as `AnalyserNode.getFloatTimeDomainData`
/// gives them): 20·log10 of the RMS; −∞ for an empty or all-zero block. A full-scale sine is
/// about −3 dB.
pub fn level_db(samples: &[f32]) -> f64 {
    if samples.is_empty() {
        return f64::NEG_INFINITY;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (sum / samples.len() as f64).sqrt();
    if rms == 0.0 {
        f64::NEG_INFINITY
    } else {
        20.0 * rms.log10()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    #[test]
    fn a_clean_lan_call_is_near_the_narrowband_ceiling() {
        let e = estimate(0.0, 1.0, 2.0);
        // R = 93.2 − (1 + 2 + 10)/40 = 92.875 → MOS ≈ 4.40
        assert!((e.r - 92.875).abs() < 1e-9, "{e:?}");
        assert!((e.mos - 4.40).abs() < 0.01, "{e:?}");
    }

    #[test]
    fn g107_r_to_mos_anchor_points() {
        // Annex B: R = 50 → MOS ≈ 2.58, R = 70 → ≈ 3.60, R = 80 → ≈ 4.02, R = 90 → ≈ 4.34.
        // R = 93.2 − d/40 − 2.5·loss with d = 10 ms (no jitter, no RTT): pick loss for each R.
        for (r, mos) in [(50.0, 2.58), (70.0, 3.60), (80.0, 4.02), (90.0, 4.34)] {
            let loss = (93.2 - 0.25 - r) / 2.5;
            let e = estimate(loss, 0.0, 0.0);
            assert!((e.r - r).abs() < 1e-9, "R {r}: {e:?}");
            assert!((e.mos - mos).abs() < 0.01, "R {r}: MOS {} not {mos}", e.mos);
        }
    }

    #[test]
    fn loss_alone_makes_a_call_poor_from_about_ten_percent() {
        assert!(estimate(8.0, 0.0, 0.0).mos >= POOR_MOS);
        let poor = estimate(10.0, 0.0, 0.0);
        assert!(poor.mos < POOR_MOS, "{poor:?}");
        assert_eq!(poor.worst, Impairment::Loss);
    }

    #[test]
    fn delay_past_160_ms_costs_ten_times_more() {
        // d = 150 ms: Id = 3.75; d = 170 ms: Id = 5; d = 400 ms: Id = 28.
        let d150 = estimate(0.0, 0.0, 280.0);
        let d170 = estimate(0.0, 0.0, 320.0);
        let d400 = estimate(0.0, 0.0, 780.0);
        assert!((d150.r - (93.2 - 3.75)).abs() < 1e-9);
        assert!((d170.r - (93.2 - 5.0)).abs() < 1e-9);
        assert!((d400.r - (93.2 - 28.0)).abs() < 1e-9);
        assert_eq!(d400.worst, Impairment::Delay);
        assert!(estimate(0.0, 0.0, 1200.0).mos < POOR_MOS);
    }

    #[test]
    fn heavy_jitter_is_named_as_the_reason() {
        let e = estimate(0.5, 200.0, 20.0);
        assert!(e.mos < POOR_MOS, "{e:?}");
        assert_eq!(e.worst, Impairment::Jitter);
    }

    #[test]
    fn bad_inputs_are_bounded() {
        let e = estimate(f64::NAN, -5.0, f64::INFINITY);
        assert_eq!((e.loss_percent, e.jitter_ms, e.rtt_ms), (0.0, 0.0, 0.0));
        let total = estimate(250.0, 0.0, 0.0);
        assert_eq!(total.loss_percent, 100.0);
        assert_eq!(total.r, 0.0);
        assert_eq!(total.mos, 1.0);
    }

    fn stats(lost: u64, received: u64) -> LinkStats {
        LinkStats {
            jitter_s: 0.002,
            rtt_s: Some(0.010),
            packets_lost: lost,
            packets_received: received,
            far_end: None,
        }
    }

    #[test]
    fn the_far_ends_reports_count_when_they_are_worse_and_show_in_the_summary() {
        let mut w = QualityWatch::new();
        assert_eq!(w.latest(), None);
        w.push(s(0.0), stats(0, 0));
        // We hear a clean call; no report from the far end yet.
        let e = w.push(s(2.0), stats(0, 100)).unwrap();
        assert_eq!(e.direction, Direction::Received);
        let q = w.latest().unwrap();
        assert_eq!(q.sent, None);
        assert_eq!(
            q.summary(),
            "estimated MOS 4.4 · you hear: loss 0.0 %, jitter 2 ms (MOS 4.4) · RTT 10 ms"
        );
        // The far end lost a fifth of what we sent (fractionLost 0.2), with 30 ms of jitter and
        // an RTCP round trip of 80 ms (longer than the ICE pair's 10 ms): that direction counts.
        let far = FarEnd {
            fraction_lost: 0.2,
            jitter_s: 0.030,
            rtt_s: Some(0.080),
        };
        let e = w
            .push(
                s(4.0),
                LinkStats {
                    far_end: Some(far),
                    ..stats(0, 200)
                },
            )
            .unwrap();
        assert_eq!(e.direction, Direction::Sent);
        assert!((e.loss_percent - 20.0).abs() < 1e-9);
        assert_eq!(e.rtt_ms, 80.0);
        assert!(e.mos < POOR_MOS, "{e:?}");
        let q = w.latest().unwrap();
        assert_eq!(q.call, e);
        // What we hear used the longer round trip too: d = 40 + 4 + 10 = 54 ms.
        assert!((q.received.r - (93.2 - 54.0 / 40.0)).abs() < 1e-9, "{q:?}");
        assert_eq!(
            q.summary(),
            format!(
                "estimated MOS {:.1} · you hear: loss 0.0 %, jitter 2 ms (MOS 4.4) · the far end hears: \
                 loss 20.0 %, jitter 30 ms (MOS {:.1}) · RTT 80 ms",
                e.mos, e.mos
            )
        );
        // Poor for 5 s on the far end's reports alone: the warning is about them.
        w.push(
            s(7.0),
            LinkStats {
                far_end: Some(far),
                ..stats(0, 350)
            },
        );
        let warned = w.warning(s(9.0)).expect("poor since t = 4 s");
        assert_eq!(warned.direction, Direction::Sent);
        assert_eq!(warned.worst, Impairment::Loss);
        // The far end's next report is clean: the call is fine again.
        let clean = FarEnd {
            fraction_lost: 0.0,
            jitter_s: 0.001,
            rtt_s: Some(0.004),
        };
        let e = w
            .push(
                s(9.0),
                LinkStats {
                    far_end: Some(clean),
                    ..stats(0, 450)
                },
            )
            .unwrap();
        assert!(e.mos > 4.3, "{e:?}");
        assert_eq!(w.warning(s(30.0)), None);
    }

    #[test]
    fn the_warning_comes_after_five_seconds_of_poor_estimates_and_goes_when_it_recovers() {
        let mut w = QualityWatch::new();
        assert_eq!(w.push(s(0.0), stats(0, 0)), None, "no interval yet");
        // 2 s intervals of 100 packets: 20 % lost.
        let mut lost = 0;
        let mut received = 0;
        for i in 1..=2 {
            lost += 20;
            received += 80;
            let e = w.push(s(2.0 * i as f64), stats(lost, received)).unwrap();
            assert!((e.loss_percent - 20.0).abs() < 1e-9);
            assert!(e.mos < POOR_MOS);
        }
        // Poor since t = 2 s; at t = 4 s only 2 s have passed.
        assert_eq!(w.warning(s(4.0)), None);
        lost += 20;
        received += 80;
        w.push(s(6.0), stats(lost, received));
        assert_eq!(w.warning(s(6.5)), None);
        let warned = w.warning(s(7.0)).expect("poor for 5 s");
        assert_eq!(warned.worst, Impairment::Loss);
        // A clean interval clears it.
        received += 100;
        let e = w.push(s(8.0), stats(lost, received)).unwrap();
        assert_eq!(e.loss_percent, 0.0);
        assert_eq!(w.warning(s(20.0)), None);
    }

    #[test]
    fn early_loss_does_not_colour_the_rest_of_the_call() {
        let mut w = QualityWatch::new();
        w.push(s(0.0), stats(0, 0));
        let burst = w.push(s(2.0), stats(50, 50)).unwrap();
        assert!(burst.mos < POOR_MOS);
        let later = w.push(s(4.0), stats(50, 150)).unwrap();
        assert_eq!(later.loss_percent, 0.0);
        assert!(later.mos > 4.0);
    }

    #[test]
    fn counters_that_go_backwards_start_over_and_idle_intervals_say_nothing() {
        let mut w = QualityWatch::new();
        w.push(s(0.0), stats(10, 10));
        assert!(w.push(s(2.0), stats(40, 20)).is_some());
        assert_eq!(w.push(s(4.0), stats(0, 5)), None, "a new receiver");
        assert_eq!(w.push(s(6.0), stats(0, 5)), None, "no packet expected");
        assert_eq!(w.warning(s(60.0)), None);
    }

    #[test]
    fn silence_on_an_unmuted_call_is_reported_after_five_seconds() {
        let mut m = MicWatch::new();
        assert_eq!(m.push(s(0.0), -30.0, false), MicHint::Fine);
        assert_eq!(m.push(s(1.0), -120.0, false), MicHint::Fine);
        assert_eq!(m.push(s(5.9), f64::NEG_INFINITY, false), MicHint::Fine);
        assert_eq!(m.push(s(6.0), -100.0, false), MicHint::NoSound);
        // Sound again: fine at once.
        assert_eq!(m.push(s(6.1), -35.0, false), MicHint::Fine);
    }

    #[test]
    fn muted_silence_is_not_a_fault_but_talking_while_muted_is_pointed_out() {
        let mut m = MicWatch::new();
        assert_eq!(m.push(s(0.0), -120.0, true), MicHint::Fine);
        assert_eq!(m.push(s(30.0), -120.0, true), MicHint::Fine);
        assert_eq!(m.push(s(31.0), -25.0, true), MicHint::Fine);
        assert_eq!(m.push(s(32.0), -25.0, true), MicHint::Fine);
        assert_eq!(m.push(s(32.5), -25.0, true), MicHint::TalkingWhileMuted);
        // Unmuting clears it and starts the silence count over.
        assert_eq!(m.push(s(33.0), -120.0, false), MicHint::Fine);
        assert_eq!(m.push(s(37.9), -120.0, false), MicHint::Fine);
        assert_eq!(m.push(s(38.0), -120.0, false), MicHint::NoSound);
    }

    #[test]
    fn levels_in_dbfs() {
        assert_eq!(level_db(&[]), f64::NEG_INFINITY);
        assert_eq!(level_db(&[0.0; 128]), f64::NEG_INFINITY);
        assert!((level_db(&[1.0, -1.0, 1.0, -1.0])).abs() < 1e-9);
        let sine: Vec<f32> = (0..4800)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 48000.0).sin() * 0.5)
            .collect();
        // 0.5 amplitude: RMS 0.3536 → −9.03 dB
        assert!((level_db(&sine) + 9.03).abs() < 0.05, "{}", level_db(&sine));
    }
}
