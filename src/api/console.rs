//! The admin console: a page and a few ES modules under `/admin/`, embedded in the binary.
//!
//! The console is a client of the public admin API (contract §10) like any other, so the
//! server side is only this: fixed files, each with its content type, under a strict
//! Content-Security-Policy. Only files from the console's own origin run (`script-src
//! 'self'`, no inline script or style), so a value from the API that reached the page as
//! markup still could not run; the console inserts every value as text besides.
//! `frame-ancestors 'none'` (and `X-Frame-Options: DENY`) keeps other sites from framing it
//! to trick an admin into clicking. The routes are not operations of the OpenAPI document:
//! they serve a page, not the API.

use poem::{
    Endpoint, EndpointExt, IntoResponse, Response,
    http::{HeaderValue, StatusCode, header},
    middleware::SetHeader,
};

use super::error::{ApiError, ErrorCode};

/// Where the console is, without the slash its relative links need.
pub const BARE_ROUTE: &str = "/admin";
/// The console's page.
pub const PAGE_ROUTE: &str = "/admin/";
/// The page's scripts and stylesheet, by file name.
pub const ASSET_ROUTE: &str = "/admin/assets/:file";
/// The asset route as the access log and metrics name it.
pub const ASSET_ROUTE_NAME: &str = "/admin/assets/{file}";

/// Images may be the service's own pictures (`/avatars/…`) or drawn by the page; the API is
/// on the same origin.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

const HTML: &str = "text/html; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// A file of `console/`, embedded: its name, its content type, its content.
macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        (
            $name,
            $content_type,
            include_str!(concat!("../../console/", $name)),
        )
    };
}

/// The page and every file it loads.
const ASSETS: [(&str, &str, &str); 10] = [
    asset!("index.html", HTML),
    asset!("style.css", CSS),
    asset!("app.js", JAVASCRIPT),
    asset!("api.js", JAVASCRIPT),
    asset!("dom.js", JAVASCRIPT),
    asset!("sign_in.js", JAVASCRIPT),
    asset!("dashboard.js", JAVASCRIPT),
    asset!("users.js", JAVASCRIPT),
    asset!("user.js", JAVASCRIPT),
    asset!("audit.js", JAVASCRIPT),
];

/// `/admin/`: the console's one page; everything else happens behind its `#/…` routes.
pub fn page() -> impl Endpoint<Output = Response> {
    locked_down(poem::endpoint::make_sync(|_| serve("index.html")))
}

/// `/admin/assets/{file}`: the page's modules and stylesheet; any other name is 404.
pub fn assets() -> impl Endpoint<Output = Response> {
    locked_down(poem::endpoint::make_sync(|request| {
        match request.raw_path_param("file") {
            // The page has a route of its own, under which its relative links resolve.
            Some("index.html") | None => not_found(),
            Some(file) => serve(file),
        }
    }))
}

/// `/admin`: the page lives at `/admin/`, where its relative links resolve.
pub fn redirect() -> impl Endpoint<Output = Response> {
    poem::endpoint::make_sync(|_| {
        Response::builder()
            .status(StatusCode::PERMANENT_REDIRECT)
            .header(header::LOCATION, PAGE_ROUTE)
            .finish()
    })
}

fn serve(file: &str) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, content)) => Response::builder()
            .content_type(*content_type)
            .body(*content),
        None => not_found(),
    }
}

fn not_found() -> Response {
    ApiError::new(ErrorCode::NotFound).into_response()
}

fn locked_down(endpoint: impl Endpoint<Output = Response>) -> impl Endpoint<Output = Response> {
    endpoint.with(
        SetHeader::new()
            .overriding(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            )
            .overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"))
            .overriding(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module added to `console/` but not to [`ASSETS`] would be 404 to the page that
    /// imports it.
    #[test]
    fn every_file_of_the_console_folder_is_served() {
        let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/console");
        let mut on_disk: Vec<String> = std::fs::read_dir(folder)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        let mut served: Vec<String> = ASSETS.iter().map(|(name, _, _)| name.to_string()).collect();
        on_disk.sort();
        served.sort();

        assert_eq!(on_disk, served);
    }
}
