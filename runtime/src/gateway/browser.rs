//! What browsers need: CORS for the endpoints a frontend on another origin calls, and the
//! security headers every response carries.
//!
//! CORS covers RPC and the live-query endpoints (`/_api/rpc/…`, `/_api/events`,
//! `/_api/subscribe`, `/_api/unsubscribe`): those are what the generated clients call.
//! Origins come from `FORGE_CORS_ORIGINS` only, compared exactly; a request from any other
//! origin gets no CORS headers at all, so the browser refuses to hand it the response. No
//! credentials mode: the clients send a bearer token, never cookies.

use std::time::Duration;

use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::response::Response;
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

/// How long a browser may cache a preflight's answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// Adds CORS for `origins` to `router`'s routes (nothing when there are none).
pub(crate) fn cors<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    origins: &[HeaderValue],
) -> Router<S> {
    if origins.is_empty() {
        return router;
    }
    let layer = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins.iter().cloned()))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([HeaderName::from_static("x-request-id"), header::RETRY_AFTER])
        .max_age(PREFLIGHT_MAX_AGE);
    router
        .layer(layer)
        .layer(axum::middleware::map_response(only_for_allowed_origins))
}

/// tower-http answers a preflight from an origin it does not allow with the allowed methods
/// and headers (only without `Access-Control-Allow-Origin`); other origins get no CORS
/// headers at all, so nothing about the configuration leaks to them.
async fn only_for_allowed_origins(mut response: Response) -> Response {
    let headers = response.headers_mut();
    if !headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        for name in [
            header::ACCESS_CONTROL_ALLOW_METHODS,
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            header::ACCESS_CONTROL_MAX_AGE,
        ] {
            headers.remove(name);
        }
    }
    response
}

/// Adds `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer` to every
/// response of `router`, its fallback (webhooks, 404s) included.
pub(crate) fn security_headers<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
}

/// Parses `FORGE_CORS_ORIGINS`: comma-separated origins, each `scheme://host[:port]` with
/// scheme `http` or `https` and nothing after the authority (that is what a browser sends
/// in `Origin`). On error, the entry that is wrong.
pub(crate) fn parse_origins(text: &str) -> Result<Vec<HeaderValue>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| parse_origin(entry).ok_or_else(|| entry.to_owned()))
        .collect()
}

fn parse_origin(entry: &str) -> Option<HeaderValue> {
    let url = url::Url::parse(entry).ok()?;
    let bare = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none()
        && url.path() == "/"
        // The parser adds the `/`; one written out is a path.
        && !entry.ends_with('/');
    if !bare {
        return None;
    }
    // `ascii_serialization` is the form browsers send: lowercase host, default port dropped.
    HeaderValue::from_str(&url.origin().ascii_serialization()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised_as_browsers_send_them() {
        let parsed = parse_origins("https://App.example.com, http://localhost:5173,").unwrap();
        assert_eq!(
            parsed,
            [
                HeaderValue::from_static("https://app.example.com"),
                HeaderValue::from_static("http://localhost:5173"),
            ]
        );
        assert_eq!(
            parse_origins("https://example.com:443").unwrap(),
            [HeaderValue::from_static("https://example.com")]
        );
    }

    #[test]
    fn anything_but_a_bare_origin_is_refused_by_name() {
        for bad in [
            "*",
            "example.com",
            "https://example.com/",
            "https://example.com/app",
            "https://example.com?x=1",
            "ftp://example.com",
            "https://user@example.com",
        ] {
            assert_eq!(
                parse_origins(&format!("http://ok.test,{bad}")),
                Err(bad.to_owned())
            );
        }
    }
}
