//! Upgrading in place (issue 11): a database made by the release before the accounts work
//! (migrations 1–3), with rows in every table, goes through the later migrations with every
//! row kept, and the upgraded service signs its people in with their old passwords, sessions
//! and signing key.
//!
//! The old rows are written with plain SQL against the old schema, not through today's
//! entities, which only know today's schema.

use authgate::{
    config::Argon2Params,
    domain::{hashing::HashingPool, password_policy::Password},
    tokens::refresh,
};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use chrono::{DateTime, Duration, NaiveDate, SubsecRound, Utc};
use ed25519_dalek::pkcs8::EncodePrivateKey;
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, QueryResult, Statement,
    TryGetable, Value,
};
use serde_json::json;
use uuid::Uuid;

use crate::{
    helpers::{Db, PASSWORD, TestApp},
    tokens::claims_of,
};

/// The migrations the release before the accounts work shipped.
const PREVIOUS_RELEASE_MIGRATIONS: u32 = 3;
const SIGNING_KID: &str = "kid-of-the-previous-release";
/// Refresh tokens the previous release handed out: one never used, one exchanged two hours
/// ago (its successor is the session's live token).
const LIVE_REFRESH: &str = "live-refresh-token-from-the-previous-release";
const EXCHANGED_REFRESH: &str = "exchanged-refresh-token-from-the-previous-release";

db_tests! {
    async fn every_row_of_the_previous_release_survives_the_upgrade(db: Db) {
        let old = PreviousRelease::create(&db).await;
        let conn = old.connect().await;

        Migrator::up(&conn, None).await.expect("the later migrations apply");

        for row in old.rows_after_upgrade(conn.get_database_backend()) {
            row.assert_stored(&conn).await;
        }
        for table in old.tables() {
            let inserted = old.rows.iter().filter(|row| row.table == table).count();
            assert_eq!(count(&conn, table).await, inserted as i64, "rows in {table}");
        }
    }

    async fn the_upgraded_service_signs_old_users_in_with_their_password_session_and_key(db: Db) {
        let old = PreviousRelease::create(&db).await;

        let app = TestApp::spawn_on(old.database_url.clone(), old.scratch).await;

        let login = app.login("jane@example.com", PASSWORD).await;
        login.expect(200, None);
        let access = login.body["access"].as_str().unwrap();
        let kid = jsonwebtoken::decode_header(access).unwrap().kid;
        assert_eq!(kid.as_deref(), Some(SIGNING_KID), "signed with the old key");
        let jwks = app.get("/.well-known/jwks.json", None).await.body;
        let published = jwks["keys"].as_array().unwrap();
        assert!(published.iter().any(|key| key["kid"] == SIGNING_KID));
        let user = &login.body["user"];
        assert_eq!(user["id"], old.jane.to_string());
        assert_eq!(user["status"], "active");
        assert_eq!(user["username"], json!(null));
        assert_eq!(user["phone_number"], "+15555550100");
        let profile = json!({
            "bio": "Keeps bees.",
            "avatar_url": "https://cdn.example.com/jane.png",
            "date_of_birth": "1990-05-17",
        });
        assert_eq!(user["profile"], profile);
        assert_eq!(user["metadata"], json!({}));
        assert_eq!(user["mfa"]["enabled"], false);
        app.login("former@example.com", PASSWORD)
            .await
            .expect(403, Some("account_disabled"));

        // §5: an unused token rotates and keeps its session's way in (earlier releases
        // signed in by password only); one exchanged long ago is a replay.
        let refreshed = app
            .post("/auth/token/refresh", json!({"refresh": LIVE_REFRESH}))
            .await;
        refreshed.expect(200, None);
        let claims = claims_of(refreshed.body["access"].as_str().unwrap());
        assert_eq!(claims["sid"], old.live_session.to_string());
        assert_eq!(claims["amr"], json!(["pwd"]));
        app.post("/auth/token/refresh", json!({"refresh": EXCHANGED_REFRESH}))
            .await
            .expect(401, Some("refresh_token_reused"));
    }
}

/// A database as the previous release left it: its schema, and rows in each of its tables.
struct PreviousRelease {
    database_url: String,
    /// Holds the SQLite file.
    scratch: tempfile::TempDir,
    rows: Vec<Row>,
    jane: Uuid,
    live_session: Uuid,
}

