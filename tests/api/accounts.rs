//! Accounts over their life (§10): usernames, sign-in by username, metadata and the profile
//! schema, restoring an account pending deletion.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Db, PASSWORD, TestApp};

/// A mentoring platform's profile survey.
const SURVEY: &str = r#"{
  "type": "object",
  "properties": {
    "department": {"type": "string", "maxLength": 100},
    "year": {"type": "integer", "minimum": 1, "maximum": 8},
    "interests": {"type": "array", "items": {"type": "string"}, "maxItems": 10}
  },
  "required": ["department", "year"],
  "additionalProperties": false
}"#;

async fn register_named(app: &TestApp, email: &str, username: &str) -> crate::helpers::Reply {
    app.post(
        "/auth/register",
        json!({"email": email, "password": PASSWORD, "password2": PASSWORD, "username": username}),
    )
    .await
}

db_tests! {
    async fn usernames_are_kept_as_written_and_unique_without_regard_to_case(db: Db) {
        let app = TestApp::spawn(db).await;

        let jane = register_named(&app, "jane@example.com", "Jane.Doe").await;
        jane.expect(201, None);
        assert_eq!(jane.body["user"]["username"], "Jane.Doe");

        register_named(&app, "other@example.com", "jane.doe").await.expect(409, Some("username_taken"));
        for (name, problem) in [("ab", "letters"), ("_jane", "letters"), ("admin", "reserved"), ("Support", "reserved")] {
            let refused = register_named(&app, "other@example.com", name).await;
            refused.expect(400, Some("validation_failed"));
            assert!(refused.field_problems("username")[0].contains(problem), "{name}: {}", refused.text);
        }
        assert_eq!(app.count("users").await, 1, "refused registrations store nothing");
    }

    async fn sign_in_by_username_or_address_answers_alike_when_wrong(db: Db) {
        let app = TestApp::spawn(db).await;
        register_named(&app, "jane@example.com", "Jane.Doe").await.expect(201, None);
        let code = app.mail.latest_code("jane@example.com");
        app.post("/auth/verify-otp", json!({"email": "jane@example.com", "otp": code})).await.expect(200, None);

        for login in ["jane.doe", "JANE.DOE", "jane@example.com", "Jane@Example.com"] {
            let reply = app.post("/auth/login", json!({"login": login, "password": PASSWORD})).await;
            reply.expect(200, None);
            assert_eq!(reply.body["user"]["username"], "Jane.Doe");
        }
        let wrong_password = app.post("/auth/login", json!({"login": "jane.doe", "password": "nope nope nope"})).await;
        let unknown_name = app.post("/auth/login", json!({"login": "nobody.here", "password": PASSWORD})).await;
        let unknown_address = app.post("/auth/login", json!({"login": "nobody@example.com", "password": PASSWORD})).await;
        let not_a_name = app.post("/auth/login", json!({"login": "!!", "password": PASSWORD})).await;
        for reply in [&wrong_password, &unknown_name, &unknown_address, &not_a_name] {
            reply.expect(401, Some("invalid_credentials"));
        }
        assert_eq!(wrong_password.text, unknown_name.text);
        app.post("/auth/login", json!({"password": PASSWORD})).await.expect(400, Some("validation_failed"));
    }

    async fn username_availability_says_why_not(db: Db) {
        let app = TestApp::spawn(db).await;
        register_named(&app, "jane@example.com", "jane.doe").await.expect(201, None);

        for (name, available, reason) in [
            ("Jane.Doe", false, json!("taken")),
            ("root", false, json!("reserved")),
            ("a b", false, json!("invalid")),
            ("mentor.42", true, json!(null)),
        ] {
            let reply = app.get(&format!("/auth/username-available?username={}", name.replace(' ', "%20")), None).await;
            reply.expect(200, None);
            assert_eq!(reply.body, json!({"username": name, "available": available, "reason": reason}));
        }
        app.get("/auth/username-available", None).await.expect(400, Some("validation_failed"));
    }

    async fn username_lookups_have_their_own_ip_limit(db: Db) {
        let app = TestApp::spawn_with(db, |config| {
            config.limits.lookup_ip = Some(authgate::config::Limit { count: 3, window: std::time::Duration::from_secs(60) });
        })
        .await;
        for _ in 0..3 {
            app.get("/auth/username-available?username=someone", None).await.expect(200, None);
        }
        let refused = app.get("/auth/username-available?username=someone", None).await;
        refused.expect(429, Some("rate_limited"));
        assert!(refused.header("retry-after").is_some());
    }

    async fn usernames_can_be_required_or_turned_off(db: Db) {
        let required = TestApp::spawn_with(db.clone(), |config| config.usernames = authgate::config::Usernames::Required).await;
        let missing = required.register("jane@example.com", PASSWORD).await;
        missing.expect(400, Some("validation_failed"));
        assert!(!missing.field_problems("username").is_empty());

        let off = TestApp::spawn_with(db, |config| config.usernames = authgate::config::Usernames::Off).await;
        let refused = register_named(&off, "jane@example.com", "jane.doe").await;
        refused.expect(400, Some("validation_failed"));
        assert!(!refused.field_problems("username").is_empty());
        off.register("jane@example.com", PASSWORD).await.expect(201, None);
    }

    async fn a_user_changes_their_username(db: Db) {
        let app = TestApp::spawn(db).await;
        let jane = app.verified_user("jane@example.com").await;
        register_named(&app, "bob@example.com", "bob").await.expect(201, None);
        let token = jane["access"].as_str();

        let set = app.request(Method::PATCH, "/auth/me", token, Some(json!({"username": "JaneD"}))).await;
        set.expect(200, None);
        assert_eq!(set.body["username"], "JaneD");
        app.request(Method::PATCH, "/auth/me", token, Some(json!({"username": "BOB"})))
            .await
            .expect(409, Some("username_taken"));
        let cleared = app.request(Method::PATCH, "/auth/me", token, Some(json!({"username": null}))).await;
        cleared.expect(200, None);
        assert_eq!(cleared.body["username"], json!(null));
    }

    async fn metadata_merges_key_by_key_against_the_profile_schema(db: Db) {
        let schema = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(schema.path(), SURVEY).unwrap();
        let path = schema.path().to_path_buf();
        let app = TestApp::spawn_with(db, move |config| config.profile_schema = Some(path)).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let token = signed_in["access"].as_str();
        assert_eq!(signed_in["user"]["metadata"], json!({}));
        assert_eq!(signed_in["user"]["profile_complete"], false, "the survey's required keys are missing");

        // A survey filled in over several requests: required keys are not demanded per request.
        let first = app.request(Method::PATCH, "/auth/me", token, Some(json!({"metadata": {"department": "Physics"}}))).await;
        first.expect(200, None);
        assert_eq!(first.body["metadata"], json!({"department": "Physics"}));
        assert_eq!(first.body["profile_complete"], false);
        let second = app
            .request(Method::PATCH, "/auth/me", token, Some(json!({"metadata": {"year": 2, "interests": ["optics"]}})))
            .await;
        second.expect(200, None);
        assert_eq!(second.body["metadata"], json!({"department": "Physics", "year": 2, "interests": ["optics"]}));
        assert_eq!(second.body["profile_complete"], true);

        // null removes a key.
        let removed = app.request(Method::PATCH, "/auth/me", token, Some(json!({"metadata": {"interests": null}}))).await;
        assert_eq!(removed.body["metadata"], json!({"department": "Physics", "year": 2}));

        // Schema failures name the key, and nothing is stored.
        let invalid = app
            .request(Method::PATCH, "/auth/me", token, Some(json!({"metadata": {"year": "second", "hobby": "chess"}})))
            .await;
        invalid.expect(400, Some("validation_failed"));
        assert!(!invalid.field_problems("metadata.year").is_empty(), "{}", invalid.text);
        assert!(!invalid.field_problems("metadata.hobby").is_empty(), "{}", invalid.text);
        let huge = app
            .request(Method::PATCH, "/auth/me", token, Some(json!({"metadata": {"department": "x".repeat(17_000)}})))
            .await;
        huge.expect(400, Some("validation_failed"));
        app.request(Method::PATCH, "/auth/me", token, Some(json!({"metadata": [1, 2]})))
            .await
            .expect(400, Some("validation_failed"));
        app.request(Method::PATCH, "/auth/me", token, Some(json!({"app_metadata": {"plan": "pro"}})))
            .await
            .expect(400, Some("validation_failed"));
        let me = app.get("/auth/me", token).await;
        assert_eq!(me.body["metadata"], json!({"department": "Physics", "year": 2}));
        assert_eq!(me.body["app_metadata"], json!({}));
    }

    async fn an_unusable_profile_schema_stops_start_up_naming_the_variable(db: Db) {
        let scratch = tempfile::tempdir().unwrap();
        let url = db.fresh_url(&scratch).await;
        let schema = scratch.path().join("schema.json");
        std::fs::write(&schema, r#"{"type": 5}"#).unwrap();
        let mut config = authgate::config::Config::from_lookup(|name| match name {
            "DATABASE_URL" => Some(url.clone()),
            _ => None,
        })
        .unwrap();
        config.profile_schema = Some(schema);
        config.metrics_listen = None;
        let err = authgate::app::AppState::build(config, std::sync::Arc::new(authgate::clock::SystemClock))
            .await
            .err()
            .expect("start-up refuses the schema");
        assert!(err.to_string().contains("AUTHGATE_PROFILE_SCHEMA"), "{err}");
    }

    async fn restoring_an_account_pending_deletion(db: Db) {
        let app = TestApp::spawn(db).await;
        app.verified_user("jane@example.com").await;
        app.execute("UPDATE users SET status = 'pending_deletion', is_active = false").await;
        app.execute(&format!(
            "UPDATE users SET deletion_scheduled_for = '{}'",
            (chrono::Utc::now() + chrono::TimeDelta::days(7)).to_rfc3339()
        ))
        .await;

        let refused = app.login("jane@example.com", PASSWORD).await;
        refused.expect(403, Some("account_pending_deletion"));
        assert_eq!(refused.body["can_restore"], true);
        assert!(refused.body["deletion_scheduled_for"].is_string());
        app.login("jane@example.com", "wrong password").await.expect(401, Some("invalid_credentials"));
        app.post("/auth/restore", json!({"login": "jane@example.com", "password": "wrong password"}))
            .await
            .expect(401, Some("invalid_credentials"));

        let restored = app.post("/auth/restore", json!({"login": "jane@example.com", "password": PASSWORD})).await;
        restored.expect(200, None);
        assert_eq!(restored.body["user"]["status"], "active");
        assert_eq!(restored.body["user"]["deletion_scheduled_for"], json!(null));
        assert!(app.mail.to("jane@example.com").iter().any(|mail| mail.subject().contains("restored")));
        app.get("/auth/me", restored.body["access"].as_str()).await.expect(200, None);
        app.post("/auth/restore", json!({"email": "jane@example.com", "password": PASSWORD}))
            .await
            .expect(409, Some("not_pending_deletion"));
    }
}
