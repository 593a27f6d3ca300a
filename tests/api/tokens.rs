//! Access and refresh tokens (§4, §5).

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{DecodingKey, Validation, jwk::Jwk};
use serde_json::{Value, json};

use crate::helpers::{Db, TestApp};

pub fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn header_of(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

db_tests! {
    async fn access_tokens_verify_with_the_published_jwks(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let access = signed_in["access"].as_str().unwrap();

        let jwks = app.get("/.well-known/jwks.json", None).await;

        jwks.expect(200, None);
        assert_eq!(jwks.header("cache-control"), Some("public, max-age=300"));
        let header = header_of(access);
        assert_eq!(header["typ"], "at+jwt");
        assert_eq!(header["alg"], "EdDSA");
        let jwk: Jwk = serde_json::from_value(
            jwks.body["keys"].as_array().unwrap().iter().find(|key| key["kid"] == header["kid"]).unwrap().clone(),
        )
        .unwrap();
        let mut validation = Validation::new(jsonwebtoken::Algorithm::EdDSA);
        validation.set_audience(&["authgate"]);
        validation.set_issuer(&["http://127.0.0.1:8080"]);
        let verified = jsonwebtoken::decode::<Value>(access, &DecodingKey::from_jwk(&jwk).unwrap(), &validation).unwrap();
        let claims = verified.claims;
        assert_eq!(claims["sub"], signed_in["user"]["id"]);
        assert_eq!(claims["email"], "jane@example.com");
        assert_eq!(claims["email_verified"], true);
        assert_eq!(claims["role"], "user");
        for claim in ["iat", "nbf", "exp"] {
            assert!(claims[claim].is_i64(), "{claim}");
        }
        assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 300);
        assert!(uuid::Uuid::parse_str(claims["jti"].as_str().unwrap()).is_ok());
        assert!(uuid::Uuid::parse_str(claims["sid"].as_str().unwrap()).is_ok());
        for key in jwks.body["keys"].as_array().unwrap() {
            assert_eq!(key["use"], "sig");
            assert!(key.get("d").is_none(), "no private member");
        }
    }

    async fn refused_access_tokens_say_what_was_wrong(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let access = signed_in["access"].as_str().unwrap();
        let mut forged = access.to_string();
        forged.replace_range(forged.len() - 4.., "AAAA");

        for (header, says) in [
            (format!("Bearer Bearer {access}"), "says `Bearer` twice"),
            (format!("Bearer {}", signed_in["refresh"].as_str().unwrap()), "not a JWT"),
            (format!("Bearer {forged}"), "signature"),
        ] {
            let refused = app.client.get(format!("{}/auth/me", app.base)).header("authorization", &header).send().await.unwrap();
            let refused = crate::helpers::Reply::read(refused).await;
            refused.expect(401, Some("unauthorized"));
            assert!(refused.body["message"].as_str().unwrap().contains(says), "{header}: {}", refused.text);
            assert!(!refused.text.contains(&access[20..]), "the token is never echoed");
        }
        app.clock.advance(Duration::from_secs(301));
        let expired = app.get("/auth/me", Some(access)).await;
        expired.expect(401, Some("unauthorized"));
        assert!(expired.body["message"].as_str().unwrap().contains("expired"), "{}", expired.text);
    }

    async fn discovery_points_at_the_keys(db: Db) {
        let app = TestApp::spawn(db).await;

        let reply = app.get("/.well-known/openid-configuration", None).await;

        reply.expect(200, None);
        assert_eq!(reply.body["issuer"], "http://127.0.0.1:8080");
        assert_eq!(reply.body["jwks_uri"], "http://127.0.0.1:8080/.well-known/jwks.json");
        assert_eq!(reply.body["token_endpoint"], "http://127.0.0.1:8080/oauth/token");
    }

    async fn refresh_rotates_the_token(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let first = signed_in["refresh"].as_str().unwrap();

        let reply = app.post("/auth/token/refresh", json!({"refresh": first})).await;

        reply.expect(200, None);
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        let second = reply.body["refresh"].as_str().unwrap();
        assert_ne!(first, second);
        assert_eq!(reply.body["token_type"], "Bearer");
        assert_eq!(reply.body["expires_in"], 300);
        let access = reply.body["access"].as_str().unwrap();
        assert_eq!(claims_of(access)["sid"], claims_of(signed_in["access"].as_str().unwrap())["sid"]);
        app.get("/auth/me", Some(access)).await.expect(200, None);
        app.post("/auth/token/refresh", json!({"refresh": second})).await.expect(200, None);
    }

    async fn a_refresh_counts_as_being_seen(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let seen_at = |reply: &Value| -> chrono::DateTime<chrono::Utc> {
            reply["last_seen_at"].as_str().unwrap().parse().unwrap()
        };
        let signed_in_at = seen_at(&signed_in["user"]);

        app.clock.advance(Duration::from_secs(3600));
        let refreshed = app.post("/auth/token/refresh", json!({"refresh": signed_in["refresh"]})).await;
        refreshed.expect(200, None);
        let me = app.get("/auth/me", refreshed.body["access"].as_str()).await.body;

        assert_eq!((seen_at(&me) - signed_in_at).num_seconds(), 3600, "{me}");
        // Refreshes a moment apart are one sighting: only the first writes it.
        app.clock.advance(Duration::from_secs(10));
        let again = app.post("/auth/token/refresh", json!({"refresh": refreshed.body["refresh"]})).await;
        let me = app.get("/auth/me", again.body["access"].as_str()).await.body;
        assert_eq!((seen_at(&me) - signed_in_at).num_seconds(), 3600, "{me}");
        assert_eq!(me["last_login_at"], signed_in["user"]["last_login_at"]);
    }

    async fn a_concurrent_second_refresh_gets_a_pair_for_the_same_session(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let token = signed_in["refresh"].as_str().unwrap();

        let (a, b) = tokio::join!(
            app.post("/auth/token/refresh", json!({"refresh": token})),
            app.post("/auth/token/refresh", json!({"refresh": token})),
        );

        a.expect(200, None);
        b.expect(200, None);
        let sid = |reply: &crate::helpers::Reply| claims_of(reply.body["access"].as_str().unwrap())["sid"].clone();
        assert_eq!(sid(&a), sid(&b));
        // Neither thread was logged out; the session goes on with whichever successor is used
        // first.
        app.post("/auth/token/refresh", json!({"refresh": a.body["refresh"]})).await.expect(200, None);
    }

    async fn a_session_never_forks(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let token = signed_in["refresh"].as_str().unwrap();

        // Twenty refreshes of one token inside the reuse interval: all answered, so no thread
        // of the app is logged out by a race...
        let replies = futures_util::future::join_all(
            (0..20).map(|_| app.post("/auth/token/refresh", json!({"refresh": token}))),
        )
        .await;
        let successors: Vec<String> = replies
            .iter()
            .map(|reply| reply.expect(200, None).body["refresh"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(successors.iter().collect::<std::collections::HashSet<_>>().len(), 20);

        // ...but the first successor used wins. The owner refreshes on, and a thief holding any
        // other successor cannot refresh beside them: that is reuse, and the session ends.
        let owner = app.post("/auth/token/refresh", json!({"refresh": successors[7]})).await;
        owner.expect(200, None);
        app.post("/auth/token/refresh", json!({"refresh": successors[3]}))
            .await
            .expect(401, Some("refresh_token_reused"));
        app.post("/auth/token/refresh", json!({"refresh": owner.body["refresh"]}))
            .await
            .expect(401, Some("invalid_refresh_token"));
    }

    async fn a_token_whose_successor_was_used_is_reuse_even_inside_the_interval(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let token = signed_in["refresh"].as_str().unwrap();
        let successor = app.post("/auth/token/refresh", json!({"refresh": token})).await;
        app.post("/auth/token/refresh", json!({"refresh": successor.body["refresh"]}))
            .await
            .expect(200, None);

        // Still inside the reuse interval of the first rotation, but the session moved on.
        app.post("/auth/token/refresh", json!({"refresh": token}))
            .await
            .expect(401, Some("refresh_token_reused"));
    }

    async fn replaying_a_rotated_token_later_revokes_the_session(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let stolen = signed_in["refresh"].as_str().unwrap();
        let rotated = app.post("/auth/token/refresh", json!({"refresh": stolen})).await;
        rotated.expect(200, None);

        app.clock.advance(Duration::from_secs(11));
        app.post("/auth/token/refresh", json!({"refresh": stolen}))
            .await
            .expect(401, Some("refresh_token_reused"));

        app.post("/auth/token/refresh", json!({"refresh": rotated.body["refresh"]}))
            .await
            .expect(401, Some("invalid_refresh_token"));
    }

    async fn unknown_and_expired_refresh_tokens_are_refused(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;

        app.post("/auth/token/refresh", json!({"refresh": "not-a-token"}))
            .await
            .expect(401, Some("invalid_refresh_token"));
        for path in ["/auth/token/refresh", "/auth/logout"] {
            let missing = app.post(path, json!({})).await;
            missing.expect(400, Some("validation_failed"));
            assert!(!missing.field_problems("refresh").is_empty(), "{path}: {}", missing.text);
        }

        app.clock.advance(Duration::from_secs(86_400));
        app.post("/auth/token/refresh", json!({"refresh": signed_in["refresh"]}))
            .await
            .expect(401, Some("invalid_refresh_token"));
    }

    async fn logout_ends_the_session_and_is_idempotent(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let refresh = signed_in["refresh"].as_str().unwrap();

        let reply = app.post("/auth/logout", json!({"refresh": refresh})).await;

        assert_eq!(reply.status, 204);
        assert!(reply.text.is_empty());
        app.post("/auth/token/refresh", json!({"refresh": refresh}))
            .await
            .expect(401, Some("invalid_refresh_token"));
        assert_eq!(app.post("/auth/logout", json!({"refresh": refresh})).await.status, 204);
        assert_eq!(app.post("/auth/logout", json!({"refresh": "never-issued"})).await.status, 204);
    }

    async fn bad_bearer_tokens_get_401_with_a_challenge(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let access = signed_in["access"].as_str().unwrap().to_string();
        let (header, payload, signature) = {
            let parts: Vec<&str> = access.split('.').collect();
            (parts[0].to_string(), parts[1].to_string(), parts[2].to_string())
        };
        let mut claims = claims_of(&access);
        claims["role"] = json!("admin");
        let tampered = format!("{header}.{}.{signature}", URL_SAFE_NO_PAD.encode(claims.to_string()));
        let none_header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "at+jwt"}).to_string());
        let alg_none = format!("{none_header}.{payload}.");
        let hs256 = jsonwebtoken::encode(
            &jsonwebtoken::Header { typ: Some("at+jwt".into()), ..Default::default() },
            &claims_of(&access),
            &jsonwebtoken::EncodingKey::from_secret(b"guess"),
        )
        .unwrap();

        for token in [None, Some("garbage"), Some(tampered.as_str()), Some(alg_none.as_str()), Some(hs256.as_str()),
            Some(signed_in["refresh"].as_str().unwrap())]
        {
            let reply = app.get("/auth/me", token).await;
            reply.expect(401, Some("unauthorized"));
            assert_eq!(reply.header("www-authenticate"), Some("Bearer"), "{token:?}");
        }
        app.get("/auth/me", Some(&access)).await.expect(200, None);
    }

    async fn access_tokens_expire(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        // Accepted once first, so the second check finds it among the verified tokens.
        app.get("/auth/me", signed_in["access"].as_str()).await.expect(200, None);

        app.clock.advance(Duration::from_secs(300));

        app.get("/auth/me", signed_in["access"].as_str()).await.expect(401, Some("unauthorized"));
    }

    async fn tokens_of_disabled_or_deleted_users_stop_working(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let access = signed_in["access"].as_str().unwrap();

        app.execute("UPDATE users SET status = 'disabled', is_active = false").await;
        app.get("/auth/me", Some(access)).await.expect(401, Some("unauthorized"));
        app.post("/auth/token/refresh", json!({"refresh": signed_in["refresh"]}))
            .await
            .expect(401, Some("invalid_refresh_token"));

        app.execute("DELETE FROM users").await;
        app.get("/auth/me", Some(access)).await.expect(401, Some("unauthorized"));
    }
}