impl PreviousRelease {
    async fn create(db: &Db) -> PreviousRelease {
        let scratch = tempfile::tempdir().expect("scratch dir");
        let database_url = db.fresh_url(&scratch).await;
        let mut old = PreviousRelease {
            database_url,
            scratch,
            rows: Vec::new(),
            jane: Uuid::new_v4(),
            live_session: Uuid::new_v4(),
        };
        let conn = old.connect().await;
        Migrator::up(&conn, Some(PREVIOUS_RELEASE_MIGRATIONS))
            .await
            .expect("the previous release's migrations apply");
        old.rows = old.old_rows().await;
        for row in &old.rows {
            row.insert(&conn).await;
        }
        conn.close().await.ok();
        old
    }

    async fn connect(&self) -> DatabaseConnection {
        Database::connect(self.database_url.as_str())
            .await
            .expect("the test database opens")
    }

    fn tables(&self) -> Vec<&'static str> {
        let mut tables: Vec<_> = self.rows.iter().map(|row| row.table).collect();
        tables.sort_unstable();
        tables.dedup();
        tables
    }

    /// Rows of every table migrations 1–3 create, with values in every column, and nulls
    /// where the schema allows them.
    async fn old_rows(&self) -> Vec<Row> {
        // Whole microseconds: what PostgreSQL keeps.
        let now = Utc::now().trunc_subsecs(6);
        let ago = |hours: i64| now - Duration::hours(hours);
        let from_now = |hours: i64| now + Duration::hours(hours);
        let none_at = None::<DateTime<Utc>>;
        let none_text = None::<String>;
        let none_id = None::<Uuid>;
        // Hashed as the service under test hashes (its cheap test parameters), so the
        // password verifies without a rehash.
        let password_hash = HashingPool::new(Argon2Params::FOR_TESTS)
            .unwrap()
            .hash(&Password::for_login(PASSWORD.into()).unwrap())
            .await
            .unwrap();
        let (jane, former) = (self.jane, Uuid::new_v4());
        let (live_session, exchanged_session, revoked_session) =
            (self.live_session, Uuid::new_v4(), Uuid::new_v4());
        let exchanged_token = Uuid::new_v4();

        vec![
            Row::new(
                "users",
                [
                    ("id", jane.into()),
                    ("email", "jane@example.com".into()),
                    ("password_hash", password_hash.clone().into()),
                    ("first_name", "Jane".into()),
                    ("last_name", "Doe".into()),
                    ("phone_number", Some("+15555550100").into()),
                    ("role", "user".into()),
                    ("is_verified", true.into()),
                    ("is_active", true.into()),
                    ("created_at", ago(24 * 30).into()),
                    ("updated_at", ago(48).into()),
                    ("last_login_at", Some(ago(24)).into()),
                    ("registrations", 1.into()),
                ],
            ),
            Row::new(
                "users",
                [
                    ("id", former.into()),
                    ("email", "former@example.com".into()),
                    ("password_hash", password_hash.into()),
                    ("first_name", "Former".into()),
                    ("last_name", "Admin".into()),
                    ("phone_number", none_text.clone().into()),
                    ("role", "admin".into()),
                    ("is_verified", true.into()),
                    ("is_active", false.into()),
                    ("created_at", ago(24 * 90).into()),
                    ("updated_at", ago(24 * 10).into()),
                    ("last_login_at", none_at.into()),
                    ("registrations", 2.into()),
                ],
            ),
            Row::new(
                "profiles",
                [
                    ("user_id", jane.into()),
                    ("bio", "Keeps bees.".into()),
                    (
                        "avatar_url",
                        Some("https://cdn.example.com/jane.png").into(),
                    ),
                    ("date_of_birth", NaiveDate::from_ymd_opt(1990, 5, 17).into()),
                ],
            ),
            Row::new(
                "profiles",
                [
                    ("user_id", former.into()),
                    ("bio", "".into()),
                    ("avatar_url", none_text.clone().into()),
                    ("date_of_birth", None::<NaiveDate>.into()),
                ],
            ),
            // An address with a pending registration and none sent yet, and a reset code
            // in the format rows had before codes were MACs.
            Row::new(
                "one_time_codes",
                [
                    ("id", Uuid::new_v4().into()),
                    ("email", "newcomer@example.com".into()),
                    ("purpose", "registration".into()),
                    ("user_id", none_id.into()),
                    ("code_hash", none_text.clone().into()),
                    ("attempts", 0.into()),
                    ("created_at", ago(1).into()),
                    ("expires_at", from_now(1).into()),
                    ("consumed_at", none_at.into()),
                    ("last_sent_at", none_at.into()),
                ],
            ),
            Row::new(
                "one_time_codes",
                [
                    ("id", Uuid::new_v4().into()),
                    ("email", "jane@example.com".into()),
                    ("purpose", "password_reset".into()),
                    ("user_id", Some(jane).into()),
                    (
                        "code_hash",
                        Some(URL_SAFE_NO_PAD.encode(b"a legacy salted digest")).into(),
                    ),
                    ("attempts", 1.into()),
                    ("created_at", ago(3).into()),
                    ("expires_at", ago(2).into()),
                    ("consumed_at", Some(ago(2)).into()),
                    ("last_sent_at", Some(ago(3)).into()),
                ],
            ),
            Row::new(
                "sessions",
                [
                    ("id", live_session.into()),
                    ("user_id", jane.into()),
                    ("created_at", ago(72).into()),
                    ("last_used_at", ago(1).into()),
                    ("expires_at", from_now(24 * 27).into()),
                    ("revoked_at", none_at.into()),
                    (
                        "user_agent",
                        Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0").into(),
                    ),
                    ("ip", Some("203.0.113.9").into()),
                ],
            ),
            Row::new(
                "sessions",
                [
                    ("id", exchanged_session.into()),
                    ("user_id", jane.into()),
                    ("created_at", ago(48).into()),
                    ("last_used_at", ago(2).into()),
                    ("expires_at", from_now(24 * 28).into()),
                    ("revoked_at", none_at.into()),
                    ("user_agent", none_text.clone().into()),
                    ("ip", none_text.clone().into()),
                ],
            ),
            Row::new(
                "sessions",
                [
                    ("id", revoked_session.into()),
                    ("user_id", former.into()),
                    ("created_at", ago(24 * 12).into()),
                    ("last_used_at", ago(24 * 11).into()),
                    ("expires_at", from_now(24 * 18).into()),
                    ("revoked_at", Some(ago(24 * 10)).into()),
                    ("user_agent", Some("curl/8.5.0").into()),
                    ("ip", Some("198.51.100.4").into()),
                ],
            ),
            Row::new(
                "refresh_tokens",
                [
                    ("id", Uuid::new_v4().into()),
                    ("session_id", live_session.into()),
                    ("token_hash", refresh::hash(LIVE_REFRESH).into()),
                    ("created_at", ago(1).into()),
                    ("expires_at", from_now(23).into()),
                    ("rotated_at", none_at.into()),
                    ("parent_id", none_id.into()),
                    ("superseded_at", none_at.into()),
                ],
            ),
            Row::new(
                "refresh_tokens",
                [
                    ("id", exchanged_token.into()),
                    ("session_id", exchanged_session.into()),
                    ("token_hash", refresh::hash(EXCHANGED_REFRESH).into()),
                    ("created_at", ago(48).into()),
                    ("expires_at", from_now(22).into()),
                    ("rotated_at", Some(ago(2)).into()),
                    ("parent_id", none_id.into()),
                    ("superseded_at", none_at.into()),
                ],
            ),
            Row::new(
                "refresh_tokens",
                [
                    ("id", Uuid::new_v4().into()),
                    ("session_id", exchanged_session.into()),
                    ("token_hash", refresh::hash("its successor").into()),
                    ("created_at", ago(2).into()),
                    ("expires_at", from_now(22).into()),
                    ("rotated_at", none_at.into()),
                    ("parent_id", Some(exchanged_token).into()),
                    ("superseded_at", none_at.into()),
                ],
            ),
            Row::new(
                "refresh_tokens",
                [
                    ("id", Uuid::new_v4().into()),
                    ("session_id", revoked_session.into()),
                    (
                        "token_hash",
                        refresh::hash("a token of a revoked session").into(),
                    ),
                    ("created_at", ago(24 * 11).into()),
                    ("expires_at", ago(24 * 10).into()),
                    ("rotated_at", none_at.into()),
                    ("parent_id", none_id.into()),
                    ("superseded_at", Some(ago(24 * 10)).into()),
                ],
            ),
            signing_key(SIGNING_KID, 1, ago(24 * 60), None),
            signing_key("kid-retired-long-ago", 2, ago(24 * 120), Some(ago(24 * 60))),
            Row::new(
                "rate_limits",
                [
                    ("key", "login_ip:203.0.113.9".into()),
                    (
                        "window_started_ms",
                        (now - Duration::seconds(30)).timestamp_millis().into(),
                    ),
                    ("hits", 3.into()),
                ],
            ),
            Row::new(
                "rate_limits",
                [
                    ("key", format!("refresh_session:{live_session}").into()),
                    (
                        "window_started_ms",
                        (now - Duration::seconds(10)).timestamp_millis().into(),
                    ),
                    ("hits", 12.into()),
                ],
            ),
            audit_event(
                "login",
                "success",
                Some(jane),
                r#"{"session_id":"s"}"#,
                ago(24),
            ),
            audit_event(
                "login",
                "failure",
                Some(jane),
                r#"{"reason":"wrong_password"}"#,
                ago(25),
            ),
            audit_event(
                "login",
                "failure",
                None,
                r#"{"email":"nobody@example.com"}"#,
                ago(26),
            ),
            audit_event("password_change", "failure", Some(jane), "{}", ago(27)),
            audit_event("registration", "success", Some(former), "{}", ago(24 * 90)),
            // A mail waiting for its retry (not due while the test runs).
            Row::new(
                "outbox",
                [
                    ("id", Uuid::new_v4().into()),
                    ("recipient", "newcomer@example.com".into()),
                    ("kind", "verification_code".into()),
                    ("subject", "Your verification code".into()),
                    ("body", r#"{"text":"…","html":"…"}"#.into()),
                    ("user_id", none_id.into()),
                    ("code_id", Some(Uuid::new_v4()).into()),
                    ("code_hash", Some("sha256:abc").into()),
                    ("created_at", ago(1).into()),
                    ("next_attempt_at", from_now(1).into()),
                    ("attempts", 2.into()),
                    ("claimed_until", none_at.into()),
                ],
            ),
        ]
    }

    /// The old rows as they must read after the upgrade: every old value, the new columns
    /// at their defaults, and what migration 4 rewrites on purpose (`status` from
    /// `is_active`, failed sign-ins and password changes renamed `…_failed`).
    fn rows_after_upgrade(&self, backend: DatabaseBackend) -> Vec<Row> {
        let none_at = None::<DateTime<Utc>>;
        let none_text = None::<String>;
        self.rows
            .iter()
            .map(|row| match row.table {
                "users" => {
                    let status = if row.value("is_active") == &Value::from(true) {
                        "active"
                    } else {
                        "disabled"
                    };
                    let mut upgraded = row.with([
                        ("username", none_text.clone().into()),
                        ("username_key", none_text.clone().into()),
                        ("status", status.into()),
                        ("deletion_scheduled_for", none_at.into()),
                        ("metadata", "{}".into()),
                        ("app_metadata", "{}".into()),
                        ("last_seen_at", none_at.into()),
                        ("mfa_methods", "[]".into()),
                    ]);
                    // Kept by PostgreSQL for the directory's search (migration 7).
                    if backend == DatabaseBackend::Postgres {
                        let text = |column| match row.value(column) {
                            Value::String(Some(text)) => text.to_lowercase(),
                            _ => String::new(),
                        };
                        let search = [
                            text("email"),
                            String::new(),
                            text("first_name"),
                            text("last_name"),
                        ];
                        upgraded = upgraded.with([("search_text", search.join("\u{1f}").into())]);
                    }
                    upgraded
                }
                "sessions" => row.with([
                    ("amr", r#"["pwd"]"#.into()),
                    ("trusted_device_id", None::<Uuid>.into()),
                ]),
                "audit_events" => {
                    let mut upgraded = row.with([
                        ("actor_id", None::<Uuid>.into()),
                        ("changes", none_text.clone().into()),
                    ]);
                    if row.value("outcome") == &Value::from("failure")
                        && let Value::String(Some(action)) = row.value("action")
                        && ["login", "password_change"].contains(&action.as_str())
                    {
                        upgraded = upgraded.with([("action", format!("{action}_failed").into())]);
                    }
                    upgraded
                }
                _ => row.clone(),
            })
            .collect()
    }
}

/// A signing key as the previous release stored it: PKCS#8 DER in base64 (no encryption keys
/// configured) and its public JWK.
fn signing_key(
    kid: &str,
    seed: u8,
    created_at: DateTime<Utc>,
    retired_at: Option<DateTime<Utc>>,
) -> Row {
    let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    let private_der = key.to_pkcs8_der().unwrap();
    let x = URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
    let jwk =
        json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"});
    Row::new(
        "signing_keys",
        [
            ("kid", kid.into()),
            ("algorithm", "EdDSA".into()),
            (
                "private_key",
                STANDARD.encode(private_der.as_bytes()).into(),
            ),
            ("public_jwk", jwk.to_string().into()),
            ("created_at", created_at.into()),
            ("retired_at", retired_at.into()),
        ],
    )
}

fn audit_event(
    action: &str,
    outcome: &str,
    user: Option<Uuid>,
    details: &str,
    at: DateTime<Utc>,
) -> Row {
    Row::new(
        "audit_events",
        [
            ("id", Uuid::new_v4().into()),
            ("occurred_at", at.into()),
            ("action", action.into()),
            ("outcome", outcome.into()),
            ("user_id", user.into()),
            ("ip", Some("203.0.113.9").into()),
            ("user_agent", None::<String>.into()),
            ("details", details.into()),
        ],
    )
}

async fn count(conn: &DatabaseConnection, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) AS n FROM {table}");
    let row = conn
        .query_one_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .expect("count query")
        .expect("a count row");
    row.try_get::<i64>("", "n").expect("a number")
}

