//! The reactive graph must not keep what the views it dropped subscribed with (vendor/README.md):
//! a widget stays open all shift, and every call builds and drops views (the ringing dialog, the
//! call panel) whose effects read long-lived signals that rarely change. Unpatched, each dropped
//! render effect stays in the signal's subscriber set, with its allocation, until the signal
//! changes: this test then grows the wasm memory by more than a megabyte and fails.
#![cfg(target_arch = "wasm32")]

use leptos::prelude::*;
use leptos::reactive::effect::RenderEffect;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// The wasm linear memory's size in bytes (it only grows, in 64 KiB pages).
fn memory_bytes() -> f64 {
    wasm_bindgen::memory()
        .unchecked_into::<js_sys::WebAssembly::Memory>()
        .buffer()
        .unchecked_into::<js_sys::ArrayBuffer>()
        .byte_length() as f64
}

/// Lets the effects' queued tasks run (each ends once its effect is gone).
async fn yield_now() {
    let resolved = js_sys::Promise::resolve(&wasm_bindgen::JsValue::NULL);
    let _ = wasm_bindgen_futures::JsFuture::from(resolved).await;
    gloo_timers::future::sleep(std::time::Duration::ZERO).await;
}

/// Builds and drops `count` render effects that read `signal`, as views built per call do: each
/// under its own owner, cleaned up when the view goes (as a branch of the call area is; a root
/// here, so that no parent keeps a list of them).
async fn churn(signal: &ArcRwSignal<u32>, count: usize) {
    for i in 0..count {
        let read = signal.clone();
        let view = Owner::new_root(None);
        let effect = view.with(|| {
            RenderEffect::new(move |_| {
                read.get();
            })
        });
        drop(effect);
        view.cleanup();
        drop(view);
        if i % 500 == 499 {
            yield_now().await;
        }
    }
    yield_now().await;
}

#[wasm_bindgen_test]
async fn dropped_effects_do_not_stay_subscribed_to_a_signal_that_never_changes() {
    let _ = any_spawner::Executor::init_wasm_bindgen();
    let owner = Owner::new();
    owner.set();
    let signal = ArcRwSignal::new(7u32);
    // Warm-up: the allocator's first pages and the executor's queue.
    churn(&signal, 2_000).await;
    let before = memory_bytes();
    churn(&signal, 20_000).await;
    let grown = memory_bytes() - before;
    // Unpatched: 20,000 dead subscribers of ~70 bytes each (their entries and the effects'
    // allocations they keep), about 1.4 MB. Patched: the freed memory is reused.
    assert!(
        grown <= 256.0 * 1024.0,
        "the wasm memory grew by {grown} bytes over 20,000 dropped effects"
    );
    // The signal still notifies the effects that are alive.
    let seen = ArcRwSignal::new(0u32);
    let (read, write) = (signal.clone(), seen.clone());
    let _live = RenderEffect::new(move |_| write.set(read.get()));
    assert_eq!(seen.get_untracked(), 7);
    signal.set(8);
    yield_now().await;
    assert_eq!(seen.get_untracked(), 8);
}
