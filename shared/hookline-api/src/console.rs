//! The browser console: its files, served at `/console/` by the same router as the API,
//! so local mode and the API Lambda both carry it. The console is a static page that
//! calls the public API; nothing here is an API operation.
//!
//! Every answer carries a strict Content-Security-Policy (scripts and styles from this
//! origin only, no inline script, `frame-ancestors` from [`ConsoleSettings`]), and the
//! index page gets the theme (product name, logo, accent) in its `<html>` attributes.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hookline_config::{SettingError, Settings};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;

mod assets {
    include!(concat!(env!("OUT_DIR"), "/console_assets.rs"));
}

/// Where the console is served.
pub const CONSOLE_PATH: &str = "/console/";

/// How the console looks and where it may be embedded; from `HOOKLINE_CONSOLE_*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSettings {
    /// Shown as the console's title (`HOOKLINE_CONSOLE_PRODUCT_NAME`, default Hookline).
    pub product_name: String,
    /// An https URL of a logo image (`HOOKLINE_CONSOLE_LOGO_URL`).
    pub logo_url: Option<String>,
    /// Accent colour, `#rgb` or `#rrggbb` (`HOOKLINE_CONSOLE_ACCENT`).
    pub accent: Option<String>,
    /// Origins allowed to embed the console in a frame
    /// (`HOOKLINE_CONSOLE_FRAME_ANCESTORS`, space-separated); none by default.
    pub frame_ancestors: Vec<String>,
    /// Base URL of this deployment for portal links (`HOOKLINE_PUBLIC_URL`); when
    /// unset, links are built from the request's `Host` and `X-Forwarded-Proto`.
    pub public_url: Option<url::Url>,
    /// Serve the console's files from this directory instead of the embedded copy
    /// (`HOOKLINE_CONSOLE_DIR`), for working on the console without rebuilding.
    pub dir: Option<PathBuf>,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            product_name: "Hookline".into(),
            logo_url: None,
            accent: None,
            frame_ancestors: Vec::new(),
            public_url: None,
            dir: None,
        }
    }
}

/// Longest product name, in characters.
const MAX_PRODUCT_NAME: usize = 80;

impl ConsoleSettings {
    /// Reads `HOOKLINE_CONSOLE_*` and `HOOKLINE_PUBLIC_URL`.
    pub fn read(s: &Settings<'_>) -> Result<Self, SettingError> {
        let mut c = ConsoleSettings::default();
        if let Some(name) = s.value("HOOKLINE_CONSOLE_PRODUCT_NAME") {
            let name = name.trim().to_owned();
            if name.chars().count() > MAX_PRODUCT_NAME || name.chars().any(char::is_control) {
                return Err(SettingError::new(
                    "HOOKLINE_CONSOLE_PRODUCT_NAME",
                    format!("must be at most {MAX_PRODUCT_NAME} characters, without control characters"),
                ));
            }
            c.product_name = name;
        }
        if let Some(logo) = s.value("HOOKLINE_CONSOLE_LOGO_URL") {
            let ok = url::Url::parse(logo.trim()).is_ok_and(|u| u.scheme() == "https" && u.host().is_some());
            if !ok {
                return Err(SettingError::new("HOOKLINE_CONSOLE_LOGO_URL", "must be an https URL"));
            }
            c.logo_url = Some(logo.trim().to_owned());
        }
        if let Some(accent) = s.value("HOOKLINE_CONSOLE_ACCENT") {
            let a = accent.trim();
            let hex = a.strip_prefix('#').filter(|h| (h.len() == 3 || h.len() == 6) && h.chars().all(|ch| ch.is_ascii_hexdigit()));
            if hex.is_none() {
                return Err(SettingError::new("HOOKLINE_CONSOLE_ACCENT", "must be a colour like #4f46e5 or #46e"));
            }
            c.accent = Some(a.to_ascii_lowercase());
        }
        if let Some(list) = s.value("HOOKLINE_CONSOLE_FRAME_ANCESTORS") {
            for origin in list.split_whitespace() {
                c.frame_ancestors.push(frame_ancestor(origin)?);
            }
        }
        if let Some(u) = s.value("HOOKLINE_PUBLIC_URL") {
            let parsed = url::Url::parse(u.trim())
                .ok()
                .filter(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some() && u.query().is_none() && u.fragment().is_none())
                .ok_or_else(|| SettingError::new("HOOKLINE_PUBLIC_URL", "must be an http(s) URL without query or fragment"))?;
            c.public_url = Some(parsed);
        }
        c.dir = s.value("HOOKLINE_CONSOLE_DIR").map(PathBuf::from);
        Ok(c)
    }

