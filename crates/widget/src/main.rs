//! Entry point: panic hook, then mount. Everything else lives in the library.

fn main() {
    console_error_panic_hook::set_once();
    // index.html's static first screen (painted while the wasm loaded) gives way to the
    // widget's, in the same task: nothing blank is painted in between.
    if let Some(screen) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id("boot-screen"))
    {
        screen.remove();
    }
    leptos::mount::mount_to_body(switchboard::app::App);
    switchboard::browser::mark("switchboard:mounted");
}
