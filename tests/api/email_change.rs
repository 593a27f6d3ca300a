//! Changing the signed-in account's address (§10 "Self-service": `POST /auth/me/email` and
//! `/auth/me/email/confirm`).

use std::time::Duration;

use authgate::config::{Limit, Limits};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Db, PASSWORD, Reply, TestApp};

const OLD: &str = "jane@example.com";
const NEW: &str = "jane.doe@example.org";

async fn request_change(app: &TestApp, token: Option<&str>, body: Value) -> Reply {
    app.request(Method::POST, "/auth/me/email", token, Some(body))
        .await
}

async fn confirm(app: &TestApp, token: Option<&str>, otp: &str) -> Reply {
    app.request(
        Method::POST,
        "/auth/me/email/confirm",
        token,
        Some(json!({"otp": otp})),
    )
    .await
}

/// A code that is not `code`.
fn other_than(code: &str) -> &'static str {
    if code == "000000" { "111111" } else { "000000" }
}

db_tests! {
    async fn the_new_address_replaces_the_old_and_other_sessions_end(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user(OLD).await;
        let token = signed_in["access"].as_str();
        let elsewhere = app.login(OLD, PASSWORD).await.body;

        let requested = request_change(&app, token, json!({"new_email": "  Jane.Doe@Example.ORG ", "password": PASSWORD})).await;

        requested.expect(202, None);
        assert_eq!(requested.body, json!({"otp_sent": true, "otp_expires_in": 600}));
        let mail = app.mail.to(NEW).pop().expect("a code to the new address");
        assert_eq!(mail.subject(), "Confirm your new email address");
        let code = mail.code().expect("the code on its own line");
        // Nothing changes before the code comes back.
        assert_eq!(app.get("/auth/me", token).await.body["email"], OLD);
        assert_eq!(app.mail.to(OLD).len(), 1, "only the verification code so far");

        let confirmed = confirm(&app, token, &code).await;

        confirmed.expect(200, None);
        assert_eq!(confirmed.header("cache-control"), Some("no-store"));
        let user = &confirmed.body["user"];
        assert_eq!(user["email"], NEW);
        assert_eq!(user["is_verified"], true);
        assert_eq!(user["id"], signed_in["user"]["id"]);
        assert_eq!(confirmed.body["token_type"], "Bearer");
        assert!(confirmed.body["expires_in"].as_u64().is_some_and(|s| s > 0));
        assert!(confirmed.body["refresh_expires_in"].as_u64().is_some_and(|s| s > 0));
        // The old address is told, with the new one named.
        let notice = app.mail.to(OLD).pop().unwrap();
        assert!(notice.subject().contains("changed"), "{}", notice.subject());
        assert!(notice.data.contains(NEW));
        assert!(notice.code().is_none());
        // Signing in follows the address.
        app.login(OLD, PASSWORD).await.expect(401, Some("invalid_credentials"));
        app.login(NEW, PASSWORD).await.expect(200, None);
        // Every other session is over; this device continues with its new pair.
        for refresh in [&signed_in["refresh"], &elsewhere["refresh"]] {
            app.post("/auth/token/refresh", json!({"refresh": refresh}))
                .await
                .expect(401, Some("invalid_refresh_token"));
        }
        let refreshed = app.post("/auth/token/refresh", json!({"refresh": confirmed.body["refresh"]})).await;
        refreshed.expect(200, None);
        let me = app.get("/auth/me", refreshed.body["access"].as_str()).await;
        assert_eq!(me.body["email"], NEW);
        assert_eq!(app.get("/auth/me", confirmed.body["access"].as_str()).await.body["email"], NEW);
        // Audited: the request, and the change with its before and after.
        let changes = app.query_strings("SELECT changes FROM audit_events WHERE action = 'email_changed'").await;
        let changes: Value = serde_json::from_str(&changes[0]).unwrap();
        assert_eq!(changes["email"], json!({"before": OLD, "after": NEW}));
        let requested = app.query_strings("SELECT details FROM audit_events WHERE action = 'email_change_requested'").await;
        assert!(requested[0].contains(NEW), "{requested:?}");
        // The code is used up.
        confirm(&app, confirmed.body["access"].as_str(), &code).await.expect(400, Some("invalid_otp"));
    }

    async fn the_request_needs_the_password_and_a_new_valid_address(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user(OLD).await;
        let token = signed_in["access"].as_str();

        let wrong = request_change(&app, token, json!({"new_email": NEW, "password": "not my password"})).await;
        wrong.expect(401, Some("invalid_credentials"));
        assert_eq!(
            app.query_strings("SELECT outcome FROM audit_events WHERE action = 'email_change_failed'").await,
            ["failure"]
        );
        let missing = request_change(&app, token, json!({"new_email": NEW})).await;
        missing.expect(400, Some("validation_failed"));
        assert!(!missing.field_problems("password").is_empty());
        for bad in ["", "not-an-address", "jane@", "a@b", &format!("{}@example.org", "x".repeat(300))] {
            let reply = request_change(&app, token, json!({"new_email": bad, "password": PASSWORD})).await;
            reply.expect(400, Some("validation_failed"));
            assert!(!reply.field_problems("new_email").is_empty(), "{bad}: {}", reply.text);
        }
        for same in [OLD, " JANE@example.com "] {
            let reply = request_change(&app, token, json!({"new_email": same, "password": PASSWORD})).await;
            reply.expect(400, Some("validation_failed"));
            assert!(!reply.field_problems("new_email").is_empty(), "{same}: {}", reply.text);
        }
        for wrong_type in [json!({"new_email": 42, "password": PASSWORD}), json!({"new_email": NEW, "password": ["x"]}), json!([NEW])] {
            request_change(&app, token, wrong_type).await.expect(400, Some("validation_failed"));
        }
        request_change(&app, None, json!({"new_email": NEW, "password": PASSWORD}))
            .await
            .expect(401, Some("unauthorized"));
        request_change(&app, Some("not.a.token"), json!({"new_email": NEW, "password": PASSWORD}))
            .await
            .expect(401, Some("unauthorized"));
        confirm(&app, None, "123456").await.expect(401, Some("unauthorized"));

        assert!(app.mail.to(NEW).is_empty(), "no code went out");
        assert_eq!(app.count_where("one_time_codes", "purpose = 'email_change'").await, 0);
    }

    async fn wrong_passwords_count_toward_the_login_lockout(db: Db) {
        let app = TestApp::spawn_with(db, |config| {
            config.limits = Limits {
                login_account: Some(Limit { count: 2, window: Duration::from_secs(900) }),
                ..Limits::OFF
            };
        })
        .await;
        let signed_in = app.verified_user(OLD).await;
        let token = signed_in["access"].as_str();

        for _ in 0..2 {
            request_change(&app, token, json!({"new_email": NEW, "password": "a guess, wrong"}))
                .await
                .expect(401, Some("invalid_credentials"));
        }

        app.login(OLD, PASSWORD).await.expect(429, Some("rate_limited"));
        let locked = request_change(&app, token, json!({"new_email": NEW, "password": PASSWORD})).await;
        locked.expect(429, Some("rate_limited"));
        assert!(locked.header("retry-after").is_some());
        assert!(app.mail.to(NEW).is_empty());
    }

    async fn addresses_of_other_domains_are_refused_when_domains_are_limited(db: Db) {
        let app = TestApp::spawn_with(db, |config| {
            config.allowed_email_domains = vec!["example.com".into()];
        })
        .await;
        let signed_in = app.verified_user(OLD).await;
        let token = signed_in["access"].as_str();

        for outside in ["jane@example.org", "jane@notexample.com"] {
            request_change(&app, token, json!({"new_email": outside, "password": PASSWORD}))
                .await
                .expect(403, Some("email_domain_not_allowed"));
        }
        request_change(&app, token, json!({"new_email": "jane@physics.example.com", "password": PASSWORD}))
            .await
            .expect(202, None);
    }

    async fn an_address_any_account_holds_is_taken(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user(OLD).await;
        let token = signed_in["access"].as_str();
        app.verified_user("bob@example.com").await;
        app.register("carol@example.com", PASSWORD).await.expect(201, None);
        let mails_before = app.mail.all().len();

        for taken in ["bob@example.com", "CAROL@example.com"] {
            request_change(&app, token, json!({"new_email": taken, "password": PASSWORD}))
                .await
                .expect(409, Some("email_taken"));
        }

        assert_eq!(app.mail.all().len(), mails_before, "nobody was mailed");
    }

    async fn an_address_taken_before_the_confirmation_is_refused(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user(OLD).await;
        let token = signed_in["access"].as_str();
        request_change(&app, token, json!({"new_email": NEW, "password": PASSWORD})).await.expect(202, None);
        let code = app.mail.latest_code(NEW);

        // Someone registers the address meanwhile.
        app.register(NEW, "someone else's secret").await.expect(201, None);
        let refused = confirm(&app, token, &code).await;

        refused.expect(409, Some("email_taken"));
        assert_eq!(app.get("/auth/me", token).await.body["email"], OLD);
        app.login(OLD, PASSWORD).await.expect(200, None);
        app.post("/auth/token/refresh", json!({"refresh": signed_in["refresh"]})).await.expect(200, None);
        assert_eq!(app.count_where("audit_events", "action = 'email_changed'").await, 0);
    }

    async fn codes_to_one_address_are_a_cooldown_apart(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user(OLD).await;
        let token = signed_in["access"].as_str();
        let body = json!({"new_email": NEW, "password": PASSWORD});
        request_change(&app, token, body.clone()).await.expect(202, None);
        let first = app.mail.latest_code(NEW);

        let again = request_change(&app, token, body.clone()).await;

        again.expect(429, Some("resend_too_soon"));
        let wait = again.body["retry_after"].as_u64().expect("retry_after");
        assert!((1..=60).contains(&wait), "{wait}");
        assert_eq!(again.header("retry-after"), Some(wait.to_string().as_str()));
        assert_eq!(app.mail.to(NEW).len(), 1);
        // The refused request changed nothing: the first code still works.
        confirm(&app, token, &first).await.expect(200, None);
    }

    async fn a_newer_request_voids_the_older_code(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user(OLD).await;
        let token = signed_in["access"].as_str();
        request_change(&app, token, json!({"new_email": "first@example.org", "password": PASSWORD}))
            .await
            .expect(202, None);
        let first = app.mail.latest_code("first@example.org");

        // Another address is not inside the first one's cooldown.
        request_change(&app, token, json!({"new_email": NEW, "password": PASSWORD}))
            .await
            .expect(202, None);
        let second = app.mail.latest_code(NEW);

        if first != second {
            confirm(&app, token, &first).await.expect(400, Some("invalid_otp"));
        }
        let confirmed = confirm(&app, token, &second).await;
        confirmed.expect(200, None);
        assert_eq!(confirmed.body["user"]["email"], NEW);
    }

    async fn wrong_expired_and_burned_codes_are_refused(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user(OLD).await;
        let token = signed_in["access"].as_str();
        // No change was asked for.
        confirm(&app, token, "123456").await.expect(400, Some("invalid_otp"));
        let body = json!({"new_email": NEW, "password": PASSWORD});
        request_change(&app, token, body.clone()).await.expect(202, None);
        let code = app.mail.latest_code(NEW);

        confirm(&app, token, other_than(&code)).await.expect(400, Some("invalid_otp"));
        let missing = app.request(Method::POST, "/auth/me/email/confirm", token, Some(json!({}))).await;
        missing.expect(400, Some("validation_failed"));
        assert!(!missing.field_problems("otp").is_empty());
        app.request(Method::POST, "/auth/me/email/confirm", token, Some(json!({"otp": 123456})))
            .await
            .expect(400, Some("validation_failed"));
        confirm(&app, token, &"9".repeat(10_000)).await.expect(400, Some("invalid_otp"));

        // Expired (the access token too: a new sign-in).
        app.clock.advance(app.state.config.otp_ttl + Duration::from_secs(1));
        let signed_in = app.login(OLD, PASSWORD).await.body;
        let token = signed_in["access"].as_str();
        confirm(&app, token, &code).await.expect(400, Some("invalid_otp"));

        // Burned after the allowed wrong guesses, even for the right code.
        request_change(&app, token, body.clone()).await.expect(202, None);
        let code = app.mail.latest_code(NEW);
        for _ in 0..app.state.config.otp_max_attempts {
            confirm(&app, token, other_than(&code)).await.expect(400, Some("invalid_otp"));
        }
        confirm(&app, token, &code).await.expect(400, Some("otp_locked"));
        assert_eq!(app.get("/auth/me", token).await.body["email"], OLD);

        // A new code starts afresh.
        app.pass_cooldown();
        request_change(&app, token, body).await.expect(202, None);
        confirm(&app, token, &app.mail.latest_code(NEW)).await.expect(200, None);
    }

    async fn codes_of_other_purposes_never_cross(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user(OLD).await;
        let token = signed_in["access"].as_str();
        app.post("/auth/forgot-password", json!({"email": OLD})).await.expect(200, None);
        let reset_code = app.mail.latest_code(OLD);
        request_change(&app, token, json!({"new_email": NEW, "password": PASSWORD})).await.expect(202, None);
        let change_code = app.mail.latest_code(NEW);

        // Both codes are drawn at random: should they be equal, which one is checked is moot.
        let distinct = reset_code != change_code;
        // A reset code does not confirm a change.
        if distinct {
            confirm(&app, token, &reset_code).await.expect(400, Some("invalid_otp"));
        }
        // A change code neither resets a password nor verifies a registration, at either address.
        for email in [NEW, OLD].into_iter().filter(|email| distinct || *email == NEW) {
            app.post("/auth/verify-password-reset-otp", json!({"email": email, "otp": change_code}))
                .await
                .expect(400, Some("invalid_otp"));
            app.post("/auth/reset-password", json!({"email": email, "otp": change_code,
                "new_password": "a stolen new secret", "confirm_password": "a stolen new secret"}))
                .await
                .expect(400, Some("invalid_otp"));
        }
        app.post("/auth/verify-otp", json!({"email": NEW, "otp": change_code}))
            .await
            .expect(400, Some("invalid_otp"));

        confirm(&app, token, &change_code).await.expect(200, None);
        // The reset code mailed to the old address no longer reaches the account.
        app.post("/auth/reset-password", json!({"email": OLD, "otp": reset_code,
            "new_password": "a stolen new secret", "confirm_password": "a stolen new secret"}))
            .await
            .expect(400, Some("invalid_otp"));
        app.login(NEW, PASSWORD).await.expect(200, None);
    }

    async fn only_the_account_that_asked_can_confirm(db: Db) {
        let app = TestApp::spawn(db).await;
        let jane = app.verified_user(OLD).await;
        let bob = app.verified_user("bob@example.com").await;
        request_change(&app, bob["access"].as_str(), json!({"new_email": NEW, "password": PASSWORD}))
            .await
            .expect(202, None);
        let code = app.mail.latest_code(NEW);

        confirm(&app, jane["access"].as_str(), &code).await.expect(400, Some("invalid_otp"));

        let confirmed = confirm(&app, bob["access"].as_str(), &code).await;
        confirmed.expect(200, None);
        assert_eq!(confirmed.body["user"]["id"], bob["user"]["id"]);
        assert_eq!(app.get("/auth/me", jane["access"].as_str()).await.body["email"], OLD);
    }
}
