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