/// One row of a table, its key column first, written and read back with plain SQL.
#[derive(Clone, Debug)]
struct Row {
    table: &'static str,
    columns: Vec<(&'static str, Value)>,
}

impl Row {
    fn new<const N: usize>(table: &'static str, columns: [(&'static str, Value); N]) -> Row {
        Row {
            table,
            columns: columns.into(),
        }
    }

    fn value(&self, column: &str) -> &Value {
        self.columns
            .iter()
            .find_map(|(name, value)| (*name == column).then_some(value))
            .unwrap_or_else(|| panic!("{} has no column {column}", self.table))
    }

    /// This row with `changes` applied: columns replaced or added.
    fn with<const N: usize>(&self, changes: [(&'static str, Value); N]) -> Row {
        let mut row = self.clone();
        for (column, value) in changes {
            match row.columns.iter_mut().find(|(name, _)| *name == column) {
                Some((_, old)) => *old = value,
                None => row.columns.push((column, value)),
            }
        }
        row
    }

    fn names(&self) -> String {
        let names: Vec<_> = self.columns.iter().map(|(name, _)| *name).collect();
        names.join(", ")
    }

    async fn insert(&self, conn: &DatabaseConnection) {
        let placeholders: Vec<_> = (1..=self.columns.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            self.table,
            self.names(),
            placeholders.join(", ")
        );
        let values = self.columns.iter().map(|(_, value)| value.clone());
        conn.execute_raw(Statement::from_sql_and_values(
            conn.get_database_backend(),
            sql,
            values,
        ))
        .await
        .unwrap_or_else(|err| panic!("insert into {}: {err}", self.table));
    }

    /// Asserts the table holds this row, column by column.
    async fn assert_stored(&self, conn: &DatabaseConnection) {
        let (key, key_value) = &self.columns[0];
        let sql = format!(
            "SELECT {} FROM {} WHERE {key} = $1",
            self.names(),
            self.table
        );
        let stored = conn
            .query_one_raw(Statement::from_sql_and_values(
                conn.get_database_backend(),
                sql,
                [key_value.clone()],
            ))
            .await
            .expect("the row is read")
            .unwrap_or_else(|| panic!("{} {key} = {key_value:?} is gone", self.table));
        for (column, expected) in &self.columns {
            assert_eq!(
                &read_like(&stored, column, expected),
                expected,
                "{}.{column} of {key} = {key_value:?}",
                self.table
            );
        }
    }
}

/// A column read as the type `like` holds.
fn read_like(row: &QueryResult, column: &str, like: &Value) -> Value {
    fn read<T: TryGetable + Into<Value>>(row: &QueryResult, column: &str) -> Value {
        row.try_get::<T>("", column)
            .unwrap_or_else(|err| panic!("{column}: {err}"))
            .into()
    }
    match like {
        Value::Bool(_) => read::<Option<bool>>(row, column),
        Value::Int(_) => read::<Option<i32>>(row, column),
        Value::BigInt(_) => read::<Option<i64>>(row, column),
        Value::String(_) => read::<Option<String>>(row, column),
        Value::Uuid(_) => read::<Option<Uuid>>(row, column),
        Value::ChronoDate(_) => read::<Option<NaiveDate>>(row, column),
        Value::ChronoDateTimeUtc(_) => read::<Option<DateTime<Utc>>>(row, column),
        other => panic!("no reader for {other:?}"),
    }
}
