//! The CRM host simulators (`/hosts/*`, dev mode): pages and stand-in libraries are served with
//! the right types, never build HTML from data, and link from the telephony simulator.

mod common;

use common::{get_text, http, sent, start_hub};

#[tokio::test]
async fn host_simulators_are_served_in_dev_mode() {
    let hub = start_hub().await;
    let base = hub.base_url();
    for (path, kind, marker) in [
        ("/hosts/cif", "text/html", "window.cifCalls"),
        ("/hosts/cif1", "text/html", "window.cifCalls"),
        ("/hosts/opencti", "text/html", "window.openCtiCalls"),
        ("/hosts/postmessage", "text/html", "SYNC"),
        (
            "/hosts/cif/msdyn_ciLibrary.js",
            "text/javascript",
            "CIFInitDone",
        ),
        (
            "/hosts/cif1/msdyn_ciLibrary.js",
            "text/javascript",
            "CIFInitDone",
        ),
        (
            "/support/api/62.0/lightning/opencti_min.js",
            "text/javascript",
            "sforce.opencti",
        ),
    ] {
        let r = sent(http().get(format!("{base}{path}"))).await;
        assert_eq!(r.status(), 200, "{path}");
        let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
        let text = r.text().await.unwrap();
        assert!(text.contains(marker), "{path}");
        assert!(!text.contains("innerHTML"), "{path} builds HTML from data");
        // Messages go to a named origin, never to '*'.
        assert!(!text.contains(", '*')"), "{path} posts to *");
    }
    let simulator = get_text(&format!("{base}/simulator")).await;
    assert!(
        simulator.contains("href=\"/hosts/cif\"")
            && simulator.contains("href=\"/hosts/postmessage\"")
    );
}
