//! Security headers of the widget's pages served with `--static` (issue 18, "Framing and
//! headers for the widget's pages"); `docs/security-headers.md` gives the same headers for
//! nginx and Azure Static Web Apps.
//!
//! Every static response gets `X-Content-Type-Options: nosniff` and `Referrer-Policy:
//! no-referrer`, a successful one also `Cache-Control` by [`cache_control`] (immutable for
//! content-hashed names, `no-cache` otherwise) and `Vary: accept-encoding` (the routes serve the
//! build's precompressed `.br`/`.gz` files by `Accept-Encoding`); HTML responses also get the
//! `Content-Security-Policy` of [`policy`]:
//!
//! - `frame-ancestors 'self'` plus the configured CRM origins (`--frame-ancestor`): a foreign page
//!   cannot frame a signed-in softphone (clickjacking). In dev mode on a loopback address, any
//!   `http://localhost:*` and `http://127.0.0.1:*` page may frame it too (the test suites' host
//!   pages; CSP has no syntax for IPv6 literals);
//! - `script-src 'self' 'wasm-unsafe-eval'`, the `sha256-` hash of each inline script of the
//!   static directory's top-level HTML files (trunk's module loader in `index.html`, the MSAL
//!   bridge pages), computed from the files at each request, and the frame ancestors (a CRM
//!   host's library, e.g. Dynamics 365's `msdyn_ciLibrary.js`, is loaded from its origin);
//!   no `'unsafe-inline'`, no `'unsafe-eval'`;
//! - `connect-src 'self'`, the identity provider (`--oidc-authority`), Microsoft Graph, every
//!   absolute URL's origin found in the widget's `config.json` (hub, authority, SIP WebSocket),
//!   and `--connect-src` extras; `frame-src 'self'` and the same identity-provider origins
//!   (MSAL's silent sign-in frame).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Microsoft Graph (presence), always allowed in `connect-src`.
pub const GRAPH_ORIGIN: &str = "https://graph.microsoft.com";

/// What the policy is built from.
#[derive(Debug)]
pub struct WidgetHeaders {
    /// The built widget (`--static`).
    pub static_dir: PathBuf,
    /// The widget configuration served at `/config.json` (`--config`, else the static one).
    pub widget_config: PathBuf,
    /// Extra `frame-ancestors` (and `script-src`) origins (`--frame-ancestor`).
    pub frame_ancestors: Vec<String>,
    /// Extra `connect-src` origins: the OIDC authority's, `--connect-src`.
    pub connect_src: Vec<String>,
    /// Dev mode on a loopback address: any loopback page may frame the widget.
    pub dev_loopback: bool,
    /// The last policy built, with the [`Fingerprint`] of the files it was built from.
    pub cache: std::sync::Mutex<Option<(Fingerprint, String)>>,
}

/// Path, length and modification time of each file a policy reads (the HTML files and
/// `config.json`): equal fingerprints mean the files have not changed since.
pub type Fingerprint = Vec<(PathBuf, u64, Option<std::time::SystemTime>)>;

/// The files [`policy`] reads, as they are now (one `stat` each, no reads).
pub fn fingerprint(config: &WidgetHeaders) -> Fingerprint {
    let mut files = top_level_html(&config.static_dir);
    files.push(config.widget_config.clone());
    files
        .into_iter()
        .map(|path| {
            let meta = std::fs::metadata(&path).ok();
            let len = meta.as_ref().map_or(0, |m| m.len());
            let modified = meta.and_then(|m| m.modified().ok());
            (path, len, modified)
        })
        .collect()
}

/// [`policy`], rebuilt only when the [`fingerprint`] changed since the last call (a rebuilt
/// widget or an edited `config.json` is picked up without a restart; an unchanged one costs a
/// directory listing and a few `stat`s instead of reading every HTML file on each page load).
pub fn cached_policy(config: &WidgetHeaders) -> String {
    let now = fingerprint(config);
    let mut cache = config.cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((seen, value)) = cache.as_ref()
        && *seen == now
    {
        return value.clone();
    }
    let value = policy(config);
    *cache = Some((now, value.clone()));
    value
}

