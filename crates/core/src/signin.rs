//! Sign-in through MSAL.js, the parts that need no browser: what an MSAL error means for the
//! agent and the admin, and when to renew a token.
//!
//! MSAL errors carry an `errorCode` (`popup_window_error`, `interaction_required`, …) and,
//! for the identity provider's own errors, an `AADSTS…` number in the message. [`classify`]
//! turns both into a [`SignInProblem`], whose [`SignInProblem::message`] says what to do.

/// What went wrong while signing in, as far as the agent or an admin can act on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInProblem {
    /// The user must interact (first sign-in, expired session, MFA): show "Sign in".
    InteractionRequired,
    /// The browser blocked the popup (`popup_window_error`, `empty_window_error`).
    PopupBlocked,
    /// The agent closed the popup (`user_cancelled`).
    Cancelled,
    /// The app registration lacks this redirect URI (AADSTS50011, `redirect_uri_mismatch`).
    RedirectUriMismatch,
    /// Admin consent for the API or Graph scopes is missing (AADSTS65001, `consent_required`).
    ConsentRequired,
    /// The authority's metadata could not be fetched (`endpoints_resolution_error`, network).
    AuthorityUnreachable,
    /// The authority is not trusted by this MSAL configuration (`untrusted_authority`,
    /// `authority_uri_insecure`): `knownAuthorities` / `protocolMode` / https.
    AuthorityNotTrusted,
    /// Token times disagree with this computer's clock (AADSTS700024, `invalid_grant` with
    /// "not yet valid", or a token already expired when received).
    ClockSkew,
    /// Anything else: the code is shown for support.
    Other(String),
}

/// Classifies an MSAL error from its `errorCode` and message (never a token).
pub fn classify(code: &str, message: &str) -> SignInProblem {
    let has = |needle: &str| message.contains(needle) || code.contains(needle);
    match code {
        "interaction_required"
        | "login_required"
        | "no_account_error"
        | "no_tokens_found"
        | "refresh_token_expired"
        | "bad_token"
        | "consent_required_interaction" => {
            if has("AADSTS65001") {
                SignInProblem::ConsentRequired
            } else {
                SignInProblem::InteractionRequired
            }
        }
        "popup_window_error" | "empty_window_error" | "popup_relay_unsupported_flow" => {
            SignInProblem::PopupBlocked
        }
        "user_cancelled" => SignInProblem::Cancelled,
        "endpoints_resolution_error"
        | "no_network_connectivity"
        | "failed_to_parse_response"
        | "openid_config_error"
        | "post_request_failed"
        | "get_request_failed" => SignInProblem::AuthorityUnreachable,
        "untrusted_authority" | "authority_uri_insecure" | "invalid_authority_type" => {
            SignInProblem::AuthorityNotTrusted
        }
        _ if has("AADSTS50011") || has("redirect_uri_mismatch") || has("redirect_uri") => {
            SignInProblem::RedirectUriMismatch
        }
        _ if has("AADSTS65001") || has("consent_required") || has("invalid_scope") => {
            SignInProblem::ConsentRequired
        }
        _ if has("AADSTS700024") || has("AADSTS500133") || has("clock") || has("skew") => {
            SignInProblem::ClockSkew
        }
        _ if has("interaction_required") || has("login_required") => {
            SignInProblem::InteractionRequired
        }
        _ => SignInProblem::Other(code.chars().take(80).collect()),
    }
}

impl SignInProblem {
    /// Whether a "Sign in" button (a user gesture, hence a popup) can fix it.
    pub fn needs_interaction(&self) -> bool {
        matches!(
            self,
            SignInProblem::InteractionRequired
                | SignInProblem::Cancelled
                | SignInProblem::PopupBlocked
        )
    }

    /// The widget's catalogue key for [`SignInProblem::message`] (`signin_*` in
    /// `crates/widget/locales/*.json`); `signin_other` takes the code as `{code}`.
    pub fn catalogue_key(&self) -> &'static str {
        match self {
            SignInProblem::InteractionRequired => "signin_interaction_required",
            SignInProblem::PopupBlocked => "signin_popup_blocked",
            SignInProblem::Cancelled => "signin_cancelled",
            SignInProblem::RedirectUriMismatch => "signin_redirect_uri",
            SignInProblem::ConsentRequired => "signin_consent",
            SignInProblem::AuthorityUnreachable => "signin_authority_unreachable",
            SignInProblem::AuthorityNotTrusted => "signin_authority_untrusted",
            SignInProblem::ClockSkew => "signin_clock_skew",
            SignInProblem::Other(_) => "signin_other",
        }
    }

    /// The code shown for support with [`SignInProblem::Other`], else empty.
    pub fn code(&self) -> &str {
        match self {
            SignInProblem::Other(code) => code,
            _ => "",
        }
    }

    /// A sentence for the agent in English, naming what the admin must change where it is a
    /// setting (the widget shows the agent's language through [`Self::catalogue_key`]).
    pub fn message(&self) -> String {
        match self {
            SignInProblem::InteractionRequired => "Please sign in to continue.".into(),
            SignInProblem::PopupBlocked => "The browser blocked the sign-in window. Allow pop-ups for this site, then press Sign in again.".into(),
            SignInProblem::Cancelled => "The sign-in window was closed before you finished. Press Sign in to try again.".into(),
            SignInProblem::RedirectUriMismatch => "Sign-in is misconfigured: the redirect URI is not registered for this app (AADSTS50011). Ask your administrator to add the widget's redirect URI (auth.redirectUri, by default redirect.html next to the widget) as a Single-page application redirect URI.".into(),
            SignInProblem::ConsentRequired => "This app is not yet allowed to act for you (consent missing, AADSTS65001). Ask your administrator to grant admin consent for the hub API and Graph presence scopes.".into(),
            SignInProblem::AuthorityUnreachable => "Cannot reach the sign-in authority. Check the network, or ask your administrator to check auth.authority in config.json.".into(),
            SignInProblem::AuthorityNotTrusted => "Sign-in is misconfigured: the authority must be https and, for an identity provider other than Entra ID, listed in auth.knownAuthorities with auth.protocolMode \"OIDC\".".into(),
            SignInProblem::ClockSkew => "This computer's clock is wrong, so its sign-in tokens look invalid. Set the date and time automatically, then sign in again.".into(),
            SignInProblem::Other(code) => format!("Sign-in failed ({code}). Try again; if it keeps failing, give this code to your administrator."),
        }
    }
}

