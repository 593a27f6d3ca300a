//! Keys other services trust (§5): every algorithm, the JWKS, rotation without logouts, and a
//! resource server that verifies tokens offline in its own process.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use authgate::{config::SigningAlgorithm, store::signing_keys};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation, jwk::Jwk};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::{
    helpers::{Db, PASSWORD, TestApp},
    tokens::claims_of,
};

fn header_of(token: &str) -> Value {
    jsonwebtoken::decode_header(token)
        .map(|h| serde_json::to_value(h).unwrap())
        .unwrap()
}

/// Verifies `token` with the JWKS the way any standard library would.
async fn verify_with_jwks(
    app: &TestApp,
    token: &str,
) -> Result<Value, jsonwebtoken::errors::Error> {
    let jwks = app.get("/.well-known/jwks.json", None).await.body;
    let kid = header_of(token)["kid"].clone();
    let jwk: Jwk = serde_json::from_value(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
            .cloned()
            .unwrap(),
    )
    .unwrap();
    let algorithm: jsonwebtoken::Algorithm = jwk
        .common
        .key_algorithm
        .unwrap()
        .to_string()
        .parse()
        .unwrap();
    let mut validation = Validation::new(algorithm);
    validation.set_audience(&["authgate"]);
    validation.set_issuer(&["http://127.0.0.1:8080"]);
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(&jwk)?, &validation)
        .map(|data| data.claims)
}

/// The example resource server, started as its own process on a free port.
struct ResourceServer {
    child: Child,
    base: String,
}

impl ResourceServer {
    fn start(authgate: &TestApp) -> ResourceServer {
        let binary = std::env::current_exe()
            .unwrap()
            .parent()
            .and_then(|deps| deps.parent())
            .unwrap()
            .join("examples/resource_server");
        let mut child = Command::new(&binary)
            .env("AUTHGATE_URL", &authgate.base)
            .env("AUTHGATE_ISSUER", "http://127.0.0.1:8080")
            .env("LISTEN", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| {
                panic!(
                    "cannot start {} (cargo test builds it): {err}",
                    binary.display()
                )
            });
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .expect("the example prints its address")
            .to_string();
        ResourceServer { child, base }
    }