/// The policy inputs of a hub with a static directory (see [`crate::HubConfig`]).
pub fn widget_headers(hub: &crate::Hub) -> WidgetHeaders {
    let config = hub.config();
    let static_dir = config.static_dir.clone().unwrap_or_default();
    let widget_config = config
        .widget_config
        .clone()
        .unwrap_or_else(|| static_dir.join("config.json"));
    let mut connect_src = Vec::new();
    if let Some(origin) = config.oidc.as_ref().and_then(|o| origin_of(&o.authority)) {
        connect_src.push(origin);
    }
    for origin in &config.connect_src {
        push_unique(&mut connect_src, origin.clone());
    }
    WidgetHeaders {
        static_dir,
        widget_config,
        frame_ancestors: config.frame_ancestors.clone(),
        connect_src,
        dev_loopback: hub.dev_mode() && config.listen_addr.is_some_and(|a| a.ip().is_loopback()),
        cache: std::sync::Mutex::new(None),
    }
}

/// Whether `value` may stand in a CSP source list: `http(s)://host[:port]` or `ws(s)://…` (host
/// may start with `*.`); keywords such as `'self'` are refused; no spaces, `;`, `,` or quotes.
pub fn valid_origin(value: &str) -> bool {
    let rest = ["https://", "http://", "wss://", "ws://"]
        .iter()
        .find_map(|scheme| value.strip_prefix(scheme));
    match rest {
        Some(host) => {
            !host.is_empty()
                && !host.contains('/')
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.:*".contains(c))
        }
        None => false,
    }
}

/// The origin (`scheme://host[:port]`) of an absolute http(s)/ws(s) URL.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if !matches!(scheme, "http" | "https" | "ws" | "wss") {
        return None;
    }
    let host = rest.split(['/', '?', '#']).next()?;
    let host = host.rsplit('@').next()?;
    let origin = format!("{scheme}://{host}");
    (!host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c)))
    .then_some(origin)
}

/// `'sha256-…'` of every inline `<script>` (one without `src`) of `html`.
pub fn inline_script_hashes(html: &str) -> Vec<String> {
    let mut hashes = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        rest = &rest[start + "<script".len()..];
        let Some(tag_end) = rest.find('>') else { break };
        let attributes = &rest[..tag_end];
        rest = &rest[tag_end + 1..];
        let Some(close) = rest.find("</script>") else {
            break;
        };
        let body = &rest[..close];
        rest = &rest[close..];
        if attributes.contains("src=") {
            continue;
        }
        let digest = Sha256::digest(body.as_bytes());
        hashes.push(format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest)
        ));
    }
    hashes
}

fn push_unique(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// Origins of every absolute URL among the string values of a JSON document.
fn json_origins(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => {
            if let Some(origin) = origin_of(s) {
                push_unique(out, origin);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| json_origins(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| json_origins(v, out)),
        _ => {}
    }
}

/// The HTML files of the static directory and of its direct subdirectories (the MessagePack
/// and SIP builds live in `messagepack/` and `sip/`, each with its own `index.html`).
fn top_level_html(dir: &Path) -> Vec<PathBuf> {
    let html_in = |dir: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "html"))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut files = html_in(dir);
    if let Ok(entries) = std::fs::read_dir(dir) {
        for sub in entries.filter_map(Result::ok).map(|e| e.path()) {
            if sub.is_dir() {
                files.extend(html_in(&sub));
            }
        }
    }
    files.sort();
    files
}

