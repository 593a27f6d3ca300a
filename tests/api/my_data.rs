//! The signed-in account's own data (§10 "Self-service": `GET /auth/me/export` and
//! `GET /auth/me/events`).

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Db, PASSWORD, TestApp};

const EMAIL: &str = "jane@example.com";

/// The `event` names of a list of events, in order.
fn names(events: &Value) -> Vec<&str> {
    events
        .as_array()
        .expect("a list of events")
        .iter()
        .map(|event| event["event"].as_str().expect("an event name"))
        .collect()
}

#[test]
fn the_export_is_described_in_the_document() {
    let document: Value = serde_json::from_str(&authgate::api::openapi().spec()).unwrap();
    let export = &document["paths"]["/auth/me/export"]["get"]["responses"]["200"];
    assert!(
        export["headers"]
            .as_object()
            .unwrap()
            .keys()
            .any(|name| name.eq_ignore_ascii_case("content-disposition"))
    );
    let schema = &document["components"]["schemas"]["DataExport"]["properties"];
    for key in [
        "exported_at",
        "user",
        "sessions",
        "trusted_devices",
        "events",
    ] {
        assert!(schema[key].is_object(), "DataExport has no {key}");
    }
    let event = &document["components"]["schemas"]["ExportedEvent"];
    assert!(event.to_string().contains("details"));
}

