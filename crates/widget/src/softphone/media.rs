//! The media half of the softphone: the microphone (`getUserMedia`), one `RTCPeerConnection`
//! per call (SDP offer/answer with the hub's ICE servers, all candidates gathered before the SDP
//! goes into SIP), the far end's audio in an `<audio>` element (`setSinkId` for the chosen
//! speaker), hold by transceiver direction, mute, RFC 4733 DTMF (`RTCDTMFSender`) and
//! `getStats`. Signalling stays in `phone.rs` and `switchboard_sip`: this module never sees a
//! SIP message (the split SIP.js makes with its `SessionDescriptionHandler`).

use std::cell::RefCell;
use std::time::Duration;

use js_sys::{Array, Object, Reflect};
use serde_json::Value;
use switchboard_sip::quality::{FarEnd, LinkStats};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    HtmlAudioElement, MediaStream, MediaStreamConstraints, MediaStreamTrack, RtcConfiguration,
    RtcIceGatheringState, RtcOfferOptions, RtcPeerConnection, RtcRtpSender, RtcRtpTransceiver,
    RtcRtpTransceiverDirection, RtcSdpType, RtcSessionDescriptionInit, RtcTrackEvent,
};

use super::devices::{self, LevelMeter, Role};

/// The longest wait for ICE candidates before the SDP goes out with what was gathered.
const GATHER_LIMIT: Duration = Duration::from_secs(3);

/// Why the microphone could not be used.
#[derive(Debug, Clone, PartialEq)]
pub enum MicError {
    /// The agent or the browser's settings blocked it (`NotAllowedError`).
    Denied,
    /// No microphone is plugged in (`NotFoundError`).
    Missing,
    /// Anything else (the browser's error name).
    Other(String),
}

/// Asks for the microphone, with echo cancellation, noise suppression and automatic gain
/// control as `processing` says (on for agents; off for tone tests). Call it from a click.
pub async fn microphone(processing: bool) -> Result<MediaStream, MicError> {
    let devices = web_sys::window()
        .ok_or_else(|| MicError::Other("no window".into()))?
        .navigator()
        .media_devices()
        .map_err(|_| MicError::Other("no media devices (an insecure page?)".into()))?;
    let audio = Object::new();
    for key in ["echoCancellation", "noiseSuppression", "autoGainControl"] {
        let _ = Reflect::set(&audio, &key.into(), &processing.into());
    }
    if let Some(id) = devices::effective(Role::Microphone) {
        let exact = Object::new();
        let _ = Reflect::set(&exact, &"ideal".into(), &id.into());
        let _ = Reflect::set(&audio, &"deviceId".into(), &exact);
    }
    let constraints = MediaStreamConstraints::new();
    constraints.set_audio(&audio);
    constraints.set_video(&false.into());
    let promise = devices
        .get_user_media_with_constraints(&constraints)
        .map_err(|e| MicError::Other(error_name(&e)))?;
    match JsFuture::from(promise).await {
        Ok(stream) => {
            // The labels of the devices are readable from now on.
            devices::refresh();
            Ok(stream.unchecked_into())
        }
        Err(e) => Err(match error_name(&e).as_str() {
            "NotAllowedError" | "SecurityError" => MicError::Denied,
            "NotFoundError" | "OverconstrainedError" => MicError::Missing,
            other => MicError::Other(other.to_owned()),
        }),
    }
}

fn error_name(e: &JsValue) -> String {
    Reflect::get(e, &"name".into())
        .ok()
        .and_then(|n| n.as_string())
        .unwrap_or_else(|| "Error".into())
}