/// The `Content-Security-Policy` value, from the files as they are now.
pub fn policy(config: &WidgetHeaders) -> String {
    let mut ancestors = vec!["'self'".to_owned()];
    for origin in &config.frame_ancestors {
        push_unique(&mut ancestors, origin.clone());
    }
    if config.dev_loopback {
        for origin in ["http://localhost:*", "http://127.0.0.1:*"] {
            push_unique(&mut ancestors, origin.to_owned());
        }
    }

    let mut scripts = vec!["'self'".to_owned(), "'wasm-unsafe-eval'".to_owned()];
    for file in top_level_html(&config.static_dir) {
        if let Ok(html) = std::fs::read_to_string(&file) {
            for hash in inline_script_hashes(&html) {
                push_unique(&mut scripts, hash);
            }
        }
    }
    for origin in ancestors.iter().skip(1) {
        push_unique(&mut scripts, origin.clone());
    }

    let mut idp = Vec::new();
    for origin in &config.connect_src {
        push_unique(&mut idp, origin.clone());
    }
    if let Ok(text) = std::fs::read(&config.widget_config)
        && let Ok(json) = serde_json::from_slice::<serde_json::Value>(&text)
    {
        json_origins(&json, &mut idp);
    }
    let mut connect = vec!["'self'".to_owned()];
    let mut frames = vec!["'self'".to_owned()];
    for origin in &idp {
        push_unique(&mut connect, origin.clone());
        if origin.starts_with("http") {
            push_unique(&mut frames, origin.clone());
        }
    }
    push_unique(&mut connect, GRAPH_ORIGIN.to_owned());

    [
        "default-src 'self'".to_owned(),
        format!("script-src {}", scripts.join(" ")),
        "style-src 'self' 'unsafe-inline'".to_owned(),
        "img-src 'self' data: blob:".to_owned(),
        "media-src 'self' data: blob:".to_owned(),
        "font-src 'self' data:".to_owned(),
        "worker-src 'self' blob:".to_owned(),
        format!("connect-src {}", connect.join(" ")),
        format!("frame-src {}", frames.join(" ")),
        format!("frame-ancestors {}", ancestors.join(" ")),
        "object-src 'none'".to_owned(),
        "base-uri 'self'".to_owned(),
        "form-action 'self'".to_owned(),
    ]
    .join("; ")
}