db_tests! {
    async fn the_export_holds_the_account_and_never_a_secret(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user(EMAIL).await;
        let token = signed_in["access"].as_str();
        app.request(Method::PATCH, "/auth/me", token, Some(json!({"metadata": {"department": "Physics"}})))
            .await
            .expect(200, None);
        app.clock.advance(Duration::from_secs(1));
        let elsewhere = app.login(EMAIL, PASSWORD).await.body;
        // Codes waiting in the database: a reset code and an address change.
        app.post("/auth/forgot-password", json!({"email": EMAIL})).await.expect(200, None);
        let reset_code = app.mail.latest_code(EMAIL);
        app.request(Method::POST, "/auth/me/email", token, Some(json!({"new_email": "jane@example.org", "password": PASSWORD})))
            .await
            .expect(202, None);
        let change_code = app.mail.latest_code("jane@example.org");
        let id = signed_in["user"]["id"].as_str().unwrap();

        let export = app.get("/auth/me/export", token).await;

        export.expect(200, None);
        assert_eq!(
            export.header("content-disposition"),
            Some(format!("attachment; filename=\"authgate-export-{id}.json\"").as_str())
        );
        assert!(export.header("content-type").is_some_and(|t| t.starts_with("application/json")));
        assert_eq!(export.header("cache-control"), Some("no-store"));
        let document = &export.body;
        assert_eq!(document["user"], app.get("/auth/me", token).await.body);
        assert_eq!(document["user"]["metadata"], json!({"department": "Physics"}));
        assert_eq!(document["user"]["app_metadata"], json!({}));
        assert!(document["user"]["profile"].is_object());
        assert!(document["exported_at"].is_string());
        let sessions = document["sessions"].as_array().unwrap();
        assert_eq!(sessions.len(), 2);
        assert_eq!(sessions.iter().filter(|session| session["current"] == true).count(), 1);
        assert_eq!(document["trusted_devices"], json!([]));
        let events = document["events"].as_array().unwrap();
        assert_eq!(
            names(&document["events"]),
            ["email_change_requested", "login", "account_updated", "verification", "registration"]
        );
        for event in events {
            for key in ["id", "at", "event", "ip", "user_agent"] {
                assert!(event.get(key).is_some(), "{key} missing from {event}");
            }
            assert!(event["details"].is_object(), "{event}");
        }
        assert_eq!(events[2]["changes"]["metadata"]["after"], json!({"department": "Physics"}));
        assert_eq!(events[0]["details"]["new_email"], "jane@example.org");

        // No secret anywhere in the text: hashes, tokens, codes, the password.
        let mut secrets: Vec<String> = Vec::new();
        for query in [
            "SELECT password_hash FROM users",
            "SELECT token_hash FROM refresh_tokens",
            "SELECT code_hash FROM one_time_codes WHERE code_hash IS NOT NULL",
        ] {
            let found = app.query_strings(query).await;
            assert!(!found.is_empty(), "{query} found nothing to look for");
            secrets.extend(found);
        }
        for token in [&signed_in["access"], &signed_in["refresh"], &elsewhere["access"], &elsewhere["refresh"]] {
            secrets.push(token.as_str().unwrap().to_string());
        }
        // Codes as JSON strings or numbers: six digits alone also occur inside times and ids.
        for code in [&reset_code, &change_code] {
            secrets.push(format!("\"{code}\""));
            secrets.push(format!(":{code}"));
        }
        secrets.push(PASSWORD.to_string());
        for secret in &secrets {
            assert!(!export.text.contains(secret.as_str()), "the export carries {secret}");
        }
        assert!(!export.text.contains("argon2"));
    }

    async fn the_export_is_only_for_the_signed_in(db: Db) {
        let app = TestApp::spawn(db).await;
        let jane = app.verified_user(EMAIL).await;
        app.verified_user("bob@example.com").await;

        app.get("/auth/me/export", None).await.expect(401, Some("unauthorized"));
        app.get("/auth/me/events", None).await.expect(401, Some("unauthorized"));
        app.get("/auth/me/export", Some("not.a.token")).await.expect(401, Some("unauthorized"));

        // Bob's events are not in Jane's export.
        let export = app.get("/auth/me/export", jane["access"].as_str()).await;
        export.expect(200, None);
        assert_eq!(names(&export.body["events"]), ["verification", "registration"]);
        assert!(!export.text.contains("bob@example.com"));
    }

    async fn events_are_the_accounts_own_newest_first(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user(EMAIL).await;
        let token = signed_in["access"].as_str();
        app.clock.advance(Duration::from_secs(1));
        app.login(EMAIL, PASSWORD).await.expect(200, None);
        app.clock.advance(Duration::from_secs(1));
        app.login(EMAIL, "not the password").await.expect(401, Some("invalid_credentials"));
        app.verified_user("bob@example.com").await;
        app.login("bob@example.com", "not the password").await.expect(401, None);

        let events = app.get("/auth/me/events", token).await;

        events.expect(200, None);
        assert_eq!(names(&events.body), ["login_failed", "login", "verification", "registration"]);
        let list = events.body.as_array().unwrap();
        for event in list {
            let mut keys: Vec<&str> = event.as_object().unwrap().keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(keys, ["at", "event", "id", "ip", "user_agent"], "{event}");
            assert_eq!(event["ip"], "127.0.0.1");
        }
        let times: Vec<&str> = list.iter().map(|event| event["at"].as_str().unwrap()).collect();
        assert!(times.windows(2).all(|pair| pair[0] >= pair[1]), "{times:?}");

        let two = app.get("/auth/me/events?limit=2", token).await;
        two.expect(200, None);
        assert_eq!(names(&two.body), ["login_failed", "login"]);
        assert_eq!(names(&app.get("/auth/me/events?limit=1", token).await.body), ["login_failed"]);
        assert_eq!(app.get("/auth/me/events?limit=100", token).await.body, events.body);
    }

    async fn twenty_events_by_default_and_at_most_a_hundred(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user(EMAIL).await;
        let token = signed_in["access"].as_str();
        for _ in 0..25 {
            app.login(EMAIL, "not the password").await.expect(401, None);
        }

        assert_eq!(app.get("/auth/me/events", token).await.body.as_array().unwrap().len(), 20);
        assert_eq!(app.get("/auth/me/events?limit=100", token).await.body.as_array().unwrap().len(), 27);

        for hostile in ["0", "-1", "101", "1000", "abc", "1.5", "", "99999999999999999999", "%00", "1;DROP%20TABLE%20users"] {
            let reply = app.get(&format!("/auth/me/events?limit={hostile}"), token).await;
            reply.expect(400, Some("validation_failed"));
            assert!(!reply.field_problems("limit").is_empty(), "{hostile}: {}", reply.text);
        }
    }
}
