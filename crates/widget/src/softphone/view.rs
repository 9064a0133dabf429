//! The softphone's own views (SIP build): the audio device picker and the call's audio hints.
//! Like `ui/`, they take signals and callbacks and do no I/O; `mod.rs` wires them.

use leptos::prelude::*;
use switchboard_sip::quality::{Estimate, Impairment, MicHint};

use super::devices::{Choice, Device, DeviceList, Role};
use crate::i18n::strings;

/// The meter's range: −60 dBFS (empty) to 0 dBFS (full).
const METER_FLOOR_DB: f64 = -60.0;

/// The microphone's level as a bar, and what to tell the agent about the call's audio: no
/// sound from the microphone, talking while muted, poor quality with the reason. Nothing when
/// no call is up (`level_db` is `None` and nothing is wrong).
#[component]
pub fn CallAudioView(
    level_db: Signal<Option<f64>>,
    mic: Signal<MicHint>,
    poor: Signal<Option<Estimate>>,
) -> impl IntoView {
    let t = strings();
    let meter = move || {
        level_db.get().map(|db| {
            let db = if db.is_finite() { db } else { METER_FLOOR_DB };
            let clamped = db.clamp(METER_FLOOR_DB, 0.0);
            let percent = (clamped - METER_FLOOR_DB) / -METER_FLOOR_DB * 100.0;
            view! {
                <div class="call-audio__meter">
                    <span id="mic-level-label">{t.get("audio_level")}</span>
                    <div
                        class="meter"
                        role="meter"
                        aria-labelledby="mic-level-label"
                        aria-valuemin=METER_FLOOR_DB.to_string()
                        aria-valuemax="0"
                        aria-valuenow=(clamped.round() as i64).to_string()
                        aria-valuetext=format!("{} dB", clamped.round() as i64)
                    >
                        <span class="meter__fill" style=format!("width: {percent:.0}%")></span>
                    </div>
                </div>
            }
        })
    };
    let mic_hint = move || {
        let key = match mic.get() {
            MicHint::Fine => return None,
            MicHint::NoSound => "audio_no_sound",
            MicHint::TalkingWhileMuted => "audio_muted_talking",
        };
        Some(view! { <p class="call-audio__warning" role="status">{t.get(key)}</p> })
    };
    let quality = move || {
        poor.get().map(|e| {
            let reason = match e.worst {
                Impairment::Loss => t
                    .get("audio_reason_loss")
                    .replace("{value}", &format!("{:.0}", e.loss_percent)),
                Impairment::Jitter => t
                    .get("audio_reason_jitter")
                    .replace("{value}", &format!("{:.0}", e.jitter_ms)),
                Impairment::Delay => t
                    .get("audio_reason_delay")
                    .replace("{value}", &format!("{:.0}", e.rtt_ms)),
            };
            let text = t
                .get("audio_poor")
                .replace("{reason}", &reason)
                .replace("{mos}", &format!("{:.1}", e.mos));
            view! { <p class="call-audio__warning call-audio__warning--quality" role="status">{text}</p> }
        })
    };
    view! {
        <Show when=move || level_db.with(Option::is_some) || mic.get() != MicHint::Fine || poor.with(Option::is_some)>
            <div class="call-audio">
                {meter}
                {mic_hint}
                {quality}
            </div>
        </Show>
    }
}

/// One `<select>` of the picker: "System default" and the devices; unnamed devices (before the
/// microphone was allowed) are numbered.
#[component]
fn DeviceSelect(
    id: &'static str,
    label: &'static str,
    role: Role,
    #[prop(into)] devices: Signal<Vec<Device>>,
    #[prop(into)] chosen: Signal<String>,
    disabled: bool,
    on_choose: Callback<(Role, String)>,
) -> impl IntoView {
    let t = strings();
    let options = move || {
        let chosen = chosen.get();
        devices
            .get()
            .into_iter()
            // The browser's own "default" entry is our "System default".
            .filter(|d| d.id != "default" && !d.id.is_empty())
            .enumerate()
            .map(|(i, d)| {
                let name = if d.label.trim().is_empty() {
                    t.get("devices_unnamed")
                        .replace("{n}", &(i + 1).to_string())
                } else {
                    d.label.clone()
                };
                let selected = d.id == chosen;
                view! { <option value=d.id selected=selected>{name}</option> }
            })
            .collect_view()
    };
    let missing = move || {
        let chosen = chosen.get();
        let list = devices.get();
        (!chosen.is_empty() && !list.is_empty() && !list.iter().any(|d| d.id == chosen))
            .then(|| view! { <p class="devices__note">{t.get("devices_missing")}</p> })
    };
    view! {
        <label for=id>{label}</label>
        <select
            id=id
            disabled=disabled
            on:change=move |ev| on_choose.run((role, event_target_value(&ev)))
        >
            <option value="" selected=move || chosen.get().is_empty()>{t.get("devices_default")}</option>
            {options}
        </select>
        {missing}
    }
}

/// The audio device picker: microphone, speaker and ringer, in a disclosure that the keyboard
/// opens like any `<details>`. Where the browser cannot choose an output (`setSinkId`
/// missing), the two output selects are disabled and a sentence says why and what to do.
#[component]
pub fn DevicesView(
    list: Signal<DeviceList>,
    choice: Signal<Choice>,
    sink_supported: bool,
    on_choose: Callback<(Role, String)>,
    on_open: Callback<()>,
) -> impl IntoView {
    let t = strings();
    let inputs = Signal::derive(move || list.with(|l| l.inputs.clone()));
    let outputs = Signal::derive(move || list.with(|l| l.outputs.clone()));
    let unnamed = move || {
        list.with(|l| {
            l.inputs
                .iter()
                .chain(&l.outputs)
                .any(|d| d.label.trim().is_empty())
        })
    };
    view! {
        <details class="panel devices" on:toggle=move |_| on_open.run(())>
            <summary class="devices__summary">{t.get("devices_title")}</summary>
            <div class="devices__body">
                <DeviceSelect
                    id="device-microphone"
                    label=t.get("devices_microphone")
                    role=Role::Microphone
                    devices=inputs
                    chosen=Signal::derive(move || choice.with(|c| c.microphone.clone()))
                    disabled=false
                    on_choose=on_choose
                />
                <DeviceSelect
                    id="device-speaker"
                    label=t.get("devices_speaker")
                    role=Role::Speaker
                    devices=outputs
                    chosen=Signal::derive(move || choice.with(|c| c.speaker.clone()))
                    disabled=!sink_supported
                    on_choose=on_choose
                />
                <DeviceSelect
                    id="device-ringer"
                    label=t.get("devices_ringer")
                    role=Role::Ringer
                    devices=outputs
                    chosen=Signal::derive(move || choice.with(|c| c.ringer.clone()))
                    disabled=!sink_supported
                    on_choose=on_choose
                />
                {(!sink_supported).then(|| view! { <p class="devices__note" role="note">{t.get("devices_no_sink")}</p> })}
                {move || unnamed().then(|| view! { <p class="devices__note">{t.get("devices_names_hidden")}</p> })}
            </div>
        </details>
    }
}