/// Middleware of the static files: adds the headers of the module docs.
pub async fn apply(
    State(config): State<Arc<WidgetHeaders>>,
    request: Request,
    next: Next,
) -> Response {
    let cache = cache_control(request.uri().path());
    let mut response = next.run(request).await;
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let status = response.status();
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if status.is_success() || status == StatusCode::NOT_MODIFIED {
        // HTML is never immutable: an unknown hashed name gets index.html (the SPA fallback).
        let cache = if html { "no-cache" } else { cache };
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    if html {
        let config = config.clone();
        let policy = tokio::task::spawn_blocking(move || cached_policy(&config))
            .await
            .unwrap_or_else(|_| "default-src 'self'; frame-ancestors 'self'".into());
        if let Ok(value) = HeaderValue::from_str(&policy) {
            headers.insert(header::CONTENT_SECURITY_POLICY, value);
        }
    }
    response
}

/// `Cache-Control` of a static file by its URL path: `public, max-age=31536000, immutable` for
/// the files named by content hash (trunk's `switchboard-<12–16 hex>_bg.wasm`, `app-<…>.css`,
/// …, and `scripts/build-widget`'s `split_mount_app-<16 hex>.wasm`, `chunk_3-<16 hex>.wasm`,
/// `__wasm_split-<16 hex>.js`: a new build has new names), `no-cache` for everything else (`index.html`, `config.json`,
/// the language catalogues, the SPA fallback): revalidated at every start, so a deployment is
/// seen at once. RFC 9111 §5.2.2, RFC 8246.
pub fn cache_control(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or_default();
    let stem = name.split('.').next().unwrap_or_default();
    let hashed = stem
        .trim_end_matches("_bg")
        .rsplit_once('-')
        // Trunk writes its 64-bit hash without leading zeros (`{:x}`): 15 digits in one build of
        // 16, fewer rarely; 12 or more keeps words made of the letters a–f out.
        .is_some_and(|(_, hash)| {
            (12..=16).contains(&hash.len()) && hash.bytes().all(|b| b.is_ascii_hexdigit())
        });
    if hashed {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cached_policy_follows_edited_files() {
        let dir = std::env::temp_dir().join(format!("sb-csp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let page = dir.join("index.html");
        std::fs::write(&page, "<script>a()</script>").unwrap();
        let config = WidgetHeaders {
            static_dir: dir.clone(),
            widget_config: dir.join("config.json"),
            frame_ancestors: Vec::new(),
            connect_src: Vec::new(),
            dev_loopback: false,
            cache: std::sync::Mutex::new(None),
        };
        let first = cached_policy(&config);
        assert_eq!(first, policy(&config));
        assert_eq!(
            cached_policy(&config),
            first,
            "unchanged files: the same policy"
        );
        // A rebuilt page (another inline script, another length) gets a new hash at once.
        std::fs::write(&page, "<script>b(); c()</script>").unwrap();
        let second = cached_policy(&config);
        assert_ne!(second, first);
        assert_eq!(second, policy(&config));
        std::fs::write(
            dir.join("config.json"),
            r#"{"auth":{"authority":"https://login.example.com/t"}}"#,
        )
        .unwrap();
        assert!(cached_policy(&config).contains("https://login.example.com"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn inline_scripts_are_hashed_and_external_ones_skipped() {
        let html = "<script src=\"a.js\"></script><script type=\"module\">\nx()\n</script>";
        let hashes = inline_script_hashes(html);
        let digest = Sha256::digest(b"\nx()\n");
        let expected = base64::engine::general_purpose::STANDARD.encode(digest);
        assert_eq!(hashes, vec![format!("'sha256-{expected}'")]);
    }

    #[test]
    fn hashed_names_are_immutable_and_the_rest_revalidated() {
        let immutable = "public, max-age=31536000, immutable";
        assert_eq!(
            cache_control("/switchboard-0123456789abcdef_bg.wasm"),
            immutable
        );
        assert_eq!(
            cache_control("/sip/switchboard-0123456789abcdef.js"),
            immutable
        );
        assert_eq!(cache_control("/app-89abcdef01234567.css"), immutable);
        // Trunk drops the hash's leading zeros (CI's build of 7836250 had 15 digits).
        assert_eq!(
            cache_control("/switchboard-7a6139f5a815134_bg.wasm"),
            immutable
        );
        assert_eq!(cache_control("/switchboard-7a6139f5a815134.js"), immutable);
        assert_eq!(cache_control("/msal-redirect-bridge.min.js"), "no-cache");
        assert_eq!(cache_control("/popup-relay.html"), "no-cache");
        // The split build's chunks and their loader (scripts/build-widget names them by content).
        assert_eq!(cache_control("/chunk_3-366dfedb6980d6b2.wasm"), immutable);
        assert_eq!(
            cache_control("/split_mount_app-ed22ab56356f3442.wasm"),
            immutable
        );
        assert_eq!(
            cache_control("/messagepack/__wasm_split-50cfb2eb69c3b606.js"),
            immutable
        );
        assert_eq!(cache_control("/chunk_3.wasm"), "no-cache");
        assert_eq!(cache_control("/__wasm_split.js"), "no-cache");
        assert_eq!(cache_control("/"), "no-cache");
        assert_eq!(cache_control("/index.html"), "no-cache");
        assert_eq!(cache_control("/config.json"), "no-cache");
        assert_eq!(cache_control("/locales/de.json"), "no-cache");
        assert_eq!(cache_control("/msal-browser.min.js"), "no-cache");
        assert_eq!(
            cache_control("/switchboard-0123456789abcdeg.js"),
            "no-cache"
        );
        assert_eq!(cache_control("/switchboard-0123456789a.js"), "no-cache");
        assert_eq!(cache_control("/back-to-decade.js"), "no-cache");
    }

    #[test]
    fn origins() {
        assert_eq!(
            origin_of("wss://sip.example.com:7443/ws?x=1").as_deref(),
            Some("wss://sip.example.com:7443")
        );
        assert_eq!(origin_of("/api"), None);
        assert_eq!(origin_of("javascript://x"), None);
        assert!(valid_origin("https://*.crm.dynamics.com"));
        assert!(!valid_origin("https://a.com; script-src *"));
        assert!(!valid_origin("'unsafe-inline'"));
    }
}
