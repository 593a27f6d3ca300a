//! Sign-in (§4 "Login and tokens", §7).

use serde_json::json;

use crate::helpers::{Db, PASSWORD, TestApp};

db_tests! {
    async fn login_returns_the_user_and_a_token_pair(db: Db) {
        let app = TestApp::spawn(db).await;
        app.verified_user("jane@example.com").await;

        let reply = app.login("jane@example.com", PASSWORD).await;

        reply.expect(200, None);
        assert!(reply.body["message"].is_string());
        assert_eq!(reply.body["user"]["email"], "jane@example.com");
        assert!(reply.body["user"]["last_login_at"].is_string());
        assert_eq!(reply.body["token_type"], "Bearer");
        assert_eq!(reply.body["expires_in"], 300);
        assert_eq!(reply.body["refresh_expires_in"], 86_400);
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        let refresh = reply.body["refresh"].as_str().unwrap();
        assert!(refresh.len() >= 43, "at least 256 bits");
        assert!(refresh.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }

    async fn unknown_email_and_wrong_password_answer_alike(db: Db) {
        let app = TestApp::spawn(db).await;
        app.verified_user("jane@example.com").await;

        let wrong_password = app.login("jane@example.com", "not the password").await;
        let unknown_email = app.login("ghost@example.com", PASSWORD).await;

        wrong_password.expect(401, Some("invalid_credentials"));
        unknown_email.expect(401, Some("invalid_credentials"));
        assert_eq!(wrong_password.body, unknown_email.body);
        assert_eq!(wrong_password.header("www-authenticate"), unknown_email.header("www-authenticate"));
    }

    async fn unverified_accounts_are_told_only_after_a_correct_password(db: Db) {
        let app = TestApp::spawn(db).await;
        app.register("jane@example.com", PASSWORD).await.expect(201, None);

        let wrong = app.login("jane@example.com", "not the password").await;
        let right = app.login("jane@example.com", PASSWORD).await;

        wrong.expect(401, Some("invalid_credentials"));
        right.expect(403, Some("email_not_verified"));
        assert_eq!(right.body["can_resend_otp"], true);
    }

    async fn disabled_accounts_cannot_sign_in(db: Db) {
        let app = TestApp::spawn(db).await;
        app.verified_user("jane@example.com").await;
        app.execute("UPDATE users SET status = 'disabled', is_active = false").await;

        app.login("jane@example.com", PASSWORD).await.expect(403, Some("account_disabled"));
        app.login("jane@example.com", "not the password").await.expect(401, Some("invalid_credentials"));
    }

    async fn hashes_with_old_parameters_are_upgraded_on_login(db: Db) {
        let app = TestApp::spawn(db).await;
        app.verified_user("jane@example.com").await;
        let old = authgate::domain::hashing::HashingPool::new(authgate::config::Argon2Params {
            memory_kib: 32,
            iterations: 1,
            lanes: 1,
        })
        .unwrap();
        let old_hash = old.hash(&authgate::domain::password_policy::Password::for_login(PASSWORD.into()).unwrap()).await.unwrap();
        app.execute(&format!("UPDATE users SET password_hash = '{old_hash}'")).await;

        app.login("jane@example.com", PASSWORD).await.expect(200, None);

        let stored = stored_hash(&app).await;
        assert_ne!(stored, old_hash);
        assert!(stored.contains("m=64,t=1,p=1"), "{stored}");
        app.login("jane@example.com", PASSWORD).await.expect(200, None);
    }

    async fn passwords_are_stored_as_argon2id_hashes(db: Db) {
        let app = TestApp::spawn(db).await;
        app.verified_user("jane@example.com").await;

        let stored = stored_hash(&app).await;

        assert!(stored.starts_with("$argon2id$v=19$"), "{stored}");
        assert!(!stored.contains(PASSWORD));
    }

    async fn over_long_passwords_are_refused_without_hashing(db: Db) {
        let app = TestApp::spawn(db).await;
        app.verified_user("jane@example.com").await;

        app.login("jane@example.com", &"p".repeat(5000)).await.expect(401, Some("invalid_credentials"));
        let empty = app.post("/auth/login", json!({"email": "jane@example.com"})).await;
        empty.expect(400, Some("validation_failed"));
        assert_eq!(empty.field_problems("password"), vec!["This field is required."]);
    }
}

async fn stored_hash(app: &TestApp) -> String {
    use sea_orm::EntityTrait;
    authgate::store::users::Entity::find()
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap()
        .password_hash
        .expose()
        .to_string()
}