/// Seconds from `now` until a token expiring at `exp` (both Unix seconds) should be renewed:
/// at 80% of its remaining life, but at least 5 minutes before expiry when it lives longer
/// than 10 minutes, never sooner than 5 s from now (no busy loop on a short-lived token).
pub fn renew_in_secs(now: u64, exp: u64) -> u64 {
    let left = exp.saturating_sub(now);
    let at = if left > 600 { left - 300 } else { left * 4 / 5 };
    at.max(5)
}

/// Whether a token expiring at `exp` is already past (or `skew` seconds from) expiry at `now`.
/// A just-issued token that is already expired means the clocks disagree.
pub fn is_expired(now: u64, exp: u64, skew: u64) -> bool {
    exp <= now.saturating_add(skew)
}

/// How long start-up waits for the host's user (CIF `getEnvironment().username`) before it
/// shows the "Sign in" button instead of trying `ssoSilent` with it, in milliseconds.
pub const HOST_USER_WAIT_MS: u32 = 5_000;

/// Whether the "Sign in" button should redirect the tab to the identity provider
/// (`loginRedirect`) rather than open a popup: only when configured so (the default) and the
/// widget is the top-level page. MSAL refuses redirects inside a frame (`redirect_in_iframe`),
/// and a CRM must keep its page, so a framed widget always uses a popup.
pub fn use_redirect(interaction: crate::Interaction, framed: bool) -> bool {
    interaction == crate::Interaction::Redirect && !framed
}

/// Whether a sign-in popup opened from this page needs MSAL's popup relay
/// (`auth.popupRelayUri`, MSAL 5.17+): the page is `framed` and its top-level page
/// (`top_origin`, e.g. the last of `location.ancestorOrigins`; `None` when the browser does not
/// say) may be of another site than `own_origin`.
///
/// Why: the redirect bridge page answers the opener over a `BroadcastChannel`, which browsers
/// partition by top-level site; from a frame under another site the answer never arrives. The
/// relay page runs top-level on the widget's origin and hands the answer back by `postMessage`.
/// Sites are compared strictly (same scheme and host; the port does not count): a subdomain
/// of the same registrable domain also gets the relay, which costs the agent one click more
/// and always works.
pub fn needs_popup_relay(own_origin: &str, framed: bool, top_origin: Option<&str>) -> bool {
    let site = |origin: &str| {
        let (scheme, rest) = origin.split_once("://")?;
        let host = rest.split('/').next()?;
        // `[::1]:8080` keeps its brackets; a port after the host is dropped.
        let host = match host.rfind(':') {
            Some(i) if !host[i..].contains(']') => &host[..i],
            _ => host,
        };
        Some((scheme.to_ascii_lowercase(), host.to_ascii_lowercase()))
    };
    framed
        && match (site(own_origin), top_origin.and_then(site)) {
            (Some(own), Some(top)) => own != top,
            _ => true,
        }
}

