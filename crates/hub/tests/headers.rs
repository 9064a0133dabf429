//! Security headers of the `--static` widget pages: CSP (frame-ancestors, inline-script hashes,
//! connect-src from config.json), nosniff and Referrer-Policy.

mod common;

use std::path::PathBuf;

use common::{http, sent, start_hub_with};

fn static_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchboard-csp-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("index.html"),
        "<html><script type=\"module\">\nimport init from '/w.js';\n</script><script src=\"/x.js\"></script></html>",
    )
    .unwrap();
    std::fs::write(
        dir.join("config.json"),
        r#"{"hub": {"url": "/api"}, "auth": {"mode": "msal", "authority": "https://login.microsoftonline.com/tenant"},
            "softphone": {"sip": {"webSocket": "wss://sip.example.com:7443/ws"}}}"#,
    )
    .unwrap();
    std::fs::write(dir.join("app.css"), "body{}").unwrap();
    dir
}

#[tokio::test]
async fn widget_pages_carry_the_csp_and_the_security_headers() {
    let dir = static_dir("prod");
    let d = dir.clone();
    let hub = start_hub_with(move |c| {
        c.static_dir = Some(d);
        c.frame_ancestors = vec!["https://contoso.crm.dynamics.com".into()];
    })
    .await;
    for path in ["/", "/index.html", "/some/spa/route"] {
        let r = sent(http().get(format!("{}{path}", hub.base_url()))).await;
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        let csp = h["content-security-policy"].to_str().unwrap().to_owned();
        let directive = |name: &str| {
            csp.split("; ")
                .find(|d| d.starts_with(&format!("{name} ")))
                .unwrap_or_else(|| panic!("no {name} in {csp}"))
                .to_owned()
        };
        // Dev mode (no OIDC) but the test binds 127.0.0.1: loopback framing allowed.
        assert!(directive("frame-ancestors").starts_with(
            "frame-ancestors 'self' https://contoso.crm.dynamics.com http://localhost:*"
        ));
        let script = directive("script-src");
        assert!(
            script.starts_with("script-src 'self' 'wasm-unsafe-eval' 'sha256-"),
            "{script}"
        );
        assert!(!script.contains("unsafe-inline") && !script.contains("'unsafe-eval'"));
        let connect = directive("connect-src");
        for origin in [
            "'self'",
            "https://login.microsoftonline.com",
            "wss://sip.example.com:7443",
            "https://graph.microsoft.com",
        ] {
            assert!(connect.contains(origin), "{origin} not in {connect}");
        }
        assert!(directive("frame-src").contains("https://login.microsoftonline.com"));
    }
    let r = sent(http().get(format!("{}/app.css", hub.base_url()))).await;
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    // The API routes are not the widget's pages.
    let r = sent(http().get(format!("{}/healthz", hub.base_url()))).await;
    assert!(r.headers().get("content-security-policy").is_none());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn without_dev_mode_only_the_configured_ancestors_may_frame() {
    let dir = static_dir("oidc");
    let d = dir.clone();
    let hub = start_hub_with(move |c| {
        c.static_dir = Some(d);
        c.oidc = Some(switchboard_hub::oidc::OidcConfig::new(
            "https://idp.example.com/realm",
            vec!["aud".into()],
        ));
    })
    .await;
    let r = sent(http().get(hub.base_url())).await;
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("; frame-ancestors 'self';"), "{csp}");
    assert!(csp.contains("https://idp.example.com"), "{csp}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Issue 17, "Serving counts too": the build's precompressed files are served by
/// `Accept-Encoding` (brotli first), content-hashed names are cached for ever and the rest is
/// revalidated (`no-cache`), so an agent's second start downloads nothing but `index.html` and
/// `config.json` revalidations.
#[tokio::test]
async fn precompressed_files_by_accept_encoding_and_cache_headers_by_name() {
    let dir = static_dir("precompressed");
    let wasm = "switchboard-0123456789abcdef_bg.wasm";
    std::fs::write(dir.join(wasm), b"raw wasm bytes").unwrap();
    std::fs::write(dir.join(format!("{wasm}.br")), b"brotli bytes").unwrap();
    std::fs::write(dir.join(format!("{wasm}.gz")), b"gzip bytes").unwrap();
    let d = dir.clone();
    let hub = start_hub_with(move |c| c.static_dir = Some(d)).await;
    let get = |path: String, encoding: Option<&'static str>| {
        let url = format!("{}{path}", hub.base_url());
        async move {
            let mut request = http().get(url);
            if let Some(e) = encoding {
                request = request.header("accept-encoding", e);
            }
            request.send().await.unwrap()
        }
    };
    for (accept, encoding, body) in [
        (Some("gzip, deflate, br"), Some("br"), "brotli bytes"),
        (Some("gzip"), Some("gzip"), "gzip bytes"),
        (None, None, "raw wasm bytes"),
    ] {
        let r = get(format!("/{wasm}"), accept).await;
        assert_eq!(r.status(), 200, "{accept:?}");
        let h = r.headers().clone();
        assert_eq!(
            h.get("content-encoding").map(|v| v.to_str().unwrap()),
            encoding,
            "{accept:?}"
        );
        assert_eq!(h["content-type"], "application/wasm", "{accept:?}");
        assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
        assert_eq!(h["vary"], "accept-encoding");
        assert_eq!(r.text().await.unwrap(), body, "{accept:?}");
    }
    for path in ["/", "/index.html", "/config.json", "/app.css"] {
        let r = get(path.to_owned(), Some("br")).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["cache-control"], "no-cache", "{path}");
        assert!(
            r.headers().get("content-encoding").is_none(),
            "{path}: no .br file, no encoding"
        );
    }
    // A hashed name that is not there gets the SPA fallback (index.html), never cached for ever.
    let missing = get("/nothing-0123456789abcdef.js".to_owned(), None).await;
    assert_eq!(missing.headers()["cache-control"], "no-cache");
    let _ = std::fs::remove_dir_all(dir);
}