    /// The Content-Security-Policy of every console answer.
    pub fn content_security_policy(&self) -> String {
        let ancestors = if self.frame_ancestors.is_empty() { "'none'".to_owned() } else { self.frame_ancestors.join(" ") };
        // Images from the console itself, and from the logo's origin only.
        let logo = self
            .logo_url
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok())
            .map(|u| format!(" {}", u.origin().ascii_serialization()))
            .unwrap_or_default();
        format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:{logo}; connect-src 'self'; \
             font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors {ancestors}"
        )
    }
}

/// One origin allowed to frame the console: `'self'`, or a scheme and host (and port).
fn frame_ancestor(origin: &str) -> Result<String, SettingError> {
    let bad = || {
        SettingError::new(
            "HOOKLINE_CONSOLE_FRAME_ANCESTORS",
            format!("{origin:?} is not an origin; give origins like https://app.example.com, separated by spaces, or 'self'"),
        )
    };
    if origin == "'self'" {
        return Ok(origin.to_owned());
    }
    // Only an origin's own characters: nothing that could end the CSP directive.
    if !origin.bytes().all(|b| b.is_ascii_alphanumeric() || b":/.-[]".contains(&b)) {
        return Err(bad());
    }
    let u = url::Url::parse(origin).map_err(|_| bad())?;
    let plain = matches!(u.scheme(), "https" | "http") && u.host().is_some() && matches!(u.path(), "" | "/");
    if !plain || u.query().is_some() || u.fragment().is_some() || !u.username().is_empty() {
        return Err(bad());
    }
    Ok(u.origin().ascii_serialization())
}

struct Console {
    settings: ConsoleSettings,
    csp: HeaderValue,
}

/// The console's routes, to merge into the API's router.
pub fn routes<S: Clone + Send + Sync + 'static>(settings: ConsoleSettings) -> Router<S> {
    let csp = HeaderValue::from_str(&settings.content_security_policy()).unwrap_or(HeaderValue::from_static("default-src 'none'"));
    let console = Arc::new(Console { settings, csp });
    Router::new().route("/console", get(redirect)).route("/console/", get(index)).route("/console/{file}", get(asset)).with_state(console)
}

async fn redirect() -> Response {
    // Relative, so the console works under an API stage path too.
    (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, HeaderValue::from_static("console/"))]).into_response()
}

async fn index(State(c): State<Arc<Console>>, headers: HeaderMap) -> Response {
    let Some(page) = c.file("index.html").await else { return c.not_found() };
    let page = String::from_utf8_lossy(&page)
        .replace("__HOOKLINE_NAME__", &escape(&c.settings.product_name))
        .replace("__HOOKLINE_LOGO__", &escape(c.settings.logo_url.as_deref().unwrap_or("")))
        .replace("__HOOKLINE_ACCENT__", &escape(c.settings.accent.as_deref().unwrap_or("")));
    c.answer("index.html", page.into_bytes(), &headers)
}

async fn asset(State(c): State<Arc<Console>>, Path(file): Path<String>, headers: HeaderMap) -> Response {
    if file == "index.html" {
        return index(State(c), headers).await;
    }
    match c.file(&file).await {
        Some(bytes) => c.answer(&file, bytes, &headers),
        None => c.not_found(),
    }
}

