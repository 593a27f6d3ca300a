//! Forgotten passwords (§4 "Password reset", §6).

use serde_json::json;

use crate::helpers::{Db, PASSWORD, TestApp};

const NEW_PASSWORD: &str = "a brand new secret";

db_tests! {
    async fn a_reset_changes_the_password_and_ends_every_session(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;

        let forgot = app.post("/auth/forgot-password", json!({"email": "jane@example.com"})).await;
        forgot.expect(200, None);
        assert!(forgot.body["message"].is_string());
        let mail = app.mail.to("jane@example.com").pop().unwrap();
        assert!(mail.subject().contains("Reset"));
        let code = mail.code().unwrap();

        let checked = app.post("/auth/verify-password-reset-otp", json!({"email": "jane@example.com", "otp": code})).await;
        checked.expect(200, None);
        assert_eq!(checked.body["verified"], true);

        let reset = app
            .post("/auth/reset-password", json!({"email": "jane@example.com", "otp": code,
                "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD}))
            .await;
        reset.expect(200, None);
        assert_eq!(reset.body["success"], true);

        assert!(app.mail.to("jane@example.com").last().unwrap().subject().contains("changed"));
        app.login("jane@example.com", PASSWORD).await.expect(401, Some("invalid_credentials"));
        app.login("jane@example.com", NEW_PASSWORD).await.expect(200, None);
        app.post("/auth/token/refresh", json!({"refresh": signed_in["refresh"]}))
            .await
            .expect(401, Some("invalid_refresh_token"));
        // The code is used up.
        app.post("/auth/reset-password", json!({"email": "jane@example.com", "otp": code,
                "new_password": "yet another secret", "confirm_password": "yet another secret"}))
            .await
            .expect(400, Some("invalid_otp"));
    }

    async fn forgot_password_looks_alike_for_unknown_addresses(db: Db) {
        let app = TestApp::spawn(db).await;
        app.verified_user("jane@example.com").await;

        let known = app.post("/auth/forgot-password", json!({"email": "jane@example.com"})).await;
        let unknown = app.post("/auth/forgot-password", json!({"email": "ghost@example.com"})).await;

        known.expect(200, None);
        unknown.expect(200, None);
        assert_eq!(known.body, unknown.body);
        assert!(app.mail.to("ghost@example.com").is_empty());
        for path in ["/auth/forgot-password", "/auth/resend-password-reset-otp"] {
            for email in ["jane@example.com", "ghost@example.com"] {
                let again = app.post(path, json!({"email": email})).await;
                again.expect(429, Some("resend_too_soon"));
                assert!(again.body["retry_after"].as_u64().is_some_and(|s| s > 0));
                assert!(again.header("retry-after").is_some());
            }
        }
    }

    async fn resending_the_reset_code_voids_the_old_one(db: Db) {
        let app = TestApp::spawn(db).await;
        app.verified_user("jane@example.com").await;
        app.post("/auth/forgot-password", json!({"email": "jane@example.com"})).await.expect(200, None);
        let first = app.mail.latest_code("jane@example.com");
        app.pass_cooldown();

        app.post("/auth/resend-password-reset-otp", json!({"email": "jane@example.com"})).await.expect(200, None);

        let second = app.mail.latest_code("jane@example.com");
        if first != second {
            app.post("/auth/verify-password-reset-otp", json!({"email": "jane@example.com", "otp": first}))
                .await
                .expect(400, Some("invalid_otp"));
        }
        app.post("/auth/verify-password-reset-otp", json!({"email": "jane@example.com", "otp": second}))
            .await
            .expect(200, None);
    }

    async fn a_bad_new_password_keeps_the_code(db: Db) {
        let app = TestApp::spawn(db).await;
        app.verified_user("jane@example.com").await;
        app.post("/auth/forgot-password", json!({"email": "jane@example.com"})).await.expect(200, None);
        let code = app.mail.latest_code("jane@example.com");

        let weak = app
            .post("/auth/reset-password", json!({"email": "jane@example.com", "otp": code,
                "new_password": "12345678", "confirm_password": "12345678"}))
            .await;
        let mismatch = app
            .post("/auth/reset-password", json!({"email": "jane@example.com", "otp": code,
                "new_password": NEW_PASSWORD, "confirm_password": "something else"}))
            .await;

        weak.expect(400, Some("validation_failed"));
        assert!(!weak.field_problems("new_password").is_empty());
        mismatch.expect(400, Some("validation_failed"));
        assert!(!mismatch.field_problems("confirm_password").is_empty());
        app.login("jane@example.com", PASSWORD).await.expect(200, None);
        app.post("/auth/reset-password", json!({"email": "jane@example.com", "otp": code,
                "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD}))
            .await
            .expect(200, None);
    }

    async fn wrong_reset_codes_burn_the_code(db: Db) {
        let app = TestApp::spawn_with(db, |config| config.otp_max_attempts = 2).await;
        app.verified_user("jane@example.com").await;
        app.post("/auth/forgot-password", json!({"email": "jane@example.com"})).await.expect(200, None);
        let code = app.mail.latest_code("jane@example.com");
        let wrong = if code == "111111" { "222222" } else { "111111" };

        app.post("/auth/verify-password-reset-otp", json!({"email": "jane@example.com", "otp": wrong}))
            .await
            .expect(400, Some("invalid_otp"));
        app.post("/auth/reset-password", json!({"email": "jane@example.com", "otp": wrong,
                "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD}))
            .await
            .expect(400, Some("invalid_otp"));

        app.post("/auth/reset-password", json!({"email": "jane@example.com", "otp": code,
                "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD}))
            .await
            .expect(400, Some("otp_locked"));
        app.login("jane@example.com", PASSWORD).await.expect(200, None);
    }

    async fn a_reset_proves_the_address_of_an_unverified_account(db: Db) {
        let app = TestApp::spawn(db).await;
        app.register("jane@example.com", PASSWORD).await.expect(201, None);
        app.post("/auth/resend-otp", json!({"email": "jane@example.com", "context": "password_reset"}))
            .await
            .expect(200, None);
        let code = app.mail.latest_code("jane@example.com");

        app.post("/auth/reset-password", json!({"email": "jane@example.com", "otp": code,
                "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD}))
            .await
            .expect(200, None);

        let login = app.login("jane@example.com", NEW_PASSWORD).await;
        login.expect(200, None);
        assert_eq!(login.body["user"]["is_verified"], true);
    }
}
