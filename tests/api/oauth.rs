//! The OAuth face of the token platform (§4): RFC 8414 metadata in which every field is
//! true, the refresh grant at `/oauth/token` (RFC 6749 §6, §5.2 errors) and revocation at
//! `/oauth/revoke` (RFC 7009).

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Db, Reply, TestApp};

/// A form-encoded POST, as OAuth client libraries send it.
async fn form(app: &TestApp, path: &str, fields: &[(&str, &str)]) -> Reply {
    let response = app
        .client
        .post(format!("{}{path}", app.base))
        .form(fields)
        .send()
        .await
        .unwrap();
    Reply::read(response).await
}

async fn refresh_grant(app: &TestApp, refresh_token: &str) -> Reply {
    form(
        app,
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

/// A 400 carrying `error`, shaped as RFC 6749 §5.2 says (and nothing of the service's own
/// error shape).
fn expect_oauth_error(reply: &Reply, error: &str) {
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.body["error"], error, "{}", reply.text);
    assert!(
        reply.body["error_description"]
            .as_str()
            .is_some_and(|text| !text.is_empty()),
        "{}",
        reply.text
    );
    assert!(reply.body.get("message").is_none(), "{}", reply.text);
}

db_tests! {
    async fn both_metadata_documents_say_only_what_is_true(db: Db) {
        let app = TestApp::spawn(db).await;

        let openid = app.get("/.well-known/openid-configuration", None).await;
        let oauth = app.get("/.well-known/oauth-authorization-server", None).await;
        let jwks = app.get("/.well-known/jwks.json", None).await;

        openid.expect(200, None);
        oauth.expect(200, None);
        assert_eq!(openid.body, oauth.body);
        let metadata = &oauth.body;
        assert_eq!(metadata["issuer"], "http://127.0.0.1:8080");
        assert_eq!(metadata["jwks_uri"], "http://127.0.0.1:8080/.well-known/jwks.json");
        assert_eq!(metadata["token_endpoint"], "http://127.0.0.1:8080/oauth/token");
        assert_eq!(metadata["revocation_endpoint"], "http://127.0.0.1:8080/oauth/revoke");
        assert_eq!(metadata["grant_types_supported"], json!(["refresh_token"]));
        let published: Vec<&Value> = jwks.body["keys"].as_array().unwrap().iter().map(|key| &key["alg"]).collect();
        let advertised: Vec<&Value> = metadata["id_token_signing_alg_values_supported"].as_array().unwrap().iter().collect();
        assert_eq!(advertised, published);
        // Nothing that would send a client to an endpoint or flow the service lacks.
        for absent in ["authorization_endpoint", "userinfo_endpoint", "registration_endpoint", "introspection_endpoint"] {
            assert!(metadata.get(absent).is_none(), "{absent} is advertised: {metadata}");
        }
        // Each advertised endpoint exists and speaks OAuth.
        expect_oauth_error(&form(&app, "/oauth/token", &[]).await, "invalid_request");
        expect_oauth_error(&form(&app, "/oauth/revoke", &[]).await, "invalid_request");
    }

    async fn the_refresh_grant_rotates_like_the_native_endpoint(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let first = signed_in["refresh"].as_str().unwrap();

        let granted = refresh_grant(&app, first).await;

        granted.expect(200, None);
        assert_eq!(granted.body["token_type"], "Bearer");
        assert_eq!(granted.body["expires_in"], 300);
        let access = granted.body["access_token"].as_str().unwrap();
        let next = granted.body["refresh_token"].as_str().unwrap();
        assert_ne!(next, first);
        assert_eq!(granted.header("cache-control"), Some("no-store"));
        assert_eq!(granted.header("pragma"), Some("no-cache"));
        app.get("/auth/me", Some(access)).await.expect(200, None);
        // The pair works with the native endpoint too, and the native one's with OAuth.
        let native = app.post("/auth/token/refresh", json!({"refresh": next})).await;
        native.expect(200, None);
        refresh_grant(&app, native.body["refresh"].as_str().unwrap()).await.expect(200, None);
    }

    async fn a_used_refresh_token_is_an_invalid_grant_and_ends_the_session(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let first = signed_in["refresh"].as_str().unwrap();
        let second = refresh_grant(&app, first).await.body["refresh_token"].as_str().unwrap().to_string();

        app.clock.advance(Duration::from_secs(11));
        let replayed = refresh_grant(&app, first).await;

        expect_oauth_error(&replayed, "invalid_grant");
        // Reuse revokes the session: the latest token is dead too.
        expect_oauth_error(&refresh_grant(&app, &second).await, "invalid_grant");
        app.post("/auth/token/refresh", json!({"refresh": second}))
            .await
            .expect(401, Some("invalid_refresh_token"));
    }

    async fn malformed_token_requests_get_rfc_6749_errors(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let refresh = signed_in["refresh"].as_str().unwrap();
        let long = "x".repeat(10_000);

        for (fields, error) in [
            (vec![("refresh_token", refresh)], "invalid_request"),
            (vec![("grant_type", ""), ("refresh_token", refresh)], "invalid_request"),
            (vec![("grant_type", "refresh_token")], "invalid_request"),
            (vec![("grant_type", "refresh_token"), ("refresh_token", "")], "invalid_request"),
            (vec![("grant_type", "refresh_token"), ("grant_type", "password"), ("refresh_token", refresh)], "invalid_request"),
            (vec![("grant_type", "refresh_token"), ("refresh_token", refresh), ("refresh_token", refresh)], "invalid_request"),
            (vec![("grant_type", "password"), ("username", "jane@example.com"), ("password", "x")], "unsupported_grant_type"),
            (vec![("grant_type", "authorization_code"), ("code", "x")], "unsupported_grant_type"),
            (vec![("grant_type", "refresh_token"), ("refresh_token", "not-a-token")], "invalid_grant"),
            (vec![("grant_type", "refresh_token"), ("refresh_token", &long)], "invalid_grant"),
        ] {
            let reply = form(&app, "/oauth/token", &fields).await;
            expect_oauth_error(&reply, error);
        }
        // JSON is not what RFC 6749 clients send: refused before anything is read.
        let json_body = app
            .post("/oauth/token", json!({"grant_type": "refresh_token", "refresh_token": refresh}))
            .await;
        json_body.expect(415, Some("unsupported_media_type"));
        // None of that touched the session.
        refresh_grant(&app, refresh).await.expect(200, None);
    }

    async fn revocation_ends_the_session_and_takes_any_token(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let refresh = signed_in["refresh"].as_str().unwrap();
        let access = signed_in["access"].as_str().unwrap();

        // An access token or a made-up token: 200, and nothing ends (RFC 7009 §2.2).
        form(&app, "/oauth/revoke", &[("token", access), ("token_type_hint", "access_token")]).await.expect(200, None);
        form(&app, "/oauth/revoke", &[("token", "made-up")]).await.expect(200, None);
        expect_oauth_error(&form(&app, "/oauth/revoke", &[("token", refresh), ("token", "other")]).await, "invalid_request");
        assert_eq!(app.get("/auth/sessions", Some(access)).await.body.as_array().unwrap().len(), 1);

        form(&app, "/oauth/revoke", &[("token", refresh), ("token_type_hint", "refresh_token")]).await.expect(200, None);

        expect_oauth_error(&refresh_grant(&app, refresh).await, "invalid_grant");
        assert_eq!(app.count_where("sessions", "revoked_at IS NULL").await, 0);
        // Again: still 200.
        form(&app, "/oauth/revoke", &[("token", refresh)]).await.expect(200, None);
    }
}
