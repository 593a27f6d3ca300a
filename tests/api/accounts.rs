//! Accounts over their life (§10): usernames, sign-in by username, metadata and the profile
//! schema, restoring an account pending deletion.

use std::time::{Duration, Instant};

use reqwest::Method;
use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::{
    deletion::request_deletion,
    helpers::{Db, PASSWORD, Reply, TestApp},
};

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

/// How long an instance may take to hear a change committed elsewhere: milliseconds on
/// PostgreSQL's announcements, far less than this.
const HEARING_TIME: Duration = Duration::from_secs(5);

/// Asks `GET /auth/me` with `token` until the answer satisfies `heard`, failing after
/// [`HEARING_TIME`]: the answer once it does.
async fn me_until(app: &TestApp, token: &str, heard: impl Fn(&Reply) -> bool) -> Reply {
    let started = Instant::now();
    loop {
        let reply = app.get("/auth/me", Some(token)).await;
        if heard(&reply) {
            return reply;
        }
        assert!(
            started.elapsed() < HEARING_TIME,
            "the change was not heard: {} {}",
            reply.status,
            reply.text
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn first_name_is(name: &'static str) -> impl Fn(&Reply) -> bool {
    move |reply| reply.status == 200 && reply.body["first_name"] == name
}

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

    async fn an_instance_hears_what_another_changed_in_an_account_it_read(db: Db) {
        let first = TestApp::spawn(db).await;
        let second = first.spawn_alongside(|_| {}).await;
        let signed_in = first.verified_user("jane@example.com").await;
        let token = signed_in["access"].as_str().unwrap();
        // The second instance reads the account (and, on PostgreSQL, keeps it).
        me_until(&second, token, |reply| reply.status == 200).await;

        first
            .request(Method::PATCH, "/auth/me", Some(token), Some(json!({"first_name": "Jane"})))
            .await
            .expect(200, None);
        me_until(&second, token, first_name_is("Jane")).await;

        request_deletion(&first, Some(token)).await.expect(202, None);
        me_until(&second, token, |reply| reply.status == 401).await;
    }

    async fn the_app_hears_an_account_changed_behind_its_back(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let token = signed_in["access"].as_str().unwrap();
        app.get("/auth/me", Some(token)).await.expect(200, None);

        // Not `app.execute`, which tells the app: an operator's SQL does not.
        let behind_its_back = |sql: &'static str| async {
            app.state.db.execute_unprepared(sql).await.expect("statement runs");
        };
        behind_its_back("UPDATE users SET first_name = 'Jane'").await;
        me_until(&app, token, first_name_is("Jane")).await;
        behind_its_back("UPDATE profiles SET bio = 'Astronomer'").await;
        let reply = me_until(&app, token, |reply| reply.body["profile"]["bio"] == "Astronomer").await;
        reply.expect(200, None);
        behind_its_back("UPDATE users SET status = 'disabled', is_active = false").await;
        me_until(&app, token, |reply| reply.status == 401).await;
    }

    async fn an_account_change_made_by_a_request_is_seen_by_the_next_one_at_once(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let token = signed_in["access"].as_str().unwrap();
        for name in ["Jane", "Janet", "Jo"] {
            app.get("/auth/me", Some(token)).await.expect(200, None);
            app.request(Method::PATCH, "/auth/me", Some(token), Some(json!({"first_name": name})))
                .await
                .expect(200, None);
            let me = app.get("/auth/me", Some(token)).await;
            assert_eq!(me.body["first_name"], name, "{}", me.text);
        }
        app.get("/auth/me", Some(token)).await.expect(200, None);
        request_deletion(&app, Some(token)).await.expect(202, None);
        app.get("/auth/me", Some(token)).await.expect(401, Some("unauthorized"));
    }
}

/// The connection that hears PostgreSQL's announcements drops: a change made meanwhile is not
/// missed, and once the app listens again it keeps and hears as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_change_is_missed_while_the_announcements_are_lost() {
    let Some(db) = Db::postgres() else {
        eprintln!("TEST_DATABASE_URL is not set: PostgreSQL-only test skipped");
        return;
    };
    let app = TestApp::spawn(db).await;
    let signed_in = app.verified_user("jane@example.com").await;
    let token = signed_in["access"].as_str().unwrap();
    let listeners = "SELECT pid::text FROM pg_stat_activity \
                     WHERE datname = current_database() AND query LIKE 'LISTEN%'";
    let listening = async || {
        let started = Instant::now();
        while app.query_strings(listeners).await.len() != 1 {
            assert!(started.elapsed() < HEARING_TIME, "the app does not listen");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    listening().await;
    app.get("/auth/me", Some(token)).await.expect(200, None);

    let cut = app
        .query_strings(&format!(
            "SELECT pg_terminate_backend(pid::int)::text FROM ({listeners}) AS listening(pid)"
        ))
        .await;
    assert_eq!(cut, ["true"]);
    app.state
        .db
        .execute_unprepared("UPDATE users SET first_name = 'Jane'")
        .await
        .unwrap();
    me_until(&app, token, first_name_is("Jane")).await;

    // Listening again.
    listening().await;
    app.get("/auth/me", Some(token)).await.expect(200, None);
    app.state
        .db
        .execute_unprepared("UPDATE users SET first_name = 'Janet'")
        .await
        .unwrap();
    me_until(&app, token, first_name_is("Janet")).await;
}
