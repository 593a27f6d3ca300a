//! The signed-in user's record (§3, §4 "The signed-in user").

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Db, TestApp};

db_tests! {
    async fn me_shows_the_user_object(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;

        let reply = app.get("/auth/me", signed_in["access"].as_str()).await;

        reply.expect(200, None);
        let keys: Vec<&String> = reply.body.as_object().unwrap().keys().collect();
        for key in ["id", "email", "first_name", "last_name", "phone_number", "role", "is_verified", "is_active",
            "profile", "profile_complete", "created_at", "updated_at", "last_login_at"]
        {
            assert!(keys.iter().any(|k| *k == key), "{key} missing");
        }
        assert_eq!(reply.body, signed_in["user"]);
    }

    async fn patch_and_put_change_only_what_is_sent(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let token = signed_in["access"].as_str();

        let patched = app
            .request(Method::PATCH, "/auth/me", token, Some(json!({
                "first_name": "Zoë", "last_name": "李小龍", "phone_number": "+447911123456",
                "profile": {"bio": "Rust, mountains.", "avatar_url": "https://cdn.example.com/z.png", "date_of_birth": "1990-04-01"},
            })))
            .await;

        patched.expect(200, None);
        assert_eq!(patched.body["first_name"], "Zoë");
        assert_eq!(patched.body["last_name"], "李小龍");
        assert_eq!(patched.body["profile"]["date_of_birth"], "1990-04-01");
        assert_eq!(patched.body["profile_complete"], true);

        let put = app
            .request(Method::PUT, "/auth/me", token, Some(json!({"last_name": null, "profile": {"avatar_url": null}})))
            .await;
        put.expect(200, None);
        assert_eq!(put.body["first_name"], "Zoë", "unsent fields stay");
        assert_eq!(put.body["last_name"], "");
        assert_eq!(put.body["profile_complete"], false);
        assert_eq!(put.body["profile"]["avatar_url"], json!(null));
        assert_eq!(put.body["profile"]["bio"], "Rust, mountains.");
        assert_eq!(app.get("/auth/me", token).await.body, put.body);
    }

    async fn read_only_and_invalid_fields_are_refused_by_name(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let token = signed_in["access"].as_str();

        let read_only = app
            .request(Method::PATCH, "/auth/me", token, Some(json!({"email": "evil@example.com", "role": "admin",
                "is_verified": false, "first_name": "Mallory"})))
            .await;
        read_only.expect(400, Some("validation_failed"));
        for field in ["email", "role", "is_verified"] {
            assert!(!read_only.field_problems(field).is_empty(), "{field}: {}", read_only.text);
        }

        let invalid = app
            .request(Method::PATCH, "/auth/me", token, Some(json!({"phone_number": "call me",
                "first_name": "Ad\u{200b}min", "profile": {"avatar_url": "javascript:alert(1)", "date_of_birth": "1990-02-30"}})))
            .await;
        invalid.expect(400, Some("validation_failed"));
        for field in ["phone_number", "first_name", "avatar_url", "profile.date_of_birth"] {
            assert!(!invalid.field_problems(field).is_empty(), "{field}: {}", invalid.text);
        }

        let wrong_type = app.request(Method::PATCH, "/auth/me", token, Some(json!({"first_name": 42}))).await;
        wrong_type.expect(400, Some("validation_failed"));
        assert!(!wrong_type.field_problems("first_name").is_empty());

        // Nothing of the refused requests was stored.
        assert_eq!(app.get("/auth/me", token).await.body, signed_in["user"]);
    }

    async fn picture_urls_must_be_absolute_web_urls(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let token = signed_in["access"].as_str();

        for bad in ["javascript:alert(1)", "https://x/\"><script>", "/avatars/me.png", "data:image/png;base64,AAAA"] {
            let reply = app.request(Method::PATCH, "/auth/me", token, Some(json!({"profile": {"avatar_url": bad}}))).await;
            reply.expect(400, Some("validation_failed"));
            assert!(!reply.field_problems("avatar_url").is_empty(), "{bad}: {}", reply.text);
        }
        let too_long = format!("https://cdn.example.com/{}", "a".repeat(2048));
        app.request(Method::PATCH, "/auth/me", token, Some(json!({"profile": {"avatar_url": too_long}})))
            .await
            .expect(400, Some("validation_failed"));

        let good = app
            .request(Method::PATCH, "/auth/me", token, Some(json!({"profile": {"avatar_url": "https://cdn.example.com/jane.png"}})))
            .await;
        good.expect(200, None);
        assert_eq!(good.body["profile"]["avatar_url"], "https://cdn.example.com/jane.png");
    }

    async fn a_missing_profile_row_is_recreated(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        app.execute("DELETE FROM profiles").await;

        let patched = app
            .request(Method::PATCH, "/auth/me", signed_in["access"].as_str(), Some(json!({"profile": {"bio": "back"}})))
            .await;

        patched.expect(200, None);
        assert_eq!(patched.body["profile"]["bio"], "back");
        assert_eq!(app.count("profiles").await, 1);
    }

    async fn me_requires_a_token(db: Db) {
        let app = TestApp::spawn(db).await;

        app.get("/auth/me", None).await.expect(401, Some("unauthorized"));
        app.request(Method::PATCH, "/auth/me", None, Some(json!({"first_name": "X"})))
            .await
            .expect(401, Some("unauthorized"));
    }
}
