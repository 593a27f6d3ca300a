//! Leaving (§10): deleting one's own account with a grace, restoring it, the purge when the
//! grace ends (exactly once, however many instances and `authgate purge` runs race), and what
//! a purge leaves behind: nothing personal.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use authgate::store::{self, audit, avatars, users};
use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    helpers::{Db, PASSWORD, Reply, TestApp},
    two_factor::{totp_code, user_with_totp},
};

pub(crate) const CONFIRMATION: &str = "delete my account";

pub(crate) fn user_id(signed_in: &Value) -> Uuid {
    signed_in["user"]["id"]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .expect("a user id")
}

/// Every audit event recorded about an account, oldest first.
pub(crate) async fn events_of(app: &TestApp, user_id: Uuid) -> Vec<audit::Model> {
    let mut events = audit::Entity::find()
        .filter(audit::Column::UserId.eq(user_id))
        .all(&app.state.db)
        .await
        .unwrap();
    events.sort_by_key(|event| (event.occurred_at, event.id));
    events
}

/// The actions of `events` named `action`.
pub(crate) fn named<'a>(events: &'a [audit::Model], action: &str) -> Vec<&'a audit::Model> {
    events
        .iter()
        .filter(|event| event.action == action)
        .collect()
}

/// Asserts that no event of the account says who the person was or where they came from.
#[track_caller]
pub(crate) fn assert_scrubbed(events: &[audit::Model], email: &str) {
    assert!(!events.is_empty());
    for event in events {
        assert_eq!(event.ip, None, "{event:?}");
        assert_eq!(event.user_agent, None, "{event:?}");
        assert!(!event.details.contains('@'), "{event:?}");
        let changes = event.changes.clone().unwrap_or_default();
        assert!(
            !changes.contains(email) && !changes.contains('@'),
            "{event:?}"
        );
    }
}

/// A sign-in from a browser that says what it is, so the trail has a user agent to forget.
pub(crate) async fn login_with_agent(app: &TestApp, email: &str) -> Reply {
    let response = app
        .client
        .post(format!("{}/auth/login", app.base))
        .header("user-agent", "Firefox/140.0")
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    Reply::read(response).await
}

/// An account picture, stored as the picture upload stores it.
pub(crate) async fn give_picture(app: &TestApp, user_id: Uuid) {
    avatars::Entity::insert(avatars::ActiveModel {
        user_id: sea_orm::Set(user_id),
        content_type: sea_orm::Set("image/png".into()),
        image: sea_orm::Set(vec![0x89, b'P', b'N', b'G']),
        etag: sea_orm::Set("\"picture\"".into()),
        updated_at: sea_orm::Set(chrono::Utc::now()),
    })
    .exec(&app.state.db)
    .await
    .unwrap();
}

/// An event whose details name the address, as an address change's would.
async fn record_event_naming(app: &TestApp, user_id: Uuid, email: &str) {
    let event = audit::NewEvent {
        action: "email_changed",
        outcome: "success",
        user_id: Some(user_id),
        ip: Some("203.0.113.9".into()),
        user_agent: Some("Firefox/140.0".into()),
        details: json!({"old_email": email, "new_email": "jane.new@example.com"}).to_string(),
        actor_id: None,
        changes: Some(
            json!({"email": {"before": email, "after": "jane.new@example.com"}, "role": {"before": "user", "after": "user"}})
                .to_string(),
        ),
    };
    audit::insert(&app.state.db, event, chrono::Utc::now())
        .await
        .unwrap();
}

pub(crate) async fn request_deletion(app: &TestApp, token: Option<&str>) -> Reply {
    app.request(
        Method::POST,
        "/auth/me/delete",
        token,
        Some(json!({"password": PASSWORD, "confirmation": CONFIRMATION})),
    )
    .await
}

/// Marks every account but `except` as pending deletion since yesterday: due for the purge.
pub(crate) async fn make_all_due(app: &TestApp, except: &str) {
    let yesterday = (chrono::Utc::now() - chrono::TimeDelta::days(1)).to_rfc3339();
    app.execute(&format!(
        "UPDATE users SET status = 'pending_deletion', is_active = false, \
         deletion_scheduled_for = '{yesterday}' WHERE email <> '{except}'"
    ))
    .await;
}

/// Registers `count` accounts (unverified: a purge does not care).
pub(crate) async fn register_many(app: &TestApp, count: usize) {
    for n in 0..count {
        app.register(&format!("leaver{n}@example.com"), PASSWORD)
            .await
            .expect(201, None);
    }
}

