//! Sessions a user controls (§4 "The signed-in user", §5): listing, ending, signing out
//! everywhere, changing the password, and refresh races across connections and instances.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Db, PASSWORD, TestApp};

fn access(signed_in: &Value) -> Option<&str> {
    signed_in["access"].as_str()
}

db_tests! {
    async fn sessions_list_each_sign_in_and_mark_the_current_one(db: Db) {
        let app = TestApp::spawn(db).await;
        let phone = app.verified_user("jane@example.com").await;
        let laptop = app
            .client
            .post(format!("{}/auth/login", app.base))
            .header("user-agent", "Laptop/1.0")
            .json(&json!({"email": "jane@example.com", "password": PASSWORD}))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();

        let listed = app.get("/auth/sessions", access(&laptop)).await;

        listed.expect(200, None);
        let sessions = listed.body.as_array().unwrap();
        assert_eq!(sessions.len(), 2);
        let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
        assert_eq!(current.len(), 1);
        assert_eq!(current[0]["user_agent"], "Laptop/1.0");
        assert_eq!(current[0]["ip"], "127.0.0.1");
        for session in sessions {
            for field in ["id", "created_at", "last_used_at", "expires_at"] {
                assert!(session[field].is_string(), "{field}");
            }
        }
        // Another user's list is their own.
        let other = app.verified_user("joe@example.com").await;
        assert_eq!(app.get("/auth/sessions", access(&other)).await.body.as_array().unwrap().len(), 1);
        assert!(phone["refresh"].is_string());
    }

    async fn ending_a_session_stops_its_refresh_token(db: Db) {
        let app = TestApp::spawn(db).await;
        let phone = app.verified_user("jane@example.com").await;
        let laptop = app.login("jane@example.com", PASSWORD).await.body;
        let sessions = app.get("/auth/sessions", access(&laptop)).await.body;
        let phone_session = sessions.as_array().unwrap().iter().find(|s| s["current"] == false).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();

        let ended = app.request(Method::DELETE, &format!("/auth/sessions/{phone_session}"), access(&laptop), None).await;

        assert_eq!(ended.status, 204, "{}", ended.text);
        app.post("/auth/token/refresh", json!({"refresh": phone["refresh"]}))
            .await
            .expect(401, Some("invalid_refresh_token"));
        app.post("/auth/token/refresh", json!({"refresh": laptop["refresh"]})).await.expect(200, None);
        assert_eq!(app.get("/auth/sessions", access(&laptop)).await.body.as_array().unwrap().len(), 1);
        // Gone now, never existed, not an id, or someone else's: all 404.
        let intruder = app.verified_user("mallory@example.com").await;
        let laptop_session = app.get("/auth/sessions", access(&laptop)).await.body[0]["id"].as_str().unwrap().to_string();
        for (path, token) in [
            (format!("/auth/sessions/{phone_session}"), access(&laptop)),
            (format!("/auth/sessions/{}", uuid::Uuid::new_v4()), access(&laptop)),
            ("/auth/sessions/not-a-uuid".to_string(), access(&laptop)),
            (format!("/auth/sessions/{laptop_session}"), access(&intruder)),
        ] {
            app.request(Method::DELETE, &path, token, None).await.expect(404, Some("not_found"));
        }
        app.request(Method::DELETE, &format!("/auth/sessions/{laptop_session}"), None, None)
            .await
            .expect(401, Some("unauthorized"));
    }

    async fn logout_all_ends_every_session(db: Db) {
        let app = TestApp::spawn(db).await;
        let phone = app.verified_user("jane@example.com").await;
        let laptop = app.login("jane@example.com", PASSWORD).await.body;

        let reply = app.request(Method::POST, "/auth/logout-all", access(&phone), None).await;

        assert_eq!(reply.status, 204, "{}", reply.text);
        for refresh in [&phone["refresh"], &laptop["refresh"]] {
            app.post("/auth/token/refresh", json!({"refresh": refresh}))
                .await
                .expect(401, Some("invalid_refresh_token"));
        }
        assert_eq!(app.get("/auth/sessions", access(&phone)).await.body, json!([]));
        app.request(Method::POST, "/auth/logout-all", None, None).await.expect(401, Some("unauthorized"));
    }

    async fn changing_the_password_signs_out_everyone_else(db: Db) {
        let app = TestApp::spawn(db).await;
        let phone = app.verified_user("jane@example.com").await;
        let laptop = app.login("jane@example.com", PASSWORD).await.body;
        let new_password = "an entirely new one";

        let changed = app
            .request(Method::POST, "/auth/change-password", access(&laptop), Some(json!({
                "current_password": PASSWORD, "new_password": new_password, "confirm_password": new_password,
            })))
            .await;

        changed.expect(200, None);
        assert_eq!(changed.header("cache-control"), Some("no-store"));
        assert_eq!(changed.body["token_type"], "Bearer");
        app.get("/auth/me", access(&changed.body)).await.expect(200, None);
        app.post("/auth/token/refresh", json!({"refresh": changed.body["refresh"]})).await.expect(200, None);
        for old in [&phone["refresh"], &laptop["refresh"]] {
            app.post("/auth/token/refresh", json!({"refresh": old})).await.expect(401, Some("invalid_refresh_token"));
        }
        app.login("jane@example.com", PASSWORD).await.expect(401, Some("invalid_credentials"));
        app.login("jane@example.com", new_password).await.expect(200, None);
        assert!(app.mail.to("jane@example.com").last().unwrap().subject().contains("changed"));
    }

    async fn changing_the_password_needs_the_current_one_and_a_good_new_one(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let change = |current: &str, new: &str, confirm: &str| {
            json!({"current_password": current, "new_password": new, "confirm_password": confirm})
        };

        let wrong_current = app
            .request(Method::POST, "/auth/change-password", access(&signed_in), Some(change("guess", "fine new secret", "fine new secret")))
            .await;
        let weak = app
            .request(Method::POST, "/auth/change-password", access(&signed_in), Some(change(PASSWORD, "12345678", "12345678")))
            .await;
        let mismatch = app
            .request(Method::POST, "/auth/change-password", access(&signed_in), Some(change(PASSWORD, "fine new secret", "other")))
            .await;
        let anonymous = app
            .request(Method::POST, "/auth/change-password", None, Some(change(PASSWORD, "fine new secret", "fine new secret")))
            .await;

        wrong_current.expect(401, Some("invalid_credentials"));
        weak.expect(400, Some("validation_failed"));
        assert!(!weak.field_problems("new_password").is_empty());
        mismatch.expect(400, Some("validation_failed"));
        assert!(!mismatch.field_problems("confirm_password").is_empty());
        anonymous.expect(401, Some("unauthorized"));
        app.login("jane@example.com", PASSWORD).await.expect(200, None);
        app.post("/auth/token/refresh", json!({"refresh": signed_in["refresh"]})).await.expect(200, None);
    }

    async fn refresh_never_outlives_the_session_max_age(db: Db) {
        let app = TestApp::spawn_with(db, |config| {
            config.refresh_ttl = Duration::from_secs(3600);
            config.session_max_age = Duration::from_secs(3 * 3600);
        })
        .await;
        let mut refresh = app.verified_user("jane@example.com").await["refresh"].clone();

        for hour in 1..=2 {
            app.clock.advance(Duration::from_secs(3000));
            let reply = app.post("/auth/token/refresh", json!({"refresh": refresh})).await;
            reply.expect(200, None);
            if hour == 2 {
                // 6000 s into a 10800 s session: the new token may live 3600 s, not longer.
                assert_eq!(reply.body["refresh_expires_in"], 3600);
            }
            refresh = reply.body["refresh"].clone();
        }
        app.clock.advance(Duration::from_secs(3000));
        let last = app.post("/auth/token/refresh", json!({"refresh": refresh})).await;
        last.expect(200, None);
        assert_eq!(last.body["refresh_expires_in"], 10_800 - 9000, "capped by the session's end");
        app.clock.advance(Duration::from_secs(1800));
        app.post("/auth/token/refresh", json!({"refresh": last.body["refresh"]}))
            .await
            .expect(401, Some("invalid_refresh_token"));
    }

    async fn racing_refreshes_stay_in_one_session_and_die_together(db: Db) {
        let app = TestApp::spawn(db).await;
        let token = app.verified_user("jane@example.com").await["refresh"].clone();

        let racers = (0..6).map(|_| app.post("/auth/token/refresh", json!({"refresh": token})));
        let replies = futures_util::future::join_all(racers).await;

        let mut sessions = std::collections::HashSet::new();
        for reply in &replies {
            reply.expect(200, None);
            sessions.insert(crate::tokens::claims_of(reply.body["access"].as_str().unwrap())["sid"].to_string());
        }
        assert_eq!(sessions.len(), 1, "every racer got a pair for the same session");
        // A replay of the raced token after the interval is theft: the session and every token
        // minted in the race die with it.
        app.clock.advance(Duration::from_secs(11));
        app.post("/auth/token/refresh", json!({"refresh": token})).await.expect(401, Some("refresh_token_reused"));
        for reply in replies {
            app.post("/auth/token/refresh", json!({"refresh": reply.body["refresh"]}))
                .await
                .expect(401, Some("invalid_refresh_token"));
        }
    }

    async fn two_instances_share_sessions_and_reuse_detection(db: Db) {
        let first = TestApp::spawn(db).await;
        let second = first.spawn_alongside(|_| {}).await;
        let signed_in = first.verified_user("jane@example.com").await;
        let token = signed_in["refresh"].clone();

        // A token from one instance works on the other.
        second.get("/auth/me", access(&signed_in)).await.expect(200, None);
        let (a, b) = tokio::join!(
            first.post("/auth/token/refresh", json!({"refresh": token})),
            second.post("/auth/token/refresh", json!({"refresh": token})),
        );
        a.expect(200, None);
        b.expect(200, None);

        second.clock.advance(Duration::from_secs(11));
        second.post("/auth/token/refresh", json!({"refresh": token})).await.expect(401, Some("refresh_token_reused"));
        first.post("/auth/token/refresh", json!({"refresh": a.body["refresh"]}))
            .await
            .expect(401, Some("invalid_refresh_token"));
    }
}
