//! The admin console's files under `/admin/`: what the browser gets, and under which policy.
//! What the console does is tested in a real browser (`tests/browser/console_test.py`).

use crate::helpers::{Db, Reply, TestApp};

/// The console's page and files run under a policy that admits only the console's own
/// files: no inline script or style, no framing, no other origin.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                      img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; \
                      base-uri 'none'; form-action 'self'";

async fn fetch(app: &TestApp, path: &str) -> Reply {
    app.get(path, None).await
}

db_tests! {
    async fn the_console_page_is_served_under_a_strict_policy(db: Db) {
        let app = TestApp::spawn(db).await;

        let page = fetch(&app, "/admin/").await;

        page.expect(200, None);
        assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(page.header("content-security-policy"), Some(POLICY));
        assert_eq!(page.header("x-frame-options"), Some("DENY"));
        assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
        assert!(page.text.contains(r#"<script type="module" src="assets/app.js"></script>"#));
        assert!(page.text.contains(r#"<link rel="stylesheet" href="assets/style.css">"#));
        // Nothing inline for the policy to refuse.
        assert!(!page.text.contains("<style"));
        assert!(!page.text.contains(" style="));
        assert_eq!(page.text.matches("<script").count(), 1);
    }

    async fn the_console_files_have_their_content_types(db: Db) {
        let app = TestApp::spawn(db).await;

        for (file, content_type) in [
            ("app.js", "text/javascript; charset=utf-8"),
            ("api.js", "text/javascript; charset=utf-8"),
            ("users.js", "text/javascript; charset=utf-8"),
            ("audit.js", "text/javascript; charset=utf-8"),
            ("style.css", "text/css; charset=utf-8"),
        ] {
            let asset = fetch(&app, &format!("/admin/assets/{file}")).await;

            asset.expect(200, None);
            assert_eq!(asset.header("content-type"), Some(content_type), "{file}");
            assert_eq!(asset.header("content-security-policy"), Some(POLICY), "{file}");
            assert!(!asset.text.is_empty(), "{file}");
        }
    }

    async fn unknown_console_files_are_not_found(db: Db) {
        let app = TestApp::spawn(db).await;

        for path in [
            "/admin/assets/nowhere.js",
            "/admin/assets/index.html",
            "/admin/assets/../Cargo.toml",
            "/admin/assets/%2e%2e%2fCargo.toml",
            "/admin/assets/sub/app.js",
            "/admin/app.js",
        ] {
            let missing = fetch(&app, path).await;

            missing.expect(404, Some("not_found"));
            assert!(missing.text.starts_with('{'), "{path}: {}", missing.text);
        }
    }

    async fn the_console_without_its_slash_redirects_to_it(db: Db) {
        let app = TestApp::spawn(db).await;

        let response = app
            .client
            .get(format!("{}/admin", app.base))
            .send()
            .await
            .unwrap();

        assert_eq!(response.status(), 200);
        assert_eq!(response.url().path(), "/admin/");
    }

    async fn the_console_is_not_an_operation_of_the_api_document(db: Db) {
        let app = TestApp::spawn(db).await;

        let document = fetch(&app, "/openapi.json").await;

        let paths = document.body["paths"].as_object().unwrap();
        assert!(paths.keys().all(|path| path != "/admin/" && !path.starts_with("/admin/assets")));
    }
}
