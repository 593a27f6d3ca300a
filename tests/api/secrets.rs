//! Secrets at rest (§12): what a stolen database or backup gives away.

use authgate::vault::Vault;
use sea_orm::EntityTrait;
use serde_json::json;

use crate::helpers::{Db, PASSWORD, TestApp};

/// A 32-byte key, base64: enough for tests.
pub fn encryption_key(id: &str, byte: u8) -> String {
    use base64::{Engine, engine::general_purpose::STANDARD};
    format!("{id}:{}", STANDARD.encode([byte; 32]))
}

db_tests! {
    async fn a_stolen_code_hash_gives_no_code_without_the_key(db: Db) {
        let key = encryption_key("k1", 7);
        let configured = key.clone();
        let app = TestApp::spawn_with(db, move |config| {
            config.encryption_keys = authgate::config::Secret::new(configured);
        })
        .await;
        app.register("jane@example.com", PASSWORD).await.expect(201, None);
        let code = app.mail.latest_code("jane@example.com");

        // What a backup holds: the row id and the stored form of the code.
        let row = authgate::store::codes::Entity::find().one(&app.state.db).await.unwrap().unwrap();
        let (row_id, stored) = (row.id, row.code_hash.unwrap());
        let stored = stored.expose();
        assert!(stored.starts_with("hmac:k1:"), "{stored}");

        // Trying all 10^6 codes the way a plain salted hash would fall, and under a key
        // guessed wrong, finds nothing.
        let no_key = Vault::from_spec("").unwrap();
        let wrong_key = Vault::from_spec(&encryption_key("k1", 8)).unwrap();
        let found = (0..1_000_000u32).map(|n| format!("{n:06}")).find(|candidate| {
            no_key.mac_matches(row_id.as_bytes(), candidate, stored)
                || wrong_key.mac_matches(row_id.as_bytes(), candidate, stored)
        });
        assert_eq!(found, None);

        // With the key, the service itself still recognises the code.
        let with_key = Vault::from_spec(&key).unwrap();
        assert!(with_key.mac_matches(row_id.as_bytes(), &code, stored));
        app.post("/auth/verify-otp", json!({"email": "jane@example.com", "otp": code})).await.expect(200, None);
    }
}

/// The configuration of another instance on `app`'s database, as the test harness makes it.
fn config_beside(app: &TestApp, encryption_keys: &str) -> authgate::config::Config {
    let url = app.database_url.clone();
    let mut config = authgate::config::Config::from_lookup(|name| match name {
        "DATABASE_URL" => Some(url.clone()),
        _ => None,
    })
    .unwrap();
    config.argon2 = authgate::config::Argon2Params::FOR_TESTS;
    config.metrics_listen = None;
    config.encryption_keys = authgate::config::Secret::new(encryption_keys.to_string());
    config
}

async fn start_beside(app: &TestApp, encryption_keys: &str) -> Result<(), String> {
    let config = config_beside(app, encryption_keys);
    authgate::app::AppState::build(config, std::sync::Arc::new(authgate::clock::SystemClock))
        .await
        .map(|_| ())
        .map_err(|err| err.to_string())
}

async fn private_keys(app: &TestApp) -> Vec<String> {
    authgate::store::signing_keys::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .map(|key| key.private_key.expose().to_string())
        .collect()
}

db_tests! {
    async fn signing_keys_are_sealed_and_survive_a_restart_with_the_same_key(db: Db) {
        let key = encryption_key("k1", 1);
        let configured = key.clone();
        let app = TestApp::spawn_with(db, move |config| {
            config.encryption_keys = authgate::config::Secret::new(configured);
        })
        .await;
        let signed_in = app.verified_user("jane@example.com").await;

        for stored in private_keys(&app).await {
            assert!(stored.starts_with("enc:v1:k1:"), "{stored}");
        }
        let second = app
            .spawn_alongside(move |config| config.encryption_keys = authgate::config::Secret::new(key))
            .await;
        second.get("/auth/me", signed_in["access"].as_str()).await.expect(200, None);
    }

    async fn values_stored_in_clear_are_sealed_at_the_next_start(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        assert!(!private_keys(&app).await[0].starts_with("enc:"), "no key configured: clear");

        let second = app
            .spawn_alongside(|config| config.encryption_keys = authgate::config::Secret::new(encryption_key("k1", 1)))
            .await;

        for stored in private_keys(&app).await {
            assert!(stored.starts_with("enc:v1:k1:"), "{stored}");
        }
        second.get("/auth/me", signed_in["access"].as_str()).await.expect(200, None);
    }

    async fn a_new_first_key_takes_over_and_the_old_one_can_go(db: Db) {
        let app = TestApp::spawn_with(db, |config| {
            config.encryption_keys = authgate::config::Secret::new(encryption_key("k1", 1));
        })
        .await;
        let signed_in = app.verified_user("jane@example.com").await;

        // With k2 first and k1 still there, start-up moves every value to k2…
        let both = format!("{},{}", encryption_key("k2", 2), encryption_key("k1", 1));
        start_beside(&app, &both).await.unwrap();
        for stored in private_keys(&app).await {
            assert!(stored.starts_with("enc:v1:k2:"), "{stored}");
        }
        // …so k1 can be dropped.
        let second = app
            .spawn_alongside(|config| config.encryption_keys = authgate::config::Secret::new(encryption_key("k2", 2)))
            .await;
        second.get("/auth/me", signed_in["access"].as_str()).await.expect(200, None);
    }

    async fn a_wrong_or_missing_key_stops_start_up_naming_it(db: Db) {
        let app = TestApp::spawn_with(db, |config| {
            config.encryption_keys = authgate::config::Secret::new(encryption_key("k1", 1));
        })
        .await;

        let wrong = start_beside(&app, &encryption_key("k1", 9)).await.unwrap_err();
        assert!(wrong.contains("k1") && wrong.contains("wrong key"), "{wrong}");
        let missing = start_beside(&app, "").await.unwrap_err();
        assert!(missing.contains("k1") && missing.contains("AUTHGATE_ENCRYPTION_KEYS"), "{missing}");
        let other = start_beside(&app, &encryption_key("k7", 1)).await.unwrap_err();
        assert!(other.contains("k1"), "{other}");
    }
}

/// `authgate keys reencrypt` moves every value to the first key, and says how many.
#[tokio::test]
async fn keys_reencrypt_moves_every_value_to_the_first_key() {
    let app = TestApp::spawn_with(Db::Sqlite, |config| {
        config.encryption_keys = authgate::config::Secret::new(encryption_key("k1", 1));
    })
    .await;
    app.verified_user("jane@example.com").await;
    let both = format!("{},{}", encryption_key("k2", 2), encryption_key("k1", 1));

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(["keys", "reencrypt"])
        .env("DATABASE_URL", &app.database_url)
        .env("AUTHGATE_ENCRYPTION_KEYS", &both)
        .output()
        .unwrap();

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("sealed with key k2: 1 signing keys"),
        "{stdout}"
    );
    for stored in private_keys(&app).await {
        assert!(stored.starts_with("enc:v1:k2:"), "{stored}");
    }
}