    async fn protected(&self, token: &str) -> (u16, Value) {
        let response = reqwest::Client::new()
            .get(format!("{}/protected", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }
}

impl Drop for ResourceServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn current_private_key(app: &TestApp) -> (String, Vec<u8>) {
    let key = signing_keys::Entity::find()
        .filter(signing_keys::Column::RetiredAt.is_null())
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    (key.kid, STANDARD.decode(key.private_key.expose()).unwrap())
}

async fn every_algorithm_is_verified_by_standard_libraries(db: Db, algorithm: SigningAlgorithm) {
    let app = TestApp::spawn_with(db, move |config| config.jwt_algorithm = algorithm).await;
    let signed_in = app.verified_user("jane@example.com").await;
    let token = signed_in["access"].as_str().unwrap();

    assert_eq!(header_of(token)["alg"], algorithm.as_str());
    let claims = verify_with_jwks(&app, token)
        .await
        .expect("the JWKS verifies the token");
    assert_eq!(claims["sub"], signed_in["user"]["id"]);
    let jwks = app.get("/.well-known/jwks.json", None).await.body;
    let key = &jwks["keys"][0];
    assert_eq!(key["alg"], algorithm.as_str());
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        assert!(
            key.get(private).is_none(),
            "private member {private} published"
        );
    }

    let resource_server = ResourceServer::start(&app);
    let (status, body) = resource_server.protected(token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sub"], signed_in["user"]["id"]);
    assert_eq!(body["email"], "jane@example.com");
    let (status, _) = resource_server.protected(&format!("{token}x")).await;
    assert_eq!(status, 401);
    let (status, _) = resource_server
        .protected(signed_in["refresh"].as_str().unwrap())
        .await;
    assert_eq!(status, 401);
}

db_tests! {
    async fn eddsa_tokens_verify_everywhere(db: Db) {
        every_algorithm_is_verified_by_standard_libraries(db, SigningAlgorithm::EdDsa).await;
    }

    async fn es256_tokens_verify_everywhere(db: Db) {
        every_algorithm_is_verified_by_standard_libraries(db, SigningAlgorithm::Es256).await;
    }

    async fn rs256_tokens_verify_everywhere(db: Db) {
        every_algorithm_is_verified_by_standard_libraries(db, SigningAlgorithm::Rs256).await;
    }

    async fn rotation_keeps_old_tokens_valid_until_they_expire(db: Db) {
        let app = TestApp::spawn(db).await;
        let before = app.verified_user("jane@example.com").await;
        let old_token = before["access"].as_str().unwrap();
        let old_kid = header_of(old_token)["kid"].clone();

        let new_kid = app.state.keys.rotate().await.unwrap();

        let after = app.login("jane@example.com", PASSWORD).await;
        assert_eq!(header_of(after.body["access"].as_str().unwrap())["kid"], new_kid.as_str());
        app.get("/auth/me", Some(old_token)).await.expect(200, None);
        verify_with_jwks(&app, old_token).await.expect("the retired key is still published");
        let kids: Vec<Value> = app.get("/.well-known/jwks.json", None).await.body["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|key| key["kid"].clone())
            .collect();
        assert_eq!(kids.len(), 2);
        assert!(kids.contains(&old_kid));

        // Past the access TTL and the margin, the old key is gone.
        app.clock.advance(Duration::from_secs(300 + 120));
        let keys = app.get("/.well-known/jwks.json", None).await.body["keys"].clone();
        assert_eq!(keys.as_array().unwrap().len(), 1);
        assert_eq!(keys[0]["kid"], new_kid.as_str());
        app.get("/auth/me", Some(old_token)).await.expect(401, Some("unauthorized"));
    }

    async fn another_instance_trusts_a_key_it_has_not_loaded_yet(db: Db) {
        let first = TestApp::spawn(db).await;
        let second = first.spawn_alongside(|_| {}).await;
        first.verified_user("jane@example.com").await;

        first.state.keys.rotate().await.unwrap();
        let token = first.login("jane@example.com", PASSWORD).await.body["access"].as_str().unwrap().to_string();

        // The second instance meets the new kid, reloads once and accepts it.
        second.get("/auth/me", Some(&token)).await.expect(200, None);
    }

    async fn automatic_rotation_replaces_the_key_once(db: Db) {
        let first = TestApp::spawn_with(db, |config| config.key_rotation = Some(Duration::from_secs(3600))).await;
        let second = first.spawn_alongside(|_| {}).await;
        let one_hour = Duration::from_secs(3600);

        assert_eq!(first.state.keys.rotate_if_older_than(one_hour).await.unwrap(), None);
        first.clock.advance(one_hour);
        second.clock.advance(one_hour);
        let rotated = first.state.keys.rotate_if_older_than(one_hour).await.unwrap();
        let again = second.state.keys.rotate_if_older_than(one_hour).await.unwrap();

        let rotated = rotated.expect("the hour-old key is replaced");
        assert_eq!(again, None, "the other instance sees the fresh key and does nothing");
        assert_eq!(second.state.keys.current().kid, rotated);
        assert_eq!(first.get("/.well-known/jwks.json", None).await.body["keys"].as_array().unwrap().len(), 2);
    }

    async fn the_cli_rotates_and_lists_keys(db: Db) {
        let app = TestApp::spawn(db).await;
        let before = app.state.keys.current().kid.clone();
        let cli = |args: &[&str]| {
            let output = Command::new(env!("CARGO_BIN_EXE_authgate"))
                .args(args)
                .env("DATABASE_URL", &app.database_url)
                .env("AUTHGATE_LOG_FORMAT", "json")
                .output()
                .unwrap();
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            String::from_utf8(output.stdout).unwrap()
        };

        let rotated = cli(&["keys", "rotate"]);
        let listed = cli(&["keys", "list"]);

        assert!(rotated.contains("new current key"), "{rotated}");
        let lines: Vec<&str> = listed.lines().collect();
        assert_eq!(lines.len(), 3, "a header and two keys: {listed}");
        assert!(lines[1].contains("current") && !lines[1].contains(&before));
        assert!(lines[2].contains(&before) && lines[2].contains("retired"));
        // The running instance notices the rotation within seconds, without a restart, and
        // signs with the new key from then on.
        let waited = std::time::Instant::now();
        while app.state.keys.current().kid == before {
            assert!(waited.elapsed() < Duration::from_secs(6), "the running instance still signs with the old key");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let new_kid = lines[1].split_whitespace().next().unwrap();
        assert_eq!(app.state.keys.current().kid, new_kid);
        app.verified_user("jane@example.com").await;
        let token = app.login("jane@example.com", PASSWORD).await.body["access"].as_str().unwrap().to_string();
        assert_eq!(header_of(&token)["kid"], new_kid);
    }

    async fn forged_tokens_are_refused(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let genuine = signed_in["access"].as_str().unwrap();
        let claims = claims_of(genuine);
        let (kid, private_der) = current_private_key(&app).await;
        let sign = |header: Header, claims: &Value, key: &EncodingKey| jsonwebtoken::encode(&header, claims, key).unwrap();
        let at_jwt = |kid: Option<&str>| Header {
            typ: Some("at+jwt".into()),
            kid: kid.map(str::to_string),
            ..Header::new(jsonwebtoken::Algorithm::EdDSA)
        };
        let real_key = EncodingKey::from_ed_der(&private_der);
        let stranger = {
            use ed25519_dalek::pkcs8::EncodePrivateKey;
            let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
            EncodingKey::from_ed_der(key.to_pkcs8_der().unwrap().as_bytes())
        };
        let mut wrong_audience = claims.clone();
        wrong_audience["aud"] = json!("another-service");
        let mut wrong_issuer = claims.clone();
        wrong_issuer["iss"] = json!("https://evil.example.com");

        let control = sign(at_jwt(Some(&kid)), &claims, &real_key);
        let forged = [
            sign(at_jwt(Some(&kid)), &claims, &stranger),
            sign(at_jwt(Some(&kid)), &wrong_audience, &real_key),
            sign(at_jwt(Some(&kid)), &wrong_issuer, &real_key),
            sign(at_jwt(None), &claims, &real_key),
            sign(Header { typ: Some("JWT".into()), ..at_jwt(Some(&kid)) }, &claims, &real_key),
            sign(at_jwt(Some("unknown-kid")), &claims, &real_key),
        ];

        app.get("/auth/me", Some(&control)).await.expect(200, None);
        for token in forged {
            app.get("/auth/me", Some(&token)).await.expect(401, Some("unauthorized"));
        }
    }

    async fn tokens_with_critical_header_extensions_are_refused(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let claims = claims_of(signed_in["access"].as_str().unwrap());
        let (kid, private_der) = current_private_key(&app).await;
        let real_key = EncodingKey::from_ed_der(&private_der);
        // Signed by hand: the header is exactly what is written here.
        let sign = |header: &Value| {
            let message = format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
            let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &real_key, jsonwebtoken::Algorithm::EdDSA).unwrap();
            format!("{message}.{signature}")
        };
        let header = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid});
        let with_crit = |crit: Value| {
            let mut header = header.clone();
            header["crit"] = crit;
            sign(&header)
        };

        app.get("/auth/me", Some(&sign(&header))).await.expect(200, None);
        // RFC 7515 §4.1.11: extensions named in `crit` must be understood, and we understand none.
        for token in [with_crit(json!(["exp"])), with_crit(json!(["b64"])), with_crit(Value::Null)] {
            let reply = app.get("/auth/me", Some(&token)).await;
            reply.expect(401, Some("unauthorized"));
            assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
        }
    }
}