#[cfg(test)]
mod tests {
    /// The widget shows these sentences from its catalogue: English there must say exactly
    /// what `message` says here (logs and the widget never disagree).
    #[test]
    fn the_catalogue_carries_every_message() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../widget/locales/en.json");
        let en =
            crate::i18n::Catalogue::parse("en", &std::fs::read_to_string(path).unwrap()).unwrap();
        for problem in [
            SignInProblem::InteractionRequired,
            SignInProblem::PopupBlocked,
            SignInProblem::Cancelled,
            SignInProblem::RedirectUriMismatch,
            SignInProblem::ConsentRequired,
            SignInProblem::AuthorityUnreachable,
            SignInProblem::AuthorityNotTrusted,
            SignInProblem::ClockSkew,
            SignInProblem::Other("x_error".into()),
        ] {
            let shown = en
                .format(
                    problem.catalogue_key(),
                    "other",
                    &[("code", problem.code())],
                )
                .unwrap();
            assert_eq!(shown, problem.message());
        }
    }

    use super::*;

    #[test]
    fn msal_codes_map_to_actionable_problems() {
        assert_eq!(
            classify("popup_window_error", "Error opening popup window."),
            SignInProblem::PopupBlocked
        );
        assert_eq!(
            classify("empty_window_error", ""),
            SignInProblem::PopupBlocked
        );
        assert_eq!(
            classify("interaction_required", "AADSTS50058: silent sign-in"),
            SignInProblem::InteractionRequired
        );
        assert_eq!(
            classify(
                "invalid_request",
                "AADSTS50011: The redirect URI 'x' does not match"
            ),
            SignInProblem::RedirectUriMismatch
        );
        assert_eq!(
            classify(
                "invalid_grant",
                "AADSTS65001: The user or administrator has not consented"
            ),
            SignInProblem::ConsentRequired
        );
        assert_eq!(
            classify("interaction_required", "AADSTS65001: consent"),
            SignInProblem::ConsentRequired
        );
        assert_eq!(
            classify("endpoints_resolution_error", "Could not resolve endpoints"),
            SignInProblem::AuthorityUnreachable
        );
        assert_eq!(
            classify("untrusted_authority", ""),
            SignInProblem::AuthorityNotTrusted
        );
        assert_eq!(
            classify(
                "invalid_grant",
                "AADSTS700024: Client assertion is not within its valid time range"
            ),
            SignInProblem::ClockSkew
        );
        assert_eq!(classify("user_cancelled", ""), SignInProblem::Cancelled);
        assert_eq!(
            classify("weird_thing", "nothing known"),
            SignInProblem::Other("weird_thing".into())
        );
    }

    #[test]
    fn messages_say_what_to_do_and_only_some_need_a_click() {
        assert!(
            SignInProblem::RedirectUriMismatch
                .message()
                .contains("redirect URI")
        );
        assert!(
            SignInProblem::ConsentRequired
                .message()
                .contains("admin consent")
        );
        assert!(
            SignInProblem::PopupBlocked
                .message()
                .contains("Allow pop-ups")
        );
        assert!(SignInProblem::ClockSkew.message().contains("clock"));
        assert!(
            SignInProblem::AuthorityUnreachable
                .message()
                .contains("auth.authority")
        );
        assert!(SignInProblem::InteractionRequired.needs_interaction());
        assert!(SignInProblem::PopupBlocked.needs_interaction());
        assert!(!SignInProblem::ConsentRequired.needs_interaction());
        assert!(!SignInProblem::AuthorityUnreachable.needs_interaction());
    }

    #[test]
    fn renewal_is_scheduled_before_expiry() {
        // An hour-long token: 5 minutes before it runs out.
        assert_eq!(renew_in_secs(1_000, 1_000 + 3600), 3300);
        // A 60 s token: at 80% of its life.
        assert_eq!(renew_in_secs(1_000, 1_060), 48);
        // Nearly or already expired: soon, but not in a loop.
        assert_eq!(renew_in_secs(1_000, 1_002), 5);
        assert_eq!(renew_in_secs(1_000, 900), 5);
        assert!(is_expired(1_000, 1_000, 0));
        assert!(is_expired(1_000, 1_020, 30));
        assert!(!is_expired(1_000, 1_100, 30));
    }

    #[test]
    fn redirect_only_at_top_level_and_relay_only_under_another_site() {
        use crate::Interaction::{Popup, Redirect};
        assert!(use_redirect(Redirect, false));
        assert!(!use_redirect(Redirect, true));
        assert!(!use_redirect(Popup, false));
        assert!(!use_redirect(Popup, true));

        let own = "http://127.0.0.1:18281";
        // Not framed: a plain popup.
        assert!(!needs_popup_relay(own, false, None));
        // Same site (another port of the same host): the bridge's BroadcastChannel reaches us.
        assert!(!needs_popup_relay(
            own,
            true,
            Some("http://127.0.0.1:18282")
        ));
        assert!(!needs_popup_relay(
            "https://widget.contoso.com",
            true,
            Some("https://WIDGET.contoso.com:443")
        ));
        // Another site: localhost vs 127.0.0.1, http vs https, a CRM's domain.
        assert!(needs_popup_relay(own, true, Some("http://localhost:18282")));
        assert!(needs_popup_relay(
            own,
            true,
            Some("https://127.0.0.1:18282")
        ));
        assert!(needs_popup_relay(
            "https://switchboard.contoso.com",
            true,
            Some("https://org.crm.dynamics.com")
        ));
        // Unknown top (Firefox has no ancestorOrigins) or garbage: the relay, which always works.
        assert!(needs_popup_relay(own, true, None));
        assert!(needs_popup_relay(own, true, Some("null")));
        assert!(!needs_popup_relay(
            "http://[::1]:1",
            true,
            Some("http://[::1]:2")
        ));
        assert!(needs_popup_relay(
            "http://[::1]:1",
            true,
            Some("http://127.0.0.1:1")
        ));
    }
}
