//! Swagger UI's page, locked down for browsers.
//!
//! poem-openapi inlines the whole UI into one page: its stylesheet, its script bundle and a
//! start-up script holding the document. The page's Content-Security-Policy admits exactly
//! those inline elements, by SHA-256 hashes computed once at start-up, and nothing else, so a
//! script injected into the page (through a description in the document, say) does not run.
//! `frame-ancestors 'none'` (and `X-Frame-Options: DENY` for browsers older than CSP 2) keeps
//! other sites from framing the page to trick a person into clicking in it (clickjacking the
//! Authorize dialog).

use base64::{Engine, engine::general_purpose::STANDARD};
use poem::{
    Endpoint, EndpointExt, Response,
    http::{HeaderValue, header},
    middleware::SetHeader,
};
use sha2::{Digest, Sha256};

/// What the page gets should its policy ever fail to be a header value: a page that does not
/// work rather than one without protection.
const LOCKED_DOWN: &str = "default-src 'none'; frame-ancestors 'none'";

/// Serves the page `html` with its policy. "Try it out" calls the origin the page was loaded
/// from (the document's server is `/`), so `connect-src 'self'` is all it needs.
pub fn page(html: String) -> impl Endpoint<Output = Response> + use<> {
    let policy = HeaderValue::from_str(&content_security_policy(&html))
        .unwrap_or(HeaderValue::from_static(LOCKED_DOWN));
    super::fixed("text/html; charset=utf-8", html).with(
        SetHeader::new()
            .overriding(header::CONTENT_SECURITY_POLICY, policy)
            .overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    )
}

fn content_security_policy(html: &str) -> String {
    let inline = InlineHashes::of(html);
    format!(
        "default-src 'none'; script-src {}; style-src {}; img-src 'self' data:; \
         connect-src 'self'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'",
        inline.scripts.join(" "),
        inline.styles.join(" "),
    )
}

/// `'sha256-…'` sources for the inline `<script>` and `<style>` elements of a page.
#[derive(Debug, Default, PartialEq, Eq)]
struct InlineHashes {
    scripts: Vec<String>,
    styles: Vec<String>,
}

impl InlineHashes {
    /// Reads the page the way a browser does for these raw-text elements: the content is every
    /// byte between the start tag and the first `</script` (or `</style`), whatever it looks
    /// like, and that is what CSP hashes. Tag names are matched without regard to case.
    fn of(html: &str) -> InlineHashes {
        // ASCII lowercasing keeps every byte offset, so positions found here index `html`.
        let lower = html.to_ascii_lowercase();
        let mut hashes = InlineHashes::default();
        let mut at = 0;
        loop {
            let next = ["script", "style"]
                .into_iter()
                .filter_map(|tag| Some((at + lower[at..].find(&format!("<{tag}"))?, tag)))
                .min();
            let Some((start, tag)) = next else { break };
            let Some(content_start) = lower[start..].find('>').map(|end| start + end + 1) else {
                break;
            };
            let end_tag = format!("</{tag}");
            let Some(content_end) = lower[content_start..]
                .find(&end_tag)
                .map(|length| content_start + length)
            else {
                break;
            };
            let digest = Sha256::digest(&html.as_bytes()[content_start..content_end]);
            let source = format!("'sha256-{}'", STANDARD.encode(digest));
            match tag {
                "script" => hashes.scripts.push(source),
                _ => hashes.styles.push(source),
            }
            at = content_end + end_tag.len();
        }
        hashes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(content: &str) -> String {
        format!("'sha256-{}'", STANDARD.encode(Sha256::digest(content)))
    }

    #[test]
    fn every_inline_element_is_hashed_once() {
        let html = "<html><head><style charset=\"UTF-8\">a{}</style>\
                    <SCRIPT>let s = \"<style>\";</SCRIPT></head>\
                    <body><script>\n go()\n</script></body></html>";

        let hashes = InlineHashes::of(html);

        assert_eq!(hashes.styles, [source("a{}")]);
        assert_eq!(
            hashes.scripts,
            [source("let s = \"<style>\";"), source("\n go()\n")]
        );
    }

    #[test]
    fn the_policy_names_what_the_page_inlines() {
        let policy = content_security_policy("<style>b{}</style><script>x()</script>");

        assert!(policy.contains(&format!("script-src {};", source("x()"))));
        assert!(policy.contains(&format!("style-src {};", source("b{}"))));
        assert!(policy.contains("connect-src 'self';"));
        assert!(policy.ends_with("frame-ancestors 'none'"));
    }
}
