//! The pop-out: the widget moves from a CRM frame to a window of its own (same user, same
//! language); the frame disconnects and stops ringing until that window closes or the agent
//! brings it back.

use leptos::prelude::*;
use switchboard_core::host::HostKind;

use crate::diagnostics;
use crate::i18n::strings;
use crate::state::Widget;

/// Whether the pop-out is offered: in a frame whose host keeps working without the widget
/// (postMessage, or a page that just frames it). CIF and Open CTI need the widget inside
/// the CRM's own panel for screen pops and click-to-dial, so there it stays.
pub fn can_pop_out(widget: Widget) -> bool {
    let framed = web_sys::window()
        .and_then(|w| w.top().ok().flatten().map(|top| top != w))
        .unwrap_or(false);
    framed
        && matches!(
            widget.host.kind.get(),
            Some(HostKind::PostMessage | HostKind::Standalone)
        )
}

/// Whether the pop-out must wait: in SIP mode while a call rings or is in progress here, as
/// this page carries its audio (the pop-out would have to drop it: the call never moves
/// between windows, docs/softphone.md). The button is disabled and says "Pop out after this
/// call"; hub mode calls live in the hub and may move at any time.
pub fn waits_for_call(widget: Widget) -> bool {
    let sip = widget
        .config
        .with(|c| c.as_ref().is_some_and(|c| c.telephony.sip().is_some()));
    sip && widget
        .desk
        .with(|d| d.ringing().is_some() || d.active().is_some())
}

/// Moves the widget to its own window: opens this page there as a standalone widget (same
/// user, same language), then this frame disconnects and stops ringing until that window
/// closes or the agent brings it back. A blocked popup is explained and nothing changes.
pub fn pop_out(widget: Widget) {
    let Some(window) = web_sys::window() else {
        return;
    };
    if waits_for_call(widget) {
        widget.notice.set(Some(strings().pop_out_after_call.into()));
        return;
    }
    let search = window.location().search().unwrap_or_default();
    let Ok(params) = web_sys::UrlSearchParams::new_with_str(&search) else {
        return;
    };
    params.set("host", "standalone");
    params.set("popout", "1");
    params.set("lang", strings().locale);
    params.delete("ucilib");
    let path = window.location().pathname().unwrap_or_default();
    let url = [path.as_str(), "?", &String::from(params.to_string())].concat();
    match window.open_with_url_and_target_and_features(
        &url,
        "switchboard-popout",
        "popup,width=400,height=720",
    ) {
        Ok(Some(popup)) => {
            if let Some(client) = widget.client.get_value() {
                client.stop();
            }
            widget.ringer.set_value(None);
            crate::softphone::suspend();
            let watch = gloo_timers::callback::Interval::new(1000, move || {
                let closed = widget
                    .popout
                    .with_value(|p| p.as_ref().is_some_and(|(w, _)| w.closed().unwrap_or(true)));
                if closed {
                    bring_back(widget);
                }
            });
            widget.popout.set_value(Some((popup, watch)));
            widget.popped_out.set(true);
            diagnostics::record("popped out to its own window".into());
        }
        _ => widget.notice.set(Some(strings().pop_out_blocked.into())),
    }
}

/// Ends the pop-out (its window closed, or "Bring it back here"): this frame rings and
/// connects again.
pub fn bring_back(widget: Widget) {
    let Some((popup, _watch)) = widget.popout.try_update_value(Option::take).flatten() else {
        return;
    };
    let _ = popup.close();
    widget.popped_out.set(false);
    if let Some(user) = widget.user.get_untracked() {
        widget.claim_ringer(&user);
    }
    diagnostics::record("back from its own window".into());
    crate::softphone::resume();
    widget.reconnect();
}