impl Console {
    /// A file of the console by name: from the embedded table, or from
    /// `HOOKLINE_CONSOLE_DIR` when set. Names are plain file names; nothing else is read.
    async fn file(&self, name: &str) -> Option<Vec<u8>> {
        let plain = !name.is_empty()
            && !name.starts_with('.')
            && name.len() <= 100
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if !plain || content_type(name).is_none() {
            return None;
        }
        match &self.settings.dir {
            Some(dir) => tokio::fs::read(dir.join(name)).await.ok(),
            None => assets::ASSETS.iter().find(|(n, _)| *n == name).map(|(_, b)| b.to_vec()),
        }
    }

    fn answer(&self, name: &str, bytes: Vec<u8>, request: &HeaderMap) -> Response {
        let etag = format!("\"{}\"", &hex_digest(&bytes)[..32]);
        let fresh =
            request.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
        let mut resp = if fresh { StatusCode::NOT_MODIFIED.into_response() } else { bytes.into_response() };
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(name).unwrap_or("application/octet-stream")));
        self.security_headers(h);
        // Revalidated on every load (the names carry no version); unchanged files
        // answer 304 without a body.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if let Ok(v) = HeaderValue::from_str(&etag) {
            h.insert(header::ETAG, v);
        }
        resp
    }

    fn not_found(&self) -> Response {
        let mut resp = (StatusCode::NOT_FOUND, "not found\n").into_response();
        self.security_headers(resp.headers_mut());
        resp
    }

    fn security_headers(&self, h: &mut HeaderMap) {
        h.insert(header::CONTENT_SECURITY_POLICY, self.csp.clone());
        h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    }
}

fn content_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1;
    Some(match ext {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        _ => return None,
    })
}

fn hex_digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Escapes text for an HTML attribute or element.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(vars: &[(&str, &str)]) -> Result<ConsoleSettings, SettingError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let get = move |k: &str| map.get(k).cloned();
        ConsoleSettings::read(&Settings::new(&get))
    }

    #[test]
    fn settings_are_checked_and_shape_the_policy() {
        let c = read(&[
            ("HOOKLINE_CONSOLE_PRODUCT_NAME", "Acme <Hooks>"),
            ("HOOKLINE_CONSOLE_ACCENT", "#4F46E5"),
            ("HOOKLINE_CONSOLE_FRAME_ANCESTORS", "https://app.example.com 'self' http://localhost:3000/"),
        ])
        .unwrap();
        assert_eq!(c.accent.as_deref(), Some("#4f46e5"));
        let csp = c.content_security_policy();
        assert!(csp.ends_with("frame-ancestors https://app.example.com 'self' http://localhost:3000"), "{csp}");
        assert!(csp.contains("script-src 'self';") && !csp.contains("unsafe"), "{csp}");
        assert!(read(&[]).unwrap().content_security_policy().ends_with("frame-ancestors 'none'"));
        let with_logo = read(&[("HOOKLINE_CONSOLE_LOGO_URL", "https://cdn.acme.example/logo.svg")]).unwrap();
        assert!(with_logo.content_security_policy().contains("img-src 'self' data: https://cdn.acme.example;"));
        for (var, value) in [
            ("HOOKLINE_CONSOLE_ACCENT", "red"),
            ("HOOKLINE_CONSOLE_ACCENT", "#12345"),
            ("HOOKLINE_CONSOLE_LOGO_URL", "http://x.example/logo.png"),
            ("HOOKLINE_CONSOLE_LOGO_URL", "javascript:alert(1)"),
            ("HOOKLINE_CONSOLE_FRAME_ANCESTORS", "*"),
            ("HOOKLINE_CONSOLE_FRAME_ANCESTORS", "https://a.example/path"),
            ("HOOKLINE_CONSOLE_FRAME_ANCESTORS", "https://a.example;script-src"),
            ("HOOKLINE_PUBLIC_URL", "ftp://x.example"),
            ("HOOKLINE_PUBLIC_URL", "https://x.example/?a=1"),
        ] {
            let e = read(&[(var, value)]).unwrap_err();
            assert_eq!(e.var, var, "{value}");
        }
    }

    #[test]
    fn theme_values_are_escaped() {
        assert_eq!(escape(r#"A"<b>&'"#), "A&quot;&lt;b&gt;&amp;&#39;");
    }
}