fn describe(e: &JsValue) -> String {
    Reflect::get(e, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .unwrap_or_else(|| error_name(e))
}

/// Stops every track of a stream (the microphone indicator goes off).
pub fn release(stream: &MediaStream) {
    for track in stream.get_tracks().iter() {
        track.unchecked_into::<MediaStreamTrack>().stop();
    }
}

/// One call's media.
pub struct CallMedia {
    pc: RtcPeerConnection,
    mic: RefCell<MediaStream>,
    meter: RefCell<Option<LevelMeter>>,
    sender: RtcRtpSender,
    audio: HtmlAudioElement,
    _ontrack: Closure<dyn FnMut(RtcTrackEvent)>,
    onice: RefCell<Option<Closure<dyn FnMut()>>>,
}

/// One `getStats` reading: the figures for the quality watch and a line for Diagnostics.
pub struct Stats {
    /// Jitter, RTT and the cumulative packet counters of the received audio.
    pub link: LinkStats,
    /// `jitter 3 ms · loss 0.0 % (0/812) · RTT 1 ms` (loss over the whole call).
    pub line: String,
}

fn first_track(stream: &MediaStream) -> Option<MediaStreamTrack> {
    stream.get_audio_tracks().get(0).dyn_into().ok()
}

impl CallMedia {
    /// A peer connection with `ice_servers` (the hub's `iceServers` JSON), the microphone's
    /// track added, and the far end's audio played by a hidden `<audio>` element
    /// (`data-switchboard-remote`) on the remembered speaker.
    pub fn new(ice_servers: &Value, mic: MediaStream) -> Result<CallMedia, String> {
        let config = RtcConfiguration::new();
        let servers = js_sys::JSON::parse(&ice_servers.to_string()).unwrap_or(Array::new().into());
        config.set_ice_servers(&servers);
        let pc = RtcPeerConnection::new_with_configuration(&config).map_err(|e| describe(&e))?;
        let track = mic
            .get_audio_tracks()
            .get(0)
            .dyn_into::<MediaStreamTrack>()
            .map_err(|_| "the microphone gave no audio track".to_owned())?;
        let sender = pc.add_track_0(&track, &mic);
        let document = web_sys::window()
            .and_then(|w| w.document())
            .ok_or("no document")?;
        let audio: HtmlAudioElement = document
            .create_element("audio")
            .map_err(|e| describe(&e))?
            .unchecked_into();
        audio.set_autoplay(true);
        let _ = audio.set_attribute("data-switchboard-remote", "");
        let _ = audio.set_attribute("hidden", "");
        if let Some(body) = document.body() {
            let _ = body.append_child(&audio);
        }
        if let Some(speaker) = devices::effective(Role::Speaker) {
            devices::set_sink(&audio, &speaker);
        }
        let meter = LevelMeter::new(&track);
        let element = audio.clone();
        let ontrack = Closure::<dyn FnMut(RtcTrackEvent)>::new(move |event: RtcTrackEvent| {
            let stream = match event.streams().get(0).dyn_into::<MediaStream>() {
                Ok(stream) => stream,
                Err(_) => {
                    let Ok(stream) = MediaStream::new() else {
                        return;
                    };
                    stream.add_track(&event.track());
                    stream
                }
            };
            element.set_src_object(Some(&stream));
            let _ = element.play();
        });
        pc.set_ontrack(Some(ontrack.as_ref().unchecked_ref()));
        Ok(CallMedia {
            pc,
            mic: RefCell::new(mic),
            meter: RefCell::new(meter),
            sender,
            audio,
            _ontrack: ontrack,
            onice: RefCell::new(None),
        })
    }

    /// Calls `f` with the new `iceConnectionState` (W3C WebRTC §4.3.3: `checking`,
    /// `connected`, `disconnected`, `failed`, …) on every change, until [`close`](Self::close).
    pub fn on_ice_state(&self, f: impl Fn(String) + 'static) {
        let pc = self.pc.clone();
        let closure = Closure::<dyn FnMut()>::new(move || {
            let state = Reflect::get(&pc, &"iceConnectionState".into())
                .ok()
                .and_then(|v| v.as_string());
            if let Some(state) = state {
                f(state);
            }
        });
        self.pc
            .set_oniceconnectionstatechange(Some(closure.as_ref().unchecked_ref()));
        *self.onice.borrow_mut() = Some(closure);
    }

    /// Our SDP offer (a new call, hold/resume, or an ICE restart), with every candidate.
    pub async fn offer(&self, ice_restart: bool) -> Result<String, String> {
        let options = RtcOfferOptions::new();
        options.set_ice_restart(ice_restart);
        let offer = JsFuture::from(self.pc.create_offer_with_rtc_offer_options(&options))
            .await
            .map_err(|e| describe(&e))?;
        self.set_local(&offer).await
    }

    /// Takes the far end's offer (an incoming INVITE or re-INVITE) and returns our answer.
    pub async fn answer(&self, offer: &str) -> Result<String, String> {
        self.set_remote(RtcSdpType::Offer, offer).await?;
        let answer = JsFuture::from(self.pc.create_answer())
            .await
            .map_err(|e| describe(&e))?;
        self.set_local(&answer).await
    }

    /// Applies the far end's answer to our offer.
    pub async fn accept_answer(&self, answer: &str) -> Result<(), String> {
        self.set_remote(RtcSdpType::Answer, answer).await
    }

    async fn set_remote(&self, kind: RtcSdpType, sdp: &str) -> Result<(), String> {
        let init = RtcSessionDescriptionInit::new(kind);
        init.set_sdp(sdp);
        JsFuture::from(self.pc.set_remote_description(&init))
            .await
            .map(|_| ())
            .map_err(|e| describe(&e))
    }

    async fn set_local(&self, description: &JsValue) -> Result<String, String> {
        let init: &RtcSessionDescriptionInit = description.unchecked_ref();
        JsFuture::from(self.pc.set_local_description(init))
            .await
            .map_err(|e| describe(&e))?;
        // Vanilla ICE: SIP carries one SDP, so wait (bounded) until every candidate is in it.
        let mut waited = Duration::ZERO;
        while self.pc.ice_gathering_state() != RtcIceGatheringState::Complete
            && waited < GATHER_LIMIT
        {
            gloo_timers::future::sleep(Duration::from_millis(20)).await;
            waited += Duration::from_millis(20);
        }
        self.pc
            .local_description()
            .map(|d| d.sdp())
            .ok_or_else(|| "no local description".to_owned())
    }

    /// Hold (`sendonly`, the microphone silenced so the far end hears nothing) or back to
    /// `sendrecv`; the next [`offer`](Self::offer) carries it.
    pub fn set_held(&self, held: bool, muted: bool) {
        for t in self.pc.get_transceivers().iter() {
            let t: RtcRtpTransceiver = t.unchecked_into();
            t.set_direction(if held {
                RtcRtpTransceiverDirection::Sendonly
            } else {
                RtcRtpTransceiverDirection::Sendrecv
            });
        }
        self.set_muted(held || muted);
    }

    /// Mutes or unmutes the microphone track (the far end gets silence).
    pub fn set_muted(&self, muted: bool) {
        for track in self.mic.borrow().get_audio_tracks().iter() {
            track
                .unchecked_into::<MediaStreamTrack>()
                .set_enabled(!muted);
        }
    }

    /// Sends DTMF as RFC 4733 telephone-events (100 ms tones, 70 ms gaps). False when the
    /// far end did not offer telephone-event.
    pub fn dtmf(&self, digits: &str) -> bool {
        match self.sender.dtmf() {
            Some(dtmf) => {
                dtmf.insert_dtmf_with_duration_and_inter_tone_gap(digits, 100, 70);
                true
            }
            None => false,
        }
    }

    /// Jitter, packet loss and round-trip time of the received audio (`getStats`,
    /// W3C webrtc-stats §3: `inbound-rtp`, the nominated `candidate-pair`, `remote-inbound-rtp`).
    pub async fn stats(&self) -> Option<Stats> {
        let report = JsFuture::from(self.pc.get_stats()).await.ok()?;
        let mut jitter = None;
        let mut lost = 0.0;
        let mut received = 0.0;
        let mut rtt = None;
        let mut far_end: Option<FarEnd> = None;
        let values = Reflect::get(&report, &"values".into())
            .ok()?
            .dyn_into::<js_sys::Function>()
            .ok()?
            .call0(&report)
            .ok()?;
        for stat in js_sys::try_iter(&values).ok()??.flatten() {
            let field = |name: &str| Reflect::get(&stat, &name.into()).ok();
            let kind = field("type")
                .and_then(|t| t.as_string())
                .unwrap_or_default();
            let number = |name: &str| field(name).and_then(|v| v.as_f64());
            match kind.as_str() {
                "inbound-rtp" => {
                    jitter = number("jitter");
                    lost += number("packetsLost").unwrap_or(0.0);
                    received += number("packetsReceived").unwrap_or(0.0);
                }
                "candidate-pair" if field("nominated").and_then(|n| n.as_bool()) == Some(true) => {
                    rtt = number("currentRoundTripTime").or(rtt);
                }
                "remote-inbound-rtp" => {
                    // The far end's receiver reports on our audio (RFC 3550 §6.4.1).
                    if let Some(fraction_lost) = number("fractionLost") {
                        far_end = Some(FarEnd {
                            fraction_lost,
                            jitter_s: number("jitter").unwrap_or(0.0),
                            rtt_s: number("roundTripTime"),
                        });
                    }
                    rtt = rtt.or(number("roundTripTime"));
                }
                _ => {}
            }
        }
        let total = lost + received;
        let loss = if total > 0.0 {
            lost * 100.0 / total
        } else {
            0.0
        };
        let ms = |s: Option<f64>| {
            s.map(|s| format!("{} ms", (s * 1000.0).round() as i64))
                .unwrap_or_else(|| "-".into())
        };
        let line = format!(
            "jitter {} · loss {}.{} % ({}/{}) · RTT {}",
            ms(jitter),
            loss as u32,
            ((loss * 10.0) as u32) % 10,
            lost as u64,
            total as u64,
            ms(rtt)
        );
        let link = LinkStats {
            jitter_s: jitter.unwrap_or(0.0),
            rtt_s: rtt,
            // packetsLost may be negative (duplicates, RFC 3550 §6.4.1).
            packets_lost: lost.max(0.0) as u64,
            packets_received: received.max(0.0) as u64,
            far_end,
        };
        Some(Stats { link, line })
    }

    /// The microphone's level now (dBFS), `None` without a meter (no Web Audio).
    pub fn level_db(&self) -> Option<f64> {
        self.meter.borrow().as_ref().map(LevelMeter::level_db)
    }

    /// Moves the call to another microphone (`RTCRtpSender.replaceTrack`, no renegotiation):
    /// the new track keeps the old one's mute, the old one is stopped.
    pub async fn switch_microphone(&self, stream: MediaStream) -> Result<(), String> {
        let Some(track) = first_track(&stream) else {
            release(&stream);
            return Err("the microphone gave no audio track".into());
        };
        let enabled = first_track(&self.mic.borrow()).is_none_or(|t| t.enabled());
        track.set_enabled(enabled);
        if let Err(e) = JsFuture::from(self.sender.replace_track(Some(&track))).await {
            release(&stream);
            return Err(describe(&e));
        }
        let old = self.mic.replace(stream);
        *self.meter.borrow_mut() = LevelMeter::new(&track);
        release(&old);
        Ok(())
    }

    /// The device id of the microphone in use (`MediaTrackSettings.deviceId`).
    pub fn microphone_id(&self) -> Option<String> {
        let track = first_track(&self.mic.borrow())?;
        Reflect::get(&track.get_settings(), &"deviceId".into())
            .ok()?
            .as_string()
    }

    /// Plays the far end on `device_id` ("" for the default).
    pub fn set_speaker(&self, device_id: &str) {
        devices::set_sink(&self.audio, device_id);
    }

    /// Ends the media: the peer connection, the microphone, the `<audio>` element.
    pub fn close(&self) {
        self.pc.set_oniceconnectionstatechange(None);
        self.onice.borrow_mut().take();
        self.pc.close();
        self.meter.borrow_mut().take();
        release(&self.mic.borrow());
        self.audio.set_src_object(None);
        self.audio.remove();
    }
}