db_tests! {
    async fn deleting_your_account_signs_you_out_and_mails_when_it_goes(db: Db) {
        let app = TestApp::spawn(db).await;
        let jane = app.verified_user("jane@example.com").await;
        let token = jane["access"].as_str();

        let deleted = request_deletion(&app, token).await;

        deleted.expect(202, None);
        assert_eq!(deleted.body["status"], "pending_deletion");
        let on: chrono::DateTime<chrono::Utc> =
            deleted.body["deletion_scheduled_for"].as_str().unwrap().parse().unwrap();
        let expected = chrono::Utc::now() + chrono::TimeDelta::days(7);
        assert!((on - expected).num_seconds().abs() < 60, "{on}");
        app.get("/auth/me", token).await.expect(401, Some("unauthorized"));
        app.post("/auth/token/refresh", json!({"refresh": jane["refresh"]}))
            .await
            .expect(401, Some("invalid_refresh_token"));
        let mail = app.mail.to("jane@example.com").pop().unwrap();
        assert!(mail.subject().contains("deleted"), "{}", mail.subject());
        assert!(mail.data.contains(&on.format("%Y-%m-%d").to_string()), "{}", mail.data);
        assert!(mail.data.contains("/auth/restore"), "{}", mail.data);

        let refused = app.login("jane@example.com", PASSWORD).await;
        refused.expect(403, Some("account_pending_deletion"));
        assert_eq!(refused.body["can_restore"], true);
        let told: chrono::DateTime<chrono::Utc> =
            refused.body["deletion_scheduled_for"].as_str().unwrap().parse().unwrap();
        assert!((told - on).num_milliseconds().abs() < 1, "{told} {on}");
        app.login("jane@example.com", "wrong password").await.expect(401, Some("invalid_credentials"));
        let events = events_of(&app, user_id(&jane)).await;
        assert_eq!(named(&events, "deletion_requested").len(), 1);
    }

    async fn restoring_during_the_grace_keeps_the_account(db: Db) {
        let app = TestApp::spawn(db).await;
        app.verified_user("jane@example.com").await;
        let jane = app.login("jane@example.com", PASSWORD).await;
        request_deletion(&app, jane.body["access"].as_str()).await.expect(202, None);

        let restored = app
            .post("/auth/restore", json!({"login": "jane@example.com", "password": PASSWORD}))
            .await;

        restored.expect(200, None);
        assert_eq!(restored.body["user"]["status"], "active");
        assert_eq!(restored.body["user"]["deletion_scheduled_for"], Value::Null);
        app.get("/auth/me", restored.body["access"].as_str()).await.expect(200, None);
        app.clock.advance(Duration::from_secs(8 * 86_400));
        assert_eq!(app.state.purge.purge_due().await.unwrap(), 0);
        app.login("jane@example.com", PASSWORD).await.expect(200, None);
    }

    async fn with_two_factor_on_deletion_needs_a_code_too(db: Db) {
        let app = TestApp::spawn(db).await;
        let (jane, secret, _) = user_with_totp(&app, "jane@example.com").await;
        let token = jane["access"].as_str();
        let delete = |mfa_code: Option<String>| {
            let body = json!({"password": PASSWORD, "confirmation": CONFIRMATION, "mfa_code": mfa_code});
            app.request(Method::POST, "/auth/me/delete", token, Some(body))
        };

        let asked = delete(None).await;
        asked.expect(403, Some("mfa_required"));
        assert_eq!(asked.body["methods"], json!(["totp", "recovery_code"]));
        delete(Some("000000".into())).await.expect(400, Some("invalid_mfa_code"));
        app.get("/auth/me", token).await.expect(200, None);

        delete(Some(totp_code(&app, &secret, 0))).await.expect(202, None);
        app.clock.advance(Duration::from_secs(8 * 86_400));
        app.state.purge.purge_due().await.unwrap();
        for table in ["users", "mfa_factors", "recovery_codes"] {
            assert_eq!(app.count(table).await, 0, "{table} keeps something of the account");
        }
    }

    async fn deletion_needs_the_password_and_the_exact_confirmation(db: Db) {
        let app = TestApp::spawn(db).await;
        let jane = app.verified_user("jane@example.com").await;
        let token = jane["access"].as_str();
        let delete = |body: Value| app.request(Method::POST, "/auth/me/delete", token, Some(body));

        let wrong = delete(json!({"password": "not my password", "confirmation": CONFIRMATION})).await;
        wrong.expect(401, Some("invalid_credentials"));
        for (body, field) in [
            (json!({"password": PASSWORD}), "confirmation"),
            (json!({"password": PASSWORD, "confirmation": "Delete My Account"}), "confirmation"),
            (json!({"password": PASSWORD, "confirmation": "delete my account please"}), "confirmation"),
            (json!({"password": PASSWORD, "confirmation": true}), "confirmation"),
            (json!({"confirmation": CONFIRMATION}), "password"),
            (json!({"password": 12345678, "confirmation": CONFIRMATION}), "password"),
        ] {
            let refused = delete(body.clone()).await;
            refused.expect(400, Some("validation_failed"));
            assert!(!refused.field_problems(field).is_empty(), "{body}: {}", refused.text);
        }
        delete(json!([PASSWORD, CONFIRMATION])).await.expect(400, Some("validation_failed"));
        delete(json!({"password": "x".repeat(60_000), "confirmation": CONFIRMATION}))
            .await
            .expect(401, Some("invalid_credentials"));
        delete(json!({"password": "x".repeat(70_000), "confirmation": CONFIRMATION}))
            .await
            .expect(413, Some("payload_too_large"));
        let plain = app
            .client
            .post(format!("{}/auth/me/delete", app.base))
            .bearer_auth(token.unwrap())
            .header("content-type", "text/plain")
            .body(json!({"password": PASSWORD, "confirmation": CONFIRMATION}).to_string())
            .send()
            .await
            .unwrap();
        Reply::read(plain).await.expect(415, Some("unsupported_media_type"));
        app.request(
            Method::POST,
            "/auth/me/delete",
            None,
            Some(json!({"password": PASSWORD, "confirmation": CONFIRMATION})),
        )
        .await
        .expect(401, Some("unauthorized"));

        app.get("/auth/me", token).await.expect(200, None);
        let events = events_of(&app, user_id(&jane)).await;
        assert_eq!(named(&events, "deletion_failed").len(), 2, "each wrong password is recorded");
        assert!(named(&events, "deletion_requested").is_empty());
    }

    async fn wrong_passwords_count_against_the_login_lockout(db: Db) {
        let app = TestApp::spawn_with(db, |config| {
            config.limits.login_account = Some(authgate::config::Limit { count: 3, window: Duration::from_secs(900) });
        })
        .await;
        let jane = app.verified_user("jane@example.com").await;
        let wrong = json!({"password": "not my password", "confirmation": CONFIRMATION});
        for _ in 0..3 {
            app.request(Method::POST, "/auth/me/delete", jane["access"].as_str(), Some(wrong.clone()))
                .await
                .expect(401, Some("invalid_credentials"));
        }

        app.login("jane@example.com", PASSWORD).await.expect(429, Some("rate_limited"));
        request_deletion(&app, jane["access"].as_str()).await.expect(429, Some("rate_limited"));
        app.get("/auth/me", jane["access"].as_str()).await.expect(200, None);
    }

    async fn when_the_grace_ends_the_account_is_purged_and_its_trail_scrubbed(db: Db) {
        let app = TestApp::spawn(db).await;
        app.post(
            "/auth/register",
            json!({"email": "jane@example.com", "password": PASSWORD, "password2": PASSWORD, "username": "Jane.Doe"}),
        )
        .await
        .expect(201, None);
        let code = app.mail.latest_code("jane@example.com");
        let jane = app.post("/auth/verify-otp", json!({"email": "jane@example.com", "otp": code})).await.body;
        let id = user_id(&jane);
        let signed_in = login_with_agent(&app, "jane@example.com").await;
        let token = signed_in.body["access"].as_str();
        app.request(
            Method::PATCH,
            "/auth/me",
            token,
            Some(json!({"first_name": "Janet", "profile": {"bio": "Physics"}, "metadata": {"team": "blue"}})),
        )
        .await
        .expect(200, None);
        give_picture(&app, id).await;
        record_event_naming(&app, id, "jane@example.com").await;
        app.post("/auth/forgot-password", json!({"email": "jane@example.com"})).await.expect(200, None);
        // The notice of the deletion is still waiting in the outbox when the purge comes.
        app.mail.refuse_mail(true);
        request_deletion(&app, token).await.expect(202, None);
        for table in ["profiles", "avatars", "sessions", "refresh_tokens", "one_time_codes", "outbox"] {
            assert!(app.count(table).await > 0, "{table} has nothing of the account to purge");
        }

        app.clock.advance(Duration::from_secs(7 * 86_400 - 60));
        assert_eq!(app.state.purge.purge_due().await.unwrap(), 0, "not before the grace ends");
        assert_eq!(app.count("users").await, 1);
        app.clock.advance(Duration::from_secs(61));
        app.state.purge.purge_due().await.unwrap();

        for table in ["users", "profiles", "avatars", "sessions", "refresh_tokens", "one_time_codes", "outbox"] {
            assert_eq!(app.count(table).await, 0, "{table} keeps something of the account");
        }
        let events = events_of(&app, id).await;
        assert_scrubbed(&events, "jane@example.com");
        for kept in ["registration", "verification", "login", "account_updated", "deletion_requested"] {
            assert!(!named(&events, kept).is_empty(), "the {kept} event keeps its type");
        }
        let changed = named(&events, "email_changed");
        assert_eq!(changed[0].changes.as_deref(), Some(r#"{"role":{"after":"user","before":"user"}}"#));
        assert_eq!(named(&events, "account_updated")[0].changes, None, "names and metadata go");
        let purged = named(&events, "account_purged");
        assert_eq!(purged.len(), 1);
        assert_eq!(purged[0].actor_id, None);
        assert_eq!(purged[0].details, r#"{"trigger":"schedule"}"#);
        assert_eq!(app.state.purge.purge_due().await.unwrap(), 0, "purged once");

        app.mail.refuse_mail(false);
        app.post(
            "/auth/register",
            json!({"email": "jane@example.com", "password": PASSWORD, "password2": PASSWORD, "username": "jane.doe"}),
        )
        .await
        .expect(201, None);
    }

    async fn with_no_grace_the_account_goes_at_once(db: Db) {
        let app = TestApp::spawn_with(db, |config| config.deletion_grace = Duration::ZERO).await;
        let jane = app.verified_user("jane@example.com").await;
        let id = user_id(&jane);
        let before = chrono::Utc::now();

        let deleted = request_deletion(&app, jane["access"].as_str()).await;

        deleted.expect(202, None);
        // The contract's one answer, though nothing is pending: the account is gone already.
        assert_eq!(deleted.body["status"], "pending_deletion");
        let at: chrono::DateTime<chrono::Utc> =
            deleted.body["deletion_scheduled_for"].as_str().unwrap().parse().unwrap();
        assert!((at - before).num_seconds().abs() < 60);
        assert_eq!(app.count("users").await, 0);
        assert_eq!(app.count("sessions").await, 0);
        assert!(!app.mail.to("jane@example.com").iter().any(|mail| mail.subject().contains("deleted")));
        app.login("jane@example.com", PASSWORD).await.expect(401, Some("invalid_credentials"));
        let events = events_of(&app, id).await;
        assert_scrubbed(&events, "jane@example.com");
        assert_eq!(named(&events, "deletion_requested").len(), 1);
        assert_eq!(named(&events, "account_purged")[0].details, r#"{"trigger":"owner"}"#);
        app.verified_user("jane@example.com").await;
    }

    async fn the_last_active_admin_cannot_leave(db: Db) {
        let app = TestApp::spawn(db).await;
        let boss = app.verified_user("boss@example.com").await;
        app.execute("UPDATE users SET role = 'admin' WHERE email = 'boss@example.com'").await;

        request_deletion(&app, boss["access"].as_str()).await.expect(409, Some("last_admin"));
        app.get("/auth/me", boss["access"].as_str()).await.expect(200, None);

        app.verified_user("deputy@example.com").await;
        app.execute("UPDATE users SET role = 'admin' WHERE email = 'deputy@example.com'").await;
        request_deletion(&app, boss["access"].as_str()).await.expect(202, None);
    }

    async fn of_two_transactions_racing_for_one_account_one_claims_it(db: Db) {
        let first = TestApp::spawn(db.clone()).await;
        let second = first.spawn_alongside(|_| {}).await;
        register_many(&first, 1).await;
        // Due tomorrow, claimed as of the day after: the apps' own purges (their clocks read
        // today) never take it first.
        let tomorrow = (chrono::Utc::now() + chrono::TimeDelta::days(1)).to_rfc3339();
        first
            .execute(&format!(
                "UPDATE users SET status = 'pending_deletion', is_active = false, deletion_scheduled_for = '{tomorrow}'"
            ))
            .await;
        let id = users::Entity::find().one(&first.state.db).await.unwrap().unwrap().id;
        let now = chrono::Utc::now() + chrono::TimeDelta::days(2);

        let won = store::begin(&first.state.db).await.unwrap();
        assert!(users::delete_if_due(&won, id, now).await.unwrap());
        let lost = match db {
            Db::Postgres(_) => {
                // Both found the account due; the second's claim waits for the first's commit,
                // then finds no row.
                let other = store::begin(&second.state.db).await.unwrap();
                assert!(users::find(&other, id).await.unwrap().is_some());
                let racing = tokio::spawn(async move { users::delete_if_due(&other, id, now).await });
                tokio::time::sleep(Duration::from_millis(300)).await;
                assert!(!racing.is_finished(), "the second claim waits for the first");
                won.commit().await.unwrap();
                racing.await.unwrap().unwrap()
            }
            Db::Sqlite => {
                // One write transaction at a time: the second begins once the first committed.
                won.commit().await.unwrap();
                let other = store::begin(&second.state.db).await.unwrap();
                users::delete_if_due(&other, id, now).await.unwrap()
            }
        };

        assert!(!lost, "an account is claimed once");
    }

    async fn two_instances_purge_a_burst_exactly_once(db: Db) {
        const ACCOUNTS: usize = 12;
        let first = TestApp::spawn(db).await;
        let second = first.spawn_alongside(|_| {}).await;
        register_many(&first, ACCOUNTS).await;
        make_all_due(&first, "").await;

        let (a, b, c, d) = tokio::join!(
            first.state.purge.purge_due(),
            second.state.purge.purge_due(),
            first.state.purge.purge_due(),
            second.state.purge.purge_due(),
        );

        let claimed = a.unwrap() + b.unwrap() + c.unwrap() + d.unwrap();
        // The housekeeping of either instance may have taken some; none is purged twice.
        assert!(claimed <= ACCOUNTS, "{claimed}");
        assert_eq!(first.count("users").await, 0);
        assert_eq!(
            first.count_where("audit_events", "action = 'account_purged'").await,
            ACCOUNTS as i64
        );
    }
}

/// An `authgate` process on `database_url`, as deployed: `serve` or a one-shot command.
fn authgate(args: &[&str], database_url: &str, folder: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_authgate"));
    command
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("AUTHGATE_METRICS_LISTEN", "off")
        .env("AUTHGATE_MAIL", format!("file://{}", folder.display()))
        .env("AUTHGATE_ARGON2", "m=64,t=1,p=1")
        .env("RUST_LOG", "error");
    command
}

/// Two serving instances and two `authgate purge` runs, started together on one PostgreSQL
/// database with a burst of due accounts: each account is purged exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_on_one_postgres_purge_each_account_exactly_once() {
    let Some(db) = Db::postgres() else {
        eprintln!("TEST_DATABASE_URL is not set: multi-process purge test skipped");
        return;
    };
    const ACCOUNTS: usize = 40;
    let app = TestApp::spawn(db).await;
    register_many(&app, ACCOUNTS).await;
    let scratch = tempfile::tempdir().unwrap();
    let folder = scratch.path();
    make_all_due(&app, "").await;

    let mut servers: Vec<std::process::Child> = (0..2)
        .map(|_| {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            authgate(&["serve"], &app.database_url, folder)
                .env("AUTHGATE_LISTEN", format!("127.0.0.1:{port}"))
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let runs: Vec<std::process::Child> = (0..2)
        .map(|_| {
            authgate(&["purge"], &app.database_url, folder)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs = tokio::task::spawn_blocking(move || {
        runs.into_iter()
            .map(|run| run.wait_with_output().unwrap())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let started = Instant::now();
    while app.count("users").await > 0 && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for server in &mut servers {
        let _ = server.kill();
        let _ = server.wait();
    }

    let mut claimed = 0;
    for output in &outputs {
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let count: usize = stdout
            .strip_prefix("purged ")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected output {stdout:?}"));
        claimed += count;
    }
    assert!(claimed <= ACCOUNTS, "{claimed}");
    assert_eq!(app.count("users").await, 0);
    assert_eq!(
        app.count_where("audit_events", "action = 'account_purged'")
            .await,
        ACCOUNTS as i64,
        "every account purged exactly once"
    );
}
