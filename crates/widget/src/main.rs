//! Entry point: panic hook, the early hub connection (`early.rs`), then the app
//! (`app::mount_app`). Everything else lives in the library.

fn main() {
    console_error_panic_hook::set_once();
    // `window.switchboardDiagnostics()` from the first moment (the app's chunk may still load).
    switchboard::diagnostics::install();
    // The hub connection starts before the app is mounted when it can (a dev sign-in whose
    // token index.html's start-up script asked for); the app is mounted once it is up, fails,
    // or at once when there is none.
    switchboard::early::begin(|| {
        // The split build loads the app's chunk first (prefetched by index.html since the
        // start); when it cannot, the first screen says so and no call is offered here.
        #[cfg(feature = "split")]
        wasm_bindgen_futures::spawn_local(async {
            if switchboard::app::mount_app().await.is_err() {
                switchboard::early::app_not_loaded();
            }
        });
        #[cfg(not(feature = "split"))]
        let _ = switchboard::app::mount_app();
    });
}
