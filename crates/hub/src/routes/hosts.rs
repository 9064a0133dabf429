//! CRM host simulators (dev mode only; 404 otherwise), for trying and testing the widget's host
//! adapters (issue 5, `docs/host-protocol.md`):
//!
//! - `GET /hosts/cif`, `GET /hosts/cif1`: a Dynamics-365-like page that frames the widget with
//!   `?ucilib=` and answers `Microsoft.CIFramework` (2.0, or 1.0 without toasts and sessions),
//!   recording every call in `window.cifCalls`;
//! - `GET /hosts/cif/msdyn_ciLibrary.js`, `GET /hosts/cif1/msdyn_ciLibrary.js`: the stand-in
//!   library the widget loads;
//! - `GET /hosts/opencti` and `GET /support/api/{version}/lightning/opencti_min.js`: a Salesforce
//!   Lightning utility bar with a stand-in `sforce.opencti` (`window.openCtiCalls`);
//! - `GET /hosts/postmessage`: the example host page of the postMessage protocol.
//!
//! The pages are files under `assets/hosts/`, compiled in; none is part of the widget's payload.

use std::sync::Arc;

use axum::Router;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::access::{Authorized, HostSimulators};
use crate::hub::Hub;

const CIF_PAGE: &str = include_str!("../../assets/hosts/cif.html");
const CIF_LIBRARY: &str = include_str!("../../assets/hosts/msdyn_ciLibrary.js");
const OPENCTI_PAGE: &str = include_str!("../../assets/hosts/opencti.html");
const OPENCTI_LIBRARY: &str = include_str!("../../assets/hosts/opencti_min.js");
const POSTMESSAGE_PAGE: &str = include_str!("../../assets/hosts/postmessage.html");

/// The host simulator routes.
pub fn routes() -> Router<Arc<Hub>> {
    Router::new()
        .without_v07_checks()
        .route("/hosts/cif", get(|s| page(s, CIF_PAGE)))
        .route("/hosts/cif1", get(|s| page(s, CIF_PAGE)))
        .route("/hosts/opencti", get(|s| page(s, OPENCTI_PAGE)))
        .route("/hosts/postmessage", get(|s| page(s, POSTMESSAGE_PAGE)))
        .route(
            "/hosts/cif/msdyn_ciLibrary.js",
            get(|s| script(s, CIF_LIBRARY)),
        )
        .route(
            "/hosts/cif1/msdyn_ciLibrary.js",
            get(|s| script(s, CIF_LIBRARY)),
        )
        .route(
            "/support/api/{version}/lightning/opencti_min.js",
            get(|s| script(s, OPENCTI_LIBRARY)),
        )
}

async fn page(_: Authorized<HostSimulators>, html: &'static str) -> Html<&'static str> {
    Html(html)
}

async fn script(_: Authorized<HostSimulators>, js: &'static str) -> Response {
    ([("content-type", "text/javascript; charset=utf-8")], js).into_response()
}
