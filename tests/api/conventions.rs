//! What holds for every endpoint (§2): the error shape, headers, size limits, hostile input.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Db, PASSWORD, Reply, TestApp};

/// Every error has `error` and `message`, and `fields` only with `validation_failed`.
#[track_caller]
fn assert_error_shape(reply: &Reply, status: u16, code: &str) {
    reply.expect(status, Some(code));
    let object = reply.body.as_object().expect("a JSON object");
    assert!(object.keys().all(|k| {
        [
            "error",
            "message",
            "fields",
            "retry_after",
            "can_resend_otp",
        ]
        .contains(&k.as_str())
    }));
    assert_eq!(
        object.contains_key("fields"),
        code == "validation_failed",
        "{}",
        reply.text
    );
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json"))
    );
}

db_tests! {
    async fn unknown_routes_and_methods_answer_in_shape(db: Db) {
        let app = TestApp::spawn(db).await;

        assert_error_shape(&app.get("/nowhere", None).await, 404, "not_found");
        assert_error_shape(&app.get("/auth/login", None).await, 405, "method_not_allowed");
        assert_error_shape(&app.request(Method::DELETE, "/health", None, None).await, 405, "method_not_allowed");
    }

    async fn unreadable_bodies_answer_in_shape_and_change_nothing(db: Db) {
        let app = TestApp::spawn(db).await;
        let raw = |body: &'static str, content_type: &'static str| {
            app.client
                .post(format!("{}/auth/register", app.base))
                .header("content-type", content_type)
                .body(body)
                .send()
        };

        let malformed = Reply::read(raw("{\"email\": ", "application/json").await.unwrap()).await;
        let not_object = Reply::read(raw("[1, 2, 3]", "application/json").await.unwrap()).await;
        let wrong_type = Reply::read(raw("{\"email\": [\"a\"], \"password\": 5}", "application/json").await.unwrap()).await;
        let form = Reply::read(raw("email=a%40b.c", "application/x-www-form-urlencoded").await.unwrap()).await;
        let empty = Reply::read(raw("", "application/json").await.unwrap()).await;

        assert_error_shape(&malformed, 400, "invalid_json");
        assert_error_shape(&not_object, 400, "validation_failed");
        assert_error_shape(&wrong_type, 400, "validation_failed");
        assert!(!wrong_type.field_problems("email").is_empty() || !wrong_type.field_problems("password").is_empty());
        assert_error_shape(&form, 415, "unsupported_media_type");
        assert_error_shape(&empty, 400, "invalid_json");
        assert_eq!(app.count("users").await, 0);
    }

    async fn a_field_of_the_wrong_type_is_named_in_plain_words(db: Db) {
        let app = TestApp::spawn(db).await;

        let number_code = app.post("/auth/verify-otp", json!({"email": "jane@example.com", "otp": 123456})).await;
        let number_context = app.post("/auth/resend-otp", json!({"email": "jane@example.com", "context": 5})).await;
        let unknown_context = app.post("/auth/resend-otp", json!({"email": "jane@example.com", "context": "nope"})).await;

        assert_error_shape(&number_code, 400, "validation_failed");
        assert_eq!(number_code.field_problems("otp"), ["Must be a string."]);
        assert_error_shape(&number_context, 400, "validation_failed");
        assert_eq!(number_context.field_problems("context"), ["Must be one of the documented values."]);
        assert_eq!(unknown_context.field_problems("context"), ["Must be one of the documented values."]);
    }

    async fn bodies_without_a_content_type_get_415(db: Db) {
        let app = TestApp::spawn(db).await;
        // What a cross-site "simple" request can send: a body, but no application/json.
        let untyped = |path: &str, body: Value| {
            app.client.post(format!("{}{path}", app.base)).body(body.to_string()).send()
        };

        let register = untyped("/auth/register", json!({"email": "jane@example.com", "password": PASSWORD, "password2": PASSWORD})).await.unwrap();
        let login = untyped("/auth/login", json!({"email": "jane@example.com", "password": PASSWORD})).await.unwrap();

        assert_error_shape(&Reply::read(register).await, 415, "unsupported_media_type");
        assert_error_shape(&Reply::read(login).await, 415, "unsupported_media_type");
        assert_eq!(app.count("users").await, 0);
        assert!(app.mail.all().is_empty());
    }

    async fn bodies_over_64_kib_get_413(db: Db) {
        let app = TestApp::spawn(db).await;
        let huge = json!({"email": "jane@example.com", "password": "x".repeat(70 * 1024), "password2": "x"});

        let declared = app.post("/auth/register", huge.clone()).await;
        let chunked = Reply::read(
            app.client
                .post(format!("{}/auth/register", app.base))
                .header("content-type", "application/json")
                .body(reqwest::Body::wrap_stream(futures_util::stream::iter(vec![
                    Ok::<_, std::io::Error>(huge.to_string().into_bytes()),
                ])))
                .send()
                .await
                .unwrap(),
        )
        .await;

        assert_error_shape(&declared, 413, "payload_too_large");
        assert_error_shape(&chunked, 413, "payload_too_large");
        assert_eq!(app.count("users").await, 0);
    }

    async fn hostile_input_gets_clear_errors(db: Db) {
        let app = TestApp::spawn(db).await;

        for email in ["jane\u{0}@example.com", "ja\u{202e}ne@example.com", "jäne@exämple.com", "<script>@x.com",
            "jane@example.com\r\nBcc: all@example.com"]
        {
            let reply = app.register(email, PASSWORD).await;
            assert_error_shape(&reply, 400, "validation_failed");
            assert!(!reply.field_problems("email").is_empty());
        }
        let login = app.post("/auth/login", json!({"email": "' OR 1=1 --", "password": "x"})).await;
        assert_error_shape(&login, 400, "validation_failed");
        let long = app.register("jane@example.com", &"ü".repeat(600)).await;
        assert_error_shape(&long, 400, "validation_failed");
        assert!(long.field_problems("password")[0].contains("too long"));
        assert_eq!(app.count("users").await, 0);
        assert!(app.mail.all().is_empty());
    }

    async fn responses_carry_request_ids_and_safety_headers(db: Db) {
        let app = TestApp::spawn(db).await;

        let echoed = app
            .client
            .get(format!("{}/health", app.base))
            .header("x-request-id", "trace-123")
            .send()
            .await
            .unwrap();
        let minted = app.get("/nowhere", None).await;

        assert_eq!(echoed.headers()["x-request-id"], "trace-123");
        assert_eq!(echoed.headers()["x-content-type-options"], "nosniff");
        assert!(uuid::Uuid::parse_str(minted.header("x-request-id").unwrap()).is_ok());
        assert_eq!(minted.header("x-content-type-options"), Some("nosniff"));
    }

    async fn service_endpoints_answer(db: Db) {
        let app = TestApp::spawn(db).await;

        let health = app.get("/health", None).await;
        let ready = app.get("/ready", None).await;
        let settings = app.get("/auth/settings", None).await;
        let ui = app.client.get(format!("{}/", app.base)).send().await.unwrap();
        let document = app.get("/openapi.json", None).await;

        health.expect(200, None);
        assert_eq!(health.body, json!({"status": "ok"}));
        ready.expect(200, None);
        settings.expect(200, None);
        assert_eq!(settings.body, json!({
            "otp_length": 6, "otp_ttl_seconds": 600, "otp_resend_cooldown_seconds": 60,
            "password_min_length": 8, "self_assignable_roles": ["user"], "allowed_email_domains": [],
            "usernames": "optional", "mfa_methods": ["totp", "email"], "avatar_max_bytes": 5_242_880,
        }));
        assert!(ui.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        assert!(ui.text().await.unwrap().contains("swagger"));
        assert_eq!(document.body["servers"], json!([{"url": "/"}]), "Swagger UI calls the origin it was loaded from");
    }

    async fn readiness_fails_when_the_database_is_gone(db: Db) {
        let app = TestApp::spawn(db).await;

        app.state.db.clone().close().await.unwrap();

        let ready = app.get("/ready", None).await;
        assert_eq!(ready.status, 503);
        assert_eq!(ready.body["error"], "not_ready");
        let health = app.get("/health", None).await;
        health.expect(200, None);
        assert_error_shape(&app.login("jane@example.com", PASSWORD).await, 503, "unavailable");
    }

    async fn no_response_ever_carries_a_secret(db: Db) {
        let app = TestApp::spawn(db).await;
        let mut replies: Vec<Value> = Vec::new();
        replies.push(app.register("jane@example.com", PASSWORD).await.body);
        let code = app.mail.latest_code("jane@example.com");
        let verified = app.post("/auth/verify-otp", json!({"email": "jane@example.com", "otp": code})).await.body;
        replies.push(verified.clone());
        replies.push(app.login("jane@example.com", PASSWORD).await.body);
        replies.push(app.get("/auth/me", verified["access"].as_str()).await.body);
        replies.push(app.post("/auth/forgot-password", json!({"email": "jane@example.com"})).await.body);
        let reset_code = app.mail.latest_code("jane@example.com");
        replies.push(app.post("/auth/verify-password-reset-otp", json!({"email": "jane@example.com", "otp": reset_code})).await.body);
        replies.push(app.get("/.well-known/jwks.json", None).await.body);

        let everything = serde_json::to_string(&replies).unwrap();
        for secret in [PASSWORD, &code, &reset_code, "$argon2", "password_hash", "code_hash", "token_hash", "private"] {
            assert!(!everything.contains(secret), "{secret} leaked");
        }
    }
}

/// The hashes a CSP must list to admit every inline `<tag>` element of `html`: an element's
/// content runs to its end tag, whatever it contains (the script bundle quotes `<script`).
fn inline_hashes(html: &str, tag: &str) -> Vec<String> {
    use base64::{Engine, engine::general_purpose::STANDARD};
    use sha2::{Digest, Sha256};
    let mut hashes = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find(&format!("<{tag}")) {
        let element = &rest[start..];
        let Some(content) = element.find('>').map(|end| &element[end + 1..]) else {
            break;
        };
        let Some(length) = content.find(&format!("</{tag}>")) else {
            break;
        };
        hashes.push(format!(
            "'sha256-{}'",
            STANDARD.encode(Sha256::digest(&content[..length]))
        ));
        rest = &content[length..];
    }
    hashes
}

/// §9: Swagger UI's page cannot be framed (clickjacking the Authorize dialog) and runs only
/// its own inline script and style, named by hash.
#[tokio::test]
async fn the_swagger_ui_page_has_a_content_security_policy() {
    let app = TestApp::spawn(Db::Sqlite).await;

    let page = app
        .client
        .get(format!("{}/", app.base))
        .send()
        .await
        .unwrap();

    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    let html = page.text().await.unwrap();
    let directive = |name: &str| {
        policy
            .split(';')
            .map(str::trim)
            .find_map(|directive| directive.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in {policy}"))
            .split(' ')
            .map(str::to_string)
            .collect::<Vec<String>>()
    };
    assert_eq!(directive("frame-ancestors"), ["'none'"]);
    assert_eq!(directive("default-src"), ["'none'"]);
    let (scripts, styles) = (
        inline_hashes(&html, "script"),
        inline_hashes(&html, "style"),
    );
    assert_eq!(scripts.len(), 2, "the bundle and the start-up script");
    assert_eq!(styles.len(), 1);
    for hash in &scripts {
        assert!(
            directive("script-src").contains(hash),
            "{hash} missing from {policy}"
        );
    }
    for hash in &styles {
        assert!(
            directive("style-src").contains(hash),
            "{hash} missing from {policy}"
        );
    }
    assert!(!directive("script-src").contains(&"'unsafe-inline'".to_string()));
}
