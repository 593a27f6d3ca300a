//! The admin directory (§10): who may call it, finding accounts (filters, sorts, keyset
//! pagination), creating them, reading and editing one, reverting edits, lifting lockouts,
//! reset codes, sessions, the audit trail, the figures, and the `users` command line.

use std::{process::Stdio, time::Duration};

use authgate::config::{Limit, Limits};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    helpers::{Db, PASSWORD, Reply, TestApp},
    tokens::claims_of,
    two_factor::{mfa_token, totp_code, user_with_totp, verify},
};

/// Registers and verifies `email`, makes it an admin, and signs in again: the admin's access
/// token and id.
async fn admin(app: &TestApp, email: &str) -> (String, String) {
    app.verified_user(email).await;
    app.execute(&format!(
        "UPDATE users SET role = 'admin' WHERE email = '{email}'"
    ))
    .await;
    let signed_in = app.login(email, PASSWORD).await;
    signed_in.expect(200, None);
    (
        signed_in.body["access"].as_str().unwrap().to_string(),
        signed_in.body["user"]["id"].as_str().unwrap().to_string(),
    )
}

/// A verified user: the verify-otp answer (`user`, `access`, `refresh`).
async fn user(app: &TestApp, email: &str) -> Value {
    app.verified_user(email).await
}

fn id_of(body: &Value) -> String {
    body["user"]["id"].as_str().unwrap().to_string()
}

async fn get(app: &TestApp, path: &str, token: &str) -> Reply {
    app.get(path, Some(token)).await
}

async fn call(app: &TestApp, method: Method, path: &str, token: &str, body: Value) -> Reply {
    app.request(method, path, Some(token), Some(body)).await
}

fn emails(page: &Reply) -> Vec<String> {
    page.body["users"]
        .as_array()
        .unwrap_or_else(|| panic!("no users: {}", page.text))
        .iter()
        .map(|user| user["email"].as_str().unwrap().to_string())
        .collect()
}

/// Every page of a listing, following `next_cursor`; `between` runs before each next page.
async fn every_page(
    app: &TestApp,
    token: &str,
    query: &str,
    between: impl AsyncFn(usize),
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for page_number in 0.. {
        let path = match &cursor {
            Some(cursor) => format!("/admin/users?{query}&cursor={cursor}"),
            None => format!("/admin/users?{query}"),
        };
        let page = get(app, &path, token).await;
        page.expect(200, None);
        seen.extend(emails(&page));
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
        between(page_number).await;
    }
    seen
}

/// The newest audit event named `event` (the clock does not move in these tests, so events
/// at one instant list by their time-ordered ids).
async fn latest_event(app: &TestApp, token: &str, event: &str) -> Value {
    let page = get(app, &format!("/admin/audit?event={event}&limit=1"), token).await;
    page.expect(200, None);
    page.body["events"][0].clone()
}

fn minutes(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}

/// The app's clock.
fn now(app: &TestApp) -> chrono::DateTime<chrono::Utc> {
    authgate::clock::Clock::now(&app.clock)
}

/// A fresh access token of the admin, after the clock moved past the old one's lifetime.
async fn sign_in_again(app: &TestApp, email: &str) -> String {
    let signed_in = app.login(email, PASSWORD).await;
    signed_in.expect(200, None);
    signed_in.body["access"].as_str().unwrap().to_string()
}

/// Inserts `count` verified accounts `bulk0000@example.com`… straight into the database (a
/// registration each would take minutes), created a second apart before the clock's now,
/// the odd ones named "Rare".
async fn insert_accounts(app: &TestApp, count: usize) {
    use authgate::store::{profiles, users};
    use sea_orm::{ActiveValue::Set, EntityTrait};
    let now = now(app);
    let mut rows = Vec::new();
    let mut profile_rows = Vec::new();
    for n in 0..count {
        let id = uuid::Uuid::now_v7();
        let created_at = now - chrono::TimeDelta::seconds(10_000 - n as i64);
        rows.push(users::ActiveModel {
            id: Set(id),
            email: Set(format!("bulk{n:04}@example.com")),
            password_hash: Set(String::from("not a hash").into()),
            first_name: Set(if n % 500 == 1 {
                "Rare".into()
            } else {
                "Bulk".into()
            }),
            last_name: Set("Account".into()),
            phone_number: Set(None),
            role: Set("user".into()),
            is_verified: Set(true),
            is_active: Set(true),
            created_at: Set(created_at),
            updated_at: Set(created_at),
            last_login_at: Set((n % 3 == 0).then_some(created_at)),
            registrations: Set(1),
            username: Set(None),
            username_key: Set(None),
            status: Set("active".into()),
            deletion_scheduled_for: Set(None),
            metadata: Set("{}".into()),
            app_metadata: Set("{}".into()),
            last_seen_at: Set(None),
            mfa_methods: Set("[]".into()),
        });
        profile_rows.push(profiles::ActiveModel::from(profiles::empty(id)));
        if rows.len() == 200 {
            users::Entity::insert_many(std::mem::take(&mut rows))
                .exec(&app.state.db)
                .await
                .unwrap();
            profiles::Entity::insert_many(std::mem::take(&mut profile_rows))
                .exec(&app.state.db)
                .await
                .unwrap();
        }
    }
    if !rows.is_empty() {
        users::Entity::insert_many(rows)
            .exec(&app.state.db)
            .await
            .unwrap();
        profiles::Entity::insert_many(profile_rows)
            .exec(&app.state.db)
            .await
            .unwrap();
    }
}

db_tests! {
    async fn every_admin_route_needs_a_token_of_an_admin(db: Db) {
        let app = TestApp::spawn(db).await;
        let (admin_token, _) = admin(&app, "admin@example.com").await;
        let target = user(&app, "target@example.com").await;
        let user_token = target["access"].as_str().unwrap().to_string();
        let uid = id_of(&target);
        let sid = claims_of(&user_token)["sid"].as_str().unwrap().to_string();

        // In an order where each admin call leaves what the next needs.
        let routes: Vec<(Method, String, Option<Value>, u16)> = vec![
            (Method::GET, "/admin/users".into(), None, 200),
            (Method::POST, "/admin/users".into(), Some(json!({"email": "new@example.com", "password": PASSWORD})), 201),
            (Method::GET, format!("/admin/users/{uid}"), None, 200),
            (Method::PATCH, format!("/admin/users/{uid}"), Some(json!({"first_name": "Tara"})), 200),
            (Method::POST, format!("/admin/users/{uid}/unlock"), None, 204),
            (Method::POST, format!("/admin/users/{uid}/password-reset"), None, 202),
            (Method::POST, format!("/admin/users/{uid}/mfa/reset"), None, 200),
            (Method::GET, format!("/admin/users/{uid}/sessions"), None, 200),
            (Method::DELETE, format!("/admin/users/{uid}/sessions/{sid}"), None, 204),
            (Method::GET, "/admin/audit".into(), None, 200),
            (Method::GET, "/admin/stats".into(), None, 200),
        ];
        for (method, path, body, success) in routes {
            let anonymous = app.request(method.clone(), &path, None, body.clone()).await;
            anonymous.expect(401, Some("unauthorized"));
            assert_eq!(anonymous.header("www-authenticate"), Some("Bearer"), "{method} {path}");
            app.request(method.clone(), &path, Some(&user_token), body.clone())
                .await
                .expect(403, Some("forbidden"));
            let allowed = app.request(method.clone(), &path, Some(&admin_token), body).await;
            assert_eq!(allowed.status.as_u16(), success, "{method} {path}: {}", allowed.text);
        }

        let edit = latest_event(&app, &admin_token, "account_updated").await;
        let revert = format!("/admin/audit/{}/revert", edit["id"].as_str().unwrap());
        app.request(Method::POST, &revert, None, None).await.expect(401, Some("unauthorized"));
        app.request(Method::POST, &revert, Some(&user_token), None).await.expect(403, Some("forbidden"));
        app.request(Method::POST, &revert, Some(&admin_token), None).await.expect(200, None);
    }

    async fn admins_need_a_second_factor_when_their_role_requires_one(db: Db) {
        let app = TestApp::spawn_with(db, |config| config.mfa_required_roles = vec!["admin".into()]).await;
        let (signed_in, secret, _) = user_with_totp(&app, "admin@example.com").await;
        app.execute("UPDATE users SET role = 'admin' WHERE email = 'admin@example.com'").await;

        let password_only = signed_in["access"].as_str().unwrap();
        let someone = id_of(&user(&app, "someone@example.com").await);
        for (method, path) in [
            (Method::GET, "/admin/users".to_string()),
            (Method::GET, "/admin/stats".into()),
            (Method::GET, "/admin/audit".into()),
            (Method::POST, format!("/admin/users/{someone}/disable")),
            (Method::POST, format!("/admin/users/{someone}/mfa/reset")),
        ] {
            let path = path.as_str();
            let refused = app.request(method, path, Some(password_only), None).await;
            refused.expect(403, Some("mfa_required"));
            assert_eq!(refused.body["methods"], json!(["totp"]), "{}", refused.text);
        }
        let token = mfa_token(&app, "admin@example.com").await;
        let with_code = verify(&app, &token, "totp", &totp_code(&app, &secret, 0)).await;
        with_code.expect(200, None);
        get(&app, "/admin/users", with_code.body["access"].as_str().unwrap()).await.expect(200, None);
    }

    async fn an_admin_resets_the_second_factors_of_an_owner_who_lost_them(db: Db) {
        let app = TestApp::spawn(db).await;
        let (admin_token, admin_id) = admin(&app, "admin@example.com").await;
        let (signed_in, secret, recovery_codes) = user_with_totp(&app, "jane@example.com").await;
        let jane = id_of(&signed_in);
        let token = mfa_token(&app, "jane@example.com").await;
        let remembered = app
            .post("/auth/mfa/verify", json!({"mfa_token": token, "method": "totp",
                "code": totp_code(&app, &secret, 0), "remember_device": true}))
            .await;
        remembered.expect(200, None);
        let device_token = remembered.body["device_token"].as_str().unwrap().to_string();
        app.post("/auth/login", json!({"email": "jane@example.com", "password": PASSWORD}))
            .await
            .expect(403, Some("mfa_required"));
        let pending = mfa_token(&app, "jane@example.com").await;

        call(&app, Method::POST, &format!("/admin/users/{}/mfa/reset", uuid::Uuid::new_v4()), &admin_token, json!(null))
            .await
            .expect(404, Some("not_found"));
        let reset = call(&app, Method::POST, &format!("/admin/users/{jane}/mfa/reset"), &admin_token, json!(null)).await;

        reset.expect(200, None);
        assert_eq!(reset.body["id"], jane.as_str());
        assert_eq!(reset.body["mfa"], json!({"enabled": false, "methods": []}));
        // The password alone signs in; nothing of the old factors works any more.
        let password_only = app.login("jane@example.com", PASSWORD).await;
        password_only.expect(200, None);
        assert_eq!(claims_of(password_only.body["access"].as_str().unwrap())["amr"], json!(["pwd"]));
        verify(&app, &pending, "recovery_code", &recovery_codes[0]).await.expect(401, None);
        assert!(app.get("/auth/devices", password_only.body["access"].as_str()).await.body.as_array().unwrap().is_empty());
        assert_eq!(app.count_where("mfa_factors", &format!("user_id = '{jane}'")).await, 0);
        assert_eq!(app.count_where("recovery_codes", &format!("user_id = '{jane}'")).await, 0);
        let with_old_device = app
            .post("/auth/login", json!({"email": "jane@example.com", "password": PASSWORD, "device_token": device_token}))
            .await;
        with_old_device.expect(200, None);
        assert_eq!(claims_of(with_old_device.body["access"].as_str().unwrap())["amr"], json!(["pwd"]), "the device is no longer trusted");
        app.mail.eventually(|mail| mail.iter().filter(|m| m.subject().contains("second factors were reset")).count()).await;
        assert_eq!(app.mail.to("jane@example.com").last().unwrap().subject(), "Your second factors were reset");
        let event = latest_event(&app, &admin_token, "mfa_reset").await;
        assert_eq!(event["user_id"], jane.as_str());
        assert_eq!(event["actor_id"], admin_id.as_str());
    }

    async fn accounts_are_found_by_text_role_status_verification_and_date(db: Db) {
        let app = TestApp::spawn(db).await;
        let (token, _) = admin(&app, "root.admin@example.com").await;
        app.clock.advance(Duration::from_secs(10));
        let created_from = now(&app);
        for (email, first, last, username) in [
            ("ada@example.com", "Ada", "Lovelace", "countess"),
            ("alan@example.org", "Alan", "Turing", "enigma"),
            ("grace@example.com", "Grace", "Hopper", "cobol_50%"),
        ] {
            app.clock.advance(Duration::from_secs(10));
            call(&app, Method::POST, "/admin/users", &token, json!({
                "email": email, "first_name": first, "last_name": last, "password": PASSWORD,
            }))
            .await
            .expect(201, None);
            app.execute(&format!("UPDATE users SET username = '{username}', username_key = '{}' WHERE email = '{email}'", username.to_lowercase())).await;
        }
        app.clock.advance(Duration::from_secs(10));
        app.register("pending@example.com", PASSWORD).await.expect(201, None);
        app.execute("UPDATE users SET status = 'disabled', is_active = false WHERE email = 'alan@example.org'").await;

        let find = async |query: &str| {
            let page = get(&app, &format!("/admin/users?{query}"), &token).await;
            page.expect(200, None);
            let mut found = emails(&page);
            found.sort();
            assert_eq!(page.body["total"], found.len(), "{query}: {}", page.text);
            found
        };
        assert_eq!(find("q=LOVE").await, ["ada@example.com"], "last name, any case");
        assert_eq!(find("q=gRaCe").await, ["grace@example.com"], "first name and address");
        assert_eq!(find("q=EXAMPLE.ORG").await, ["alan@example.org"], "address");
        assert_eq!(find("q=enig").await, ["alan@example.org"], "username");
        assert_eq!(find("q=50%25").await, ["grace@example.com"], "% is searched for, not a wildcard");
        assert_eq!(find("q=_").await, ["grace@example.com"], "_ too");
        assert!(find("q=nobody").await.is_empty());
        assert!(find("q=ada%20lovelace").await.is_empty(), "a match never spans two fields");
        assert_eq!(find("role=admin").await, ["root.admin@example.com"]);
        assert_eq!(find("status=disabled").await, ["alan@example.org"]);
        assert_eq!(find("verified=false").await, ["pending@example.com"]);
        assert_eq!(find("verified=true&status=active&q=example.com").await.len(), 3);
        app.execute(r#"UPDATE users SET mfa_methods = '["totp"]' WHERE email = 'grace@example.com'"#).await;
        assert_eq!(find("mfa=true").await, ["grace@example.com"]);
        assert_eq!(find("mfa=false").await.len(), 4);
        let from = created_from.to_rfc3339_opts(chrono::SecondsFormat::Micros, true).replace('+', "%2B");
        assert_eq!(find(&format!("created_after={from}")).await.len(), 4);
        assert_eq!(find(&format!("created_before={from}")).await, ["root.admin@example.com"]);
        assert_eq!(find("created_after=2000-01-01T00:00:00Z&created_before=2000-01-02T00:00:00Z").await.len(), 0);
    }

    async fn accounts_are_listed_in_each_order(db: Db) {
        let app = TestApp::spawn(db).await;
        let (token, _) = admin(&app, "m.admin@example.com").await;
        for email in ["c@example.com", "a@example.com", "b@example.com"] {
            app.clock.advance(Duration::from_secs(10));
            app.verified_user(email).await;
        }
        app.clock.advance(Duration::from_secs(10));
        app.login("b@example.com", PASSWORD).await.expect(200, None);
        app.clock.advance(Duration::from_secs(10));
        app.login("c@example.com", PASSWORD).await.expect(200, None);
        app.register("never@example.com", PASSWORD).await.expect(201, None);

        let order = async |sort: &str| emails(&get(&app, &format!("/admin/users?sort={sort}"), &token).await);
        let newest_first = ["never@example.com", "b@example.com", "a@example.com", "c@example.com", "m.admin@example.com"];
        assert_eq!(order("-created_at").await, newest_first);
        assert_eq!(emails(&get(&app, "/admin/users", &token).await), newest_first, "the default");
        let oldest_first: Vec<_> = newest_first.iter().rev().copied().collect();
        assert_eq!(order("created_at").await, oldest_first);
        assert_eq!(order("email").await, ["a@example.com", "b@example.com", "c@example.com", "m.admin@example.com", "never@example.com"]);
        let by_login = order("-last_login_at").await;
        assert_eq!(&by_login[..2], ["c@example.com", "b@example.com"]);
        assert_eq!(by_login.last().unwrap(), "never@example.com", "never signed in comes last");
    }

    async fn pages_neither_repeat_nor_skip_when_accounts_are_added_meanwhile(db: Db) {
        let app = TestApp::spawn(db).await;
        let (token, _) = admin(&app, "admin@example.com").await;
        let mut existing = vec!["admin@example.com".to_string()];
        for n in 0..7 {
            app.clock.advance(Duration::from_secs(1));
            let email = format!("user{n}@example.com");
            // Half of them signed in (verification does), so pages of -last_login_at end
            // among those who did, among those who never did, and across the two.
            if n % 2 == 0 {
                app.verified_user(&email).await;
            } else {
                app.register(&email, PASSWORD).await.expect(201, None);
            }
            existing.push(email);
        }
        existing.sort();

        let added = std::cell::Cell::new(0);
        for sort in ["-created_at", "created_at", "email", "-last_login_at"] {
            let seen = every_page(&app, &token, &format!("sort={sort}&limit=3"), async |_| {
                // A new account at each page boundary: the newest, and one sorting in the middle.
                added.set(added.get() + 1);
                app.clock.advance(Duration::from_secs(1));
                app.register(&format!("inserted{}@example.com", added.get()), PASSWORD).await.expect(201, None);
                app.register(&format!("user3a{}@example.com", added.get()), PASSWORD).await.expect(201, None);
            })
            .await;
            let mut old: Vec<String> = seen.iter().filter(|email| existing.contains(email)).cloned().collect();
            old.sort();
            assert_eq!(old, existing, "{sort}: every account there at the start, once: {seen:?}");
            let mut unique = seen.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), seen.len(), "{sort}: no account twice: {seen:?}");
        }
    }

    async fn bad_query_values_are_refused_under_their_names(db: Db) {
        let app = TestApp::spawn(db).await;
        let (token, _) = admin(&app, "admin@example.com").await;
        for n in 0..3 {
            app.register(&format!("user{n}@example.com"), PASSWORD).await.expect(201, None);
        }
        let first = get(&app, "/admin/users?limit=1", &token).await;
        first.expect(200, None);
        assert_eq!(first.body["total"], 4);
        assert_eq!(first.body["users"].as_array().unwrap().len(), 1);
        let cursor = first.body["next_cursor"].as_str().unwrap().to_string();
        get(&app, &format!("/admin/users?limit=1&cursor={cursor}"), &token).await.expect(200, None);

        let mut edited = cursor.clone().into_bytes();
        edited[cursor.len() / 2] = if edited[cursor.len() / 2] == b'A' { b'B' } else { b'A' };
        let edited = String::from_utf8(edited).unwrap();
        let huge = "x".repeat(5_000);
        let cases: Vec<(String, &str)> = vec![
            ("limit=0".into(), "limit"),
            ("limit=201".into(), "limit"),
            ("limit=ten".into(), "limit"),
            ("limit=-1".into(), "limit"),
            ("sort=password_hash".into(), "sort"),
            ("sort=-email".into(), "sort"),
            ("verified=yes".into(), "verified"),
            ("mfa=1".into(), "mfa"),
            ("status=deleted".into(), "status"),
            ("role=wizard".into(), "role"),
            ("created_after=yesterday".into(), "created_after"),
            ("created_before=2026-13-01T00:00:00Z".into(), "created_before"),
            (format!("q={huge}"), "q"),
            ("q=jane%1Fdoe".into(), "q"),
            (format!("cursor={edited}"), "cursor"),
            ("cursor=not-a-cursor".into(), "cursor"),
            (format!("cursor={cursor}&sort=email"), "cursor"),
            (format!("cursor={}", &cursor[..cursor.len() - 2]), "cursor"),
            (format!("cursor={huge}"), "cursor"),
        ];
        for (query, field) in cases {
            let refused = get(&app, &format!("/admin/users?{query}"), &token).await;
            refused.expect(400, Some("validation_failed"));
            assert!(!refused.field_problems(field).is_empty(), "{query}: {}", refused.text);
        }
        let both = get(&app, "/admin/users?limit=0&verified=maybe", &token).await;
        assert_eq!(both.body["fields"].as_object().unwrap().len(), 2, "every problem at once: {}", both.text);

        let cases: Vec<(String, &str)> = vec![
            ("user_id=42".into(), "user_id"),
            ("actor_id=admin".into(), "actor_id"),
            ("since=last%20week".into(), "since"),
            ("until=2026-02-30T00:00:00Z".into(), "until"),
            ("limit=0".into(), "limit"),
            ("limit=201".into(), "limit"),
            (format!("event={huge}"), "event"),
            (format!("cursor={cursor}"), "cursor"),
            ("cursor=%F0%9F%A6%80".into(), "cursor"),
        ];
        for (query, field) in cases {
            let refused = get(&app, &format!("/admin/audit?{query}"), &token).await;
            refused.expect(400, Some("validation_failed"));
            assert!(!refused.field_problems(field).is_empty(), "{query}: {}", refused.text);
        }
    }

    async fn an_admin_creates_a_ready_account_with_a_password(db: Db) {
        let app = TestApp::spawn(db).await;
        let (token, admin_id) = admin(&app, "admin@example.com").await;

        let created = call(&app, Method::POST, "/admin/users", &token, json!({
            "email": " New.Hire@Example.com ", "role": "admin", "username": "new.hire",
            "first_name": "New", "last_name": "Hire", "password": PASSWORD,
        }))
        .await;
        created.expect(201, None);
        assert_eq!(created.body["email"], "new.hire@example.com");
        assert_eq!(created.body["role"], "admin");
        assert_eq!(created.body["username"], "new.hire");
        assert_eq!(created.body["is_verified"], true);
        assert_eq!(created.body["status"], "active");
        assert!(created.body.get("password").is_none() && !created.text.contains("argon2"));
        app.login("new.hire@example.com", PASSWORD).await.expect(200, None);
        let event = latest_event(&app, &token, "account_created").await;
        assert_eq!(event["user_id"], created.body["id"]);
        assert_eq!(event["actor_id"], admin_id.as_str());
        assert_eq!(event["details"]["invited"], false);

        let default_role = call(&app, Method::POST, "/admin/users", &token, json!({"email": "plain@example.com", "password": PASSWORD})).await;
        default_role.expect(201, None);
        assert_eq!(default_role.body["role"], "user");

        app.register("unverified@example.com", PASSWORD).await.expect(201, None);
        for taken in ["new.hire@example.com", "unverified@example.com"] {
            call(&app, Method::POST, "/admin/users", &token, json!({"email": taken, "password": PASSWORD}))
                .await
                .expect(409, Some("email_taken"));
        }
        call(&app, Method::POST, "/admin/users", &token, json!({"email": "other@example.com", "username": "NEW.HIRE", "password": PASSWORD}))
            .await
            .expect(409, Some("username_taken"));

        let users_before = app.count("users").await;
        for (body, field) in [
            (json!({"email": "x@example.com", "password": "12345678"}), "password"),
            (json!({"email": "x@example.com", "password": "short"}), "password"),
            (json!({"email": "x@example.com", "password": "x@example.com"}), "password"),
            (json!({"email": "x@example.com", "password": ""}), "password"),
            (json!({"email": "x@example.com", "password": "y".repeat(2_000)}), "password"),
            (json!({"email": "x@example.com", "role": "wizard"}), "role"),
            (json!({"email": "not an address"}), "email"),
            (json!({"email": "x".repeat(10_000)}), "email"),
            (json!({}), "email"),
            (json!({"email": 5}), "email"),
            (json!({"email": "x@example.com", "password": ["a"]}), "password"),
            (json!({"email": "x@example.com", "username": "admin"}), "username"),
            (json!({"email": "x@example.com", "first_name": "n".repeat(151)}), "first_name"),
            (json!({"email": "x@example.com", "is_verified": true}), "is_verified"),
            (json!({"email": "x@example.com", "status": "active"}), "status"),
        ] {
            let refused = call(&app, Method::POST, "/admin/users", &token, body.clone()).await;
            refused.expect(400, Some("validation_failed"));
            assert!(!refused.field_problems(field).is_empty(), "{body}: {}", refused.text);
        }
        assert_eq!(app.count("users").await, users_before, "refused creations store nothing");
    }

    async fn an_invited_account_sets_its_password_with_the_mailed_code(db: Db) {
        let app = TestApp::spawn(db).await;
        let (token, admin_id) = admin(&app, "admin@example.com").await;

        let created = call(&app, Method::POST, "/admin/users", &token, json!({"email": "invitee@example.com", "first_name": "In"})).await;
        created.expect(201, None);
        assert_eq!(created.body["is_verified"], false);
        assert_eq!(created.body["status"], "active");
        let mails = app.mail.to("invitee@example.com");
        assert_eq!(mails.len(), 1);
        assert!(mails[0].subject().contains("invited"), "{}", mails[0].subject());
        let code = app.mail.latest_code("invitee@example.com");
        let event = latest_event(&app, &token, "account_created").await;
        assert_eq!(event["details"]["invited"], true);
        assert_eq!(event["actor_id"], admin_id.as_str());
        assert!(!event.to_string().contains(&code), "no code in the trail");

        // Nobody knows the password yet: every sign-in fails like a wrong password.
        app.login("invitee@example.com", PASSWORD).await.expect(401, Some("invalid_credentials"));
        app.post("/auth/reset-password", json!({
            "email": "invitee@example.com", "otp": code, "new_password": PASSWORD, "confirm_password": PASSWORD,
        }))
        .await
        .expect(200, None);
        let signed_in = app.login("invitee@example.com", PASSWORD).await;
        signed_in.expect(200, None);
        assert_eq!(signed_in.body["user"]["is_verified"], true);
    }

    async fn registering_over_an_invitation_keeps_the_role_the_admin_gave(db: Db) {
        let app = TestApp::spawn(db).await;
        let (token, _) = admin(&app, "admin@example.com").await;
        let invited = call(&app, Method::POST, "/admin/users", &token,
            json!({"email": "deputy@example.com", "role": "admin", "username": "deputy"})).await;
        invited.expect(201, None);
        let path = format!("/admin/users/{}", invited.body["id"].as_str().unwrap());

        // Someone else registers the invited address before the invitee arrives.
        app.pass_cooldown();
        app.register("deputy@example.com", "the squatter's password").await.expect(201, None);

        let account = get(&app, &path, &token).await;
        assert_eq!(account.body["role"], "admin");
        assert_eq!(account.body["username"], "deputy");
        // An invited admin who never signed in does not count as one: the last one stays.
        let admin_id = app.login("admin@example.com", PASSWORD).await.body["user"]["id"].as_str().unwrap().to_string();
        call(&app, Method::PATCH, &format!("/admin/users/{admin_id}"), &token, json!({"role": "user"}))
            .await
            .expect(409, Some("last_admin"));
    }

    async fn the_last_admin_cannot_be_marked_unverified(db: Db) {
        let app = TestApp::spawn(db).await;
        let (token, admin_id) = admin(&app, "admin@example.com").await;
        let path = format!("/admin/users/{admin_id}");

        call(&app, Method::PATCH, &path, &token, json!({"is_verified": false})).await.expect(409, Some("last_admin"));
        assert_eq!(get(&app, &path, &token).await.body["is_verified"], true);
        app.login("admin@example.com", PASSWORD).await.expect(200, None);
    }

    async fn one_account_shows_its_sessions_and_login_lockout(db: Db) {
        let app = TestApp::spawn_with(db, |config| {
            config.limits = Limits { login_account: Some(Limit { count: 3, window: minutes(15) }), ..Limits::OFF };
        })
        .await;
        let (token, _) = admin(&app, "admin@example.com").await;
        let target = user(&app, "jane@example.com").await;
        let uid = id_of(&target);
        app.login("jane@example.com", PASSWORD).await.expect(200, None);

        let detail = get(&app, &format!("/admin/users/{uid}"), &token).await;
        detail.expect(200, None);
        assert_eq!(detail.body["email"], "jane@example.com");
        assert_eq!(detail.body["sessions"], 2, "verification and the login: {}", detail.text);
        assert_eq!(detail.body["locked_until"], Value::Null);
        assert_eq!(detail.body["failed_logins"], 0);

        app.login("jane@example.com", "wrong password").await.expect(401, Some("invalid_credentials"));
        let one_failure = get(&app, &format!("/admin/users/{uid}"), &token).await;
        assert_eq!(one_failure.body["failed_logins"], 1);
        assert_eq!(one_failure.body["locked_until"], Value::Null);
        for _ in 0..2 {
            app.login("jane@example.com", "wrong password").await.expect(401, Some("invalid_credentials"));
        }
        app.login("jane@example.com", PASSWORD).await.expect(429, Some("rate_limited"));
        let locked = get(&app, &format!("/admin/users/{uid}"), &token).await;
        assert_eq!(locked.body["failed_logins"], 4, "the refused attempt counts too");
        let until = chrono::DateTime::parse_from_rfc3339(locked.body["locked_until"].as_str().unwrap()).unwrap();
        let now = now(&app);
        assert!(until > now && until <= now + chrono::TimeDelta::minutes(15), "{until}");

        call(&app, Method::POST, &format!("/admin/users/{uid}/unlock"), &token, json!({})).await.expect(204, None);
        let unlocked = get(&app, &format!("/admin/users/{uid}"), &token).await;
        assert_eq!(unlocked.body["locked_until"], Value::Null);
        assert_eq!(unlocked.body["failed_logins"], 0);
        app.login("jane@example.com", PASSWORD).await.expect(200, None);
        let event = latest_event(&app, &token, "login_unlocked").await;
        assert_eq!(event["user_id"], uid.as_str());
        assert!(event["actor_id"].is_string());

        app.clock.advance(minutes(16));
        let token = sign_in_again(&app, "admin@example.com").await;
        assert_eq!(get(&app, &format!("/admin/users/{uid}"), &token).await.body["locked_until"], Value::Null);
        for missing in [uuid::Uuid::now_v7().to_string(), "not-an-id".into(), "%00".into(), "x".repeat(3_000)] {
            get(&app, &format!("/admin/users/{missing}"), &token).await.expect(404, Some("not_found"));
            call(&app, Method::POST, &format!("/admin/users/{missing}/unlock"), &token, json!({})).await.expect(404, Some("not_found"));
            call(&app, Method::PATCH, &format!("/admin/users/{missing}"), &token, json!({"first_name": "X"})).await.expect(404, Some("not_found"));
            call(&app, Method::POST, &format!("/admin/users/{missing}/password-reset"), &token, json!({})).await.expect(404, Some("not_found"));
            get(&app, &format!("/admin/users/{missing}/sessions"), &token).await.expect(404, Some("not_found"));
        }
    }

    async fn an_admin_edits_any_field_and_each_edit_is_audited(db: Db) {
        let app = TestApp::spawn(db).await;
        let (token, admin_id) = admin(&app, "admin@example.com").await;
        user(&app, "taken@example.com").await;
        let uid = id_of(&user(&app, "jane@example.com").await);
        let path = format!("/admin/users/{uid}");
        call(&app, Method::PATCH, &format!("/admin/users/{}", id_of(&user(&app, "holder@example.com").await)), &token, json!({"username": "Holder"}))
            .await
            .expect(200, None);
        call(&app, Method::PATCH, &path, &token, json!({"metadata": {"keep": 1, "drop": 2}, "app_metadata": {"plan": "free", "old": true}})).await.expect(200, None);
        app.post("/auth/forgot-password", json!({"email": "jane@example.com"})).await.expect(200, None);
        let old_address_code = app.mail.latest_code("jane@example.com");

        let edited = call(&app, Method::PATCH, &path, &token, json!({
            "email": "Jane.New@Example.com", "username": "jane.d", "first_name": "Janet", "last_name": "Dough",
            "phone_number": "+15551234567", "is_verified": false,
            "metadata": {"drop": null, "team": "blue"}, "app_metadata": {"plan": "pro", "old": null},
            "profile": {"bio": "Admin-edited.", "date_of_birth": "1990-04-01"},
        }))
        .await;
        edited.expect(200, None);
        let body = &edited.body;
        assert_eq!(body["email"], "jane.new@example.com");
        assert_eq!(body["username"], "jane.d");
        assert_eq!((body["first_name"].as_str(), body["last_name"].as_str()), (Some("Janet"), Some("Dough")));
        assert_eq!(body["phone_number"], "+15551234567");
        assert_eq!(body["is_verified"], false);
        assert_eq!(body["metadata"], json!({"keep": 1, "team": "blue"}));
        assert_eq!(body["app_metadata"], json!({"plan": "pro"}));
        assert_eq!(body["profile"]["bio"], "Admin-edited.");
        assert_eq!(body["profile"]["date_of_birth"], "1990-04-01");

        let event = latest_event(&app, &token, "account_updated").await;
        assert_eq!(event["user_id"], uid.as_str());
        assert_eq!(event["actor_id"], admin_id.as_str());
        assert_eq!(event["changes"]["email"], json!({"before": "jane@example.com", "after": "jane.new@example.com"}));
        assert_eq!(event["changes"]["app_metadata"]["after"], json!({"plan": "pro"}));
        assert!(event["changes"].get("role").is_none(), "unchanged fields are not listed");
        assert!(app.mail.to("jane@example.com").iter().any(|mail| mail.subject().contains("changed")), "the old address is told");
        for email in ["jane@example.com", "jane.new@example.com"] {
            app.post("/auth/reset-password", json!({
                "email": email, "otp": old_address_code, "new_password": "taken over now", "confirm_password": "taken over now",
            }))
            .await
            .expect(400, Some("invalid_otp"));
        }

        call(&app, Method::PATCH, &path, &token, json!({"email": "TAKEN@example.com"})).await.expect(409, Some("email_taken"));
        call(&app, Method::PATCH, &path, &token, json!({"username": "holder"})).await.expect(409, Some("username_taken"));
        for (body, field) in [
            (json!({"role": "wizard"}), "role"),
            (json!({"role": null}), "role"),
            (json!({"email": null}), "email"),
            (json!({"email": "nope"}), "email"),
            (json!({"is_verified": "yes"}), "is_verified"),
            (json!({"is_verified": null}), "is_verified"),
            (json!({"status": "disabled"}), "status"),
            (json!({"password_hash": "x"}), "password_hash"),
            (json!({"created_at": "2020-01-01T00:00:00Z"}), "created_at"),
            (json!({"favourite_colour": "blue"}), "favourite_colour"),
            (json!({"first_name": "x".repeat(60_000)}), "first_name"),
            (json!({"first_name": 42}), "first_name"),
            (json!({"metadata": null}), "metadata"),
            (json!({"metadata": [1]}), "metadata"),
            (json!({"app_metadata": {"blob": "x".repeat(17_000)}}), "app_metadata"),
            (json!({"profile": {"avatar_url": "javascript:alert(1)"}}), "avatar_url"),
            (json!({"profile": {"mood": "happy"}}), "profile.mood"),
            (json!({"username": "root"}), "username"),
        ] {
            let refused = call(&app, Method::PATCH, &path, &token, body.clone()).await;
            refused.expect(400, Some("validation_failed"));
            assert!(!refused.field_problems(field).is_empty(), "{body}: {}", refused.text);
        }
        let unchanged = get(&app, &path, &token).await.body;
        assert_eq!(unchanged["email"], "jane.new@example.com", "refused edits changed nothing");
        assert_eq!(unchanged["first_name"], "Janet");
    }

    async fn a_role_change_counts_at_the_next_refresh_and_losing_admin_ends_every_session(db: Db) {
        let app = TestApp::spawn(db).await;
        let (token, admin_id) = admin(&app, "admin@example.com").await;
        let jane = user(&app, "jane@example.com").await;
        let jane_id = id_of(&jane);

        call(&app, Method::PATCH, &format!("/admin/users/{jane_id}"), &token, json!({"role": "admin"})).await.expect(200, None);
        let refreshed = app.post("/auth/token/refresh", json!({"refresh": jane["refresh"]})).await;
        refreshed.expect(200, None);
        let jane_access = refreshed.body["access"].as_str().unwrap().to_string();
        assert_eq!(claims_of(&jane_access)["role"], "admin");
        get(&app, "/admin/stats", &jane_access).await.expect(200, None);

        // Jane demotes the first admin: the admin's sessions end and admin calls stop at once.
        let first_admin = app.login("admin@example.com", PASSWORD).await.body;
        call(&app, Method::PATCH, &format!("/admin/users/{admin_id}"), &jane_access, json!({"role": "user"})).await.expect(200, None);
        get(&app, "/admin/users", &token).await.expect(403, Some("forbidden"));
        app.post("/auth/token/refresh", json!({"refresh": first_admin["refresh"]})).await.expect(401, Some("invalid_refresh_token"));
        let revocation = latest_event(&app, &jane_access, "session_revocation").await;
        assert_eq!(revocation["user_id"], admin_id.as_str());
        assert_eq!(revocation["actor_id"], jane_id.as_str());

        // Jane is now the only active admin and cannot demote herself.
        let refused = call(&app, Method::PATCH, &format!("/admin/users/{jane_id}"), &jane_access, json!({"role": "user", "first_name": "J"})).await;
        refused.expect(409, Some("last_admin"));
        let jane_now = get(&app, &format!("/admin/users/{jane_id}"), &jane_access).await;
        assert_eq!((jane_now.body["role"].as_str(), jane_now.body["first_name"].as_str()), (Some("admin"), Some("Jane")));
        // A disabled admin does not count as one that is left.
        app.execute("UPDATE users SET role = 'admin', status = 'disabled', is_active = false WHERE email = 'admin@example.com'").await;
        call(&app, Method::PATCH, &format!("/admin/users/{jane_id}"), &jane_access, json!({"role": "user"})).await.expect(409, Some("last_admin"));
    }

    async fn an_edit_is_reverted_unless_its_fields_changed_since(db: Db) {
        let app = TestApp::spawn(db).await;
        let (token, admin_id) = admin(&app, "admin@example.com").await;
        let jane = user(&app, "jane@example.com").await;
        let path = format!("/admin/users/{}", id_of(&jane));

        call(&app, Method::PATCH, &path, &token, json!({"first_name": "Janet", "metadata": {"team": "blue"}, "app_metadata": {"plan": "pro"}})).await.expect(200, None);
        let edit = latest_event(&app, &token, "account_updated").await;
        let reverted = call(&app, Method::POST, &format!("/admin/audit/{}/revert", edit["id"].as_str().unwrap()), &token, json!({})).await;
        reverted.expect(200, None);
        assert_eq!(reverted.body["first_name"], "Jane");
        assert_eq!(reverted.body["metadata"], json!({}), "keys added by the edit are removed");
        assert_eq!(reverted.body["app_metadata"], json!({}));
        let revert_event = latest_event(&app, &token, "account_updated").await;
        assert_ne!(revert_event["id"], edit["id"]);
        assert_eq!(revert_event["actor_id"], admin_id.as_str());
        assert_eq!(revert_event["details"]["reverted_event"], edit["id"]);
        assert_eq!(revert_event["changes"]["first_name"], json!({"before": "Janet", "after": "Jane"}));

        // Reverting a revert puts the edit back.
        call(&app, Method::POST, &format!("/admin/audit/{}/revert", revert_event["id"].as_str().unwrap()), &token, json!({}))
            .await
            .expect(200, None);
        assert_eq!(get(&app, &path, &token).await.body["first_name"], "Janet");

        // An edit whose field changed since is not reverted, and nothing changes.
        let first = latest_event(&app, &token, "account_updated").await;
        call(&app, Method::PATCH, &path, &token, json!({"first_name": "Jan", "last_name": "Doh"})).await.expect(200, None);
        let conflict = call(&app, Method::POST, &format!("/admin/audit/{}/revert", first["id"].as_str().unwrap()), &token, json!({})).await;
        conflict.expect(409, Some("conflict"));
        let named: Vec<&String> = conflict.body["fields"].as_object().unwrap().keys().collect();
        assert_eq!(named, ["first_name"], "only what changed since, of that edit's fields: {}", conflict.text);
        let now = get(&app, &path, &token).await;
        assert_eq!((now.body["first_name"].as_str(), now.body["last_name"].as_str()), (Some("Jan"), Some("Doh")));

        let login = latest_event(&app, &token, "login").await;
        call(&app, Method::POST, &format!("/admin/audit/{}/revert", login["id"].as_str().unwrap()), &token, json!({}))
            .await
            .expect(400, Some("not_revertible"));
        for missing in [uuid::Uuid::now_v7().to_string(), "not-an-id".to_string()] {
            call(&app, Method::POST, &format!("/admin/audit/{missing}/revert"), &token, json!({}))
                .await
                .expect(404, Some("not_found"));
        }
    }

    async fn a_revert_that_would_demote_the_last_admin_is_refused(db: Db) {
        let app = TestApp::spawn(db).await;
        let (token, admin_id) = admin(&app, "admin@example.com").await;
        let jane = user(&app, "jane@example.com").await;
        let jane_id = id_of(&jane);
        call(&app, Method::PATCH, &format!("/admin/users/{jane_id}"), &token, json!({"role": "admin"})).await.expect(200, None);
        let promotion = latest_event(&app, &token, "account_updated").await;
        call(&app, Method::PATCH, &format!("/admin/users/{admin_id}"), &token, json!({"role": "user"})).await.expect(200, None);
        let jane_token = app.login("jane@example.com", PASSWORD).await.body["access"].as_str().unwrap().to_string();

        let refused = call(&app, Method::POST, &format!("/admin/audit/{}/revert", promotion["id"].as_str().unwrap()), &jane_token, json!({})).await;
        refused.expect(409, Some("last_admin"));
        assert_eq!(get(&app, &format!("/admin/users/{jane_id}"), &jane_token).await.body["role"], "admin");
    }

    async fn an_admin_mails_a_reset_code_without_the_cooldown(db: Db) {
        let app = TestApp::spawn(db).await;
        let (token, admin_id) = admin(&app, "admin@example.com").await;
        let jane = user(&app, "jane@example.com").await;
        let uid = id_of(&jane);

        // The owner just asked for a code: a second request of theirs would wait, an admin's does not.
        app.post("/auth/forgot-password", json!({"email": "jane@example.com"})).await.expect(200, None);
        app.post("/auth/forgot-password", json!({"email": "jane@example.com"})).await.expect(429, Some("resend_too_soon"));
        let mailed = call(&app, Method::POST, &format!("/admin/users/{uid}/password-reset"), &token, json!({})).await;
        mailed.expect(202, None);
        assert_eq!(mailed.body["otp_expires_in"], 600);
        let mail = app.mail.to("jane@example.com").last().cloned().unwrap();
        assert!(mail.subject().contains("Reset"), "{}", mail.subject());
        let event = latest_event(&app, &token, "password_reset_requested").await;
        assert_eq!(event["actor_id"], admin_id.as_str());

        let code = app.mail.latest_code("jane@example.com");
        app.post("/auth/reset-password", json!({
            "email": "jane@example.com", "otp": code, "new_password": "a brand new secret", "confirm_password": "a brand new secret",
        }))
        .await
        .expect(200, None);
        app.login("jane@example.com", "a brand new secret").await.expect(200, None);

        app.execute("UPDATE users SET status = 'disabled', is_active = false WHERE email = 'jane@example.com'").await;
        call(&app, Method::POST, &format!("/admin/users/{uid}/password-reset"), &token, json!({}))
            .await
            .expect(403, Some("account_disabled"));
    }

    async fn an_admin_lists_and_ends_sessions_of_an_account(db: Db) {
        let app = TestApp::spawn(db).await;
        let (token, admin_id) = admin(&app, "admin@example.com").await;
        let jane = user(&app, "jane@example.com").await;
        let uid = id_of(&jane);
        let other = user(&app, "other@example.com").await;
        let other_sid = claims_of(other["access"].as_str().unwrap())["sid"].as_str().unwrap().to_string();
        app.login("jane@example.com", PASSWORD).await.expect(200, None);

        let listed = get(&app, &format!("/admin/users/{uid}/sessions"), &token).await;
        listed.expect(200, None);
        let sessions = listed.body.as_array().unwrap();
        assert_eq!(sessions.len(), 2);
        assert!(sessions.iter().all(|session| session["current"] == false));
        let sid = claims_of(jane["access"].as_str().unwrap())["sid"].as_str().unwrap().to_string();

        call(&app, Method::DELETE, &format!("/admin/users/{uid}/sessions/{sid}"), &token, json!({})).await.expect(204, None);
        app.post("/auth/token/refresh", json!({"refresh": jane["refresh"]})).await.expect(401, Some("invalid_refresh_token"));
        assert_eq!(get(&app, &format!("/admin/users/{uid}/sessions"), &token).await.body.as_array().unwrap().len(), 1);
        let event = latest_event(&app, &token, "session_revocation").await;
        assert_eq!((event["user_id"].as_str(), event["actor_id"].as_str()), (Some(uid.as_str()), Some(admin_id.as_str())));

        for (user_id, session) in [(uid.as_str(), sid.as_str()), (uid.as_str(), other_sid.as_str()), (uid.as_str(), "nope"), ("nope", sid.as_str())] {
            call(&app, Method::DELETE, &format!("/admin/users/{user_id}/sessions/{session}"), &token, json!({}))
                .await
                .expect(404, Some("not_found"));
        }
        app.post("/auth/token/refresh", json!({"refresh": other["refresh"]})).await.expect(200, None);
    }

    async fn the_audit_trail_is_filtered_and_paged_newest_first(db: Db) {
        let app = TestApp::spawn(db).await;
        let (token, admin_id) = admin(&app, "admin@example.com").await;
        let jane = user(&app, "jane@example.com").await;
        let uid = id_of(&jane);
        let before_edits = now(&app);
        for n in 0..3 {
            app.clock.advance(Duration::from_secs(1));
            call(&app, Method::PATCH, &format!("/admin/users/{uid}"), &token, json!({"last_name": format!("Doe{n}")})).await.expect(200, None);
        }
        app.login("jane@example.com", "wrong password").await.expect(401, Some("invalid_credentials"));

        let all = get(&app, "/admin/audit?limit=200", &token).await;
        all.expect(200, None);
        let events = all.body["events"].as_array().unwrap();
        assert!(events.len() >= 8, "{}", all.text);
        let times: Vec<&str> = events.iter().map(|event| event["at"].as_str().unwrap()).collect();
        let parsed: Vec<_> = times.iter().map(|at| chrono::DateTime::parse_from_rfc3339(at).unwrap()).collect();
        assert!(parsed.windows(2).all(|pair| pair[0] >= pair[1]), "newest first: {times:?}");
        assert_eq!(all.body["next_cursor"], Value::Null);
        let newest = &events[0];
        assert_eq!(newest["event"], "login_failed");
        assert_eq!(newest["ip"], "127.0.0.1");
        for key in ["id", "at", "event", "user_id", "actor_id", "ip", "user_agent", "details", "changes"] {
            assert!(newest.get(key).is_some(), "{key}: {newest}");
        }
        assert!(!all.text.contains("wrong password") && !all.text.contains("argon2"), "no secret in the trail");

        let edits = get(&app, &format!("/admin/audit?user_id={uid}&actor_id={admin_id}&event=account_updated"), &token).await;
        let edits = edits.body["events"].as_array().unwrap().clone();
        assert_eq!(edits.len(), 3);
        assert_eq!(edits[0]["changes"]["last_name"], json!({"before": "Doe1", "after": "Doe2"}));
        let since = before_edits + chrono::TimeDelta::milliseconds(1500);
        let since = since.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let windowed = get(&app, &format!("/admin/audit?event=account_updated&since={since}"), &token).await;
        assert_eq!(windowed.body["events"].as_array().unwrap().len(), 2, "{}", windowed.text);
        let until = get(&app, &format!("/admin/audit?event=account_updated&until={since}"), &token).await;
        assert_eq!(until.body["events"].as_array().unwrap().len(), 1);
        assert_eq!(get(&app, "/admin/audit?ip=203.0.113.9", &token).await.body["events"], json!([]));
        assert_eq!(get(&app, &format!("/admin/audit?user_id={}", uuid::Uuid::now_v7()), &token).await.body["events"], json!([]));

        // Pages of two, with events recorded between pages: no event twice, none skipped.
        let mut paged = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(cursor) => format!("/admin/audit?limit=2&cursor={cursor}"),
                None => "/admin/audit?limit=2".to_string(),
            };
            let page = get(&app, &path, &token).await;
            page.expect(200, None);
            paged.extend(page.body["events"].as_array().unwrap().iter().map(|event| event["id"].clone()));
            match page.body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
            app.login("jane@example.com", "wrong again").await;
        }
        let expected: Vec<Value> = events.iter().map(|event| event["id"].clone()).collect();
        assert_eq!(paged, expected);
    }

    async fn the_figures_count_accounts_signups_logins_and_sessions(db: Db) {
        let app = TestApp::spawn_with(db, |config| config.roles = vec!["user".into(), "admin".into(), "ops".into()]).await;
        app.verified_user("old@example.com").await;
        app.clock.advance(Duration::from_secs(2 * 86_400));
        let (token, _) = admin(&app, "admin@example.com").await;
        user(&app, "jane@example.com").await;
        app.register("pending@example.com", PASSWORD).await.expect(201, None);
        app.execute("UPDATE users SET status = 'disabled', is_active = false WHERE email = 'jane@example.com'").await;
        app.login("old@example.com", "wrong password").await.expect(401, Some("invalid_credentials"));
        app.execute(r#"UPDATE users SET mfa_methods = '["totp", "email"]' WHERE email = 'old@example.com'"#).await;

        let stats = get(&app, "/admin/stats", &token).await;
        stats.expect(200, None);
        let body = &stats.body;
        assert_eq!(body["users"], json!({
            "total": 4, "verified": 3, "disabled": 1, "pending_deletion": 0, "mfa_enabled": 1,
            "by_role": {"admin": 1, "ops": 0, "user": 3},
        }));
        let days = body["signups_by_day"].as_array().unwrap();
        assert_eq!(days.len(), 30);
        let today = now(&app).date_naive();
        assert_eq!(days[29], json!({"date": today.to_string(), "count": 3}));
        assert_eq!(days[27], json!({"date": (today - chrono::TimeDelta::days(2)).to_string(), "count": 1}));
        assert_eq!(days[0]["date"], (today - chrono::TimeDelta::days(29)).to_string());
        assert_eq!(days.iter().map(|day| day["count"].as_u64().unwrap()).sum::<u64>(), 4);
        // The first login was two days ago: only the admin's sign-in is in the last 24 hours.
        assert_eq!(body["logins_24h"], json!({"succeeded": 1, "failed": 1}));
        // Old's session went stale over two days (refresh lifetime 24h); the admin has two
        // (verification and login), Jane one.
        assert_eq!(body["active_sessions"], 3, "{}", stats.text);
        assert_eq!(body["online_now"], 2, "the admin and Jane: {}", stats.text);

        app.clock.advance(minutes(6));
        let token = sign_in_again(&app, "admin@example.com").await;
        assert_eq!(get(&app, "/admin/stats", &token).await.body["online_now"], 1);
    }

    async fn the_command_line_creates_lists_and_changes_roles(database: Db) {
        let scratch = tempfile::tempdir().unwrap();
        let url = database.fresh_url(&scratch).await;
        let mail_dir = scratch.path().join("mail");
        std::fs::create_dir_all(&mail_dir).unwrap();
        let env = [
            ("DATABASE_URL", url.as_str()),
            ("AUTHGATE_MAIL", &format!("file://{}", mail_dir.display())),
            ("AUTHGATE_ARGON2", "m=64,t=1,p=1"),
        ];
        let authgate = |args: &[&str], stdin: &str| {
            let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_authgate"))
                .args(args)
                .env_clear()
                .envs(env.iter().map(|(k, v)| (k, v.to_string())))
                .current_dir(scratch.path())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
            let output = child.wait_with_output().unwrap();
            (output.status.code(), String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
        };

        let (code, out, err) = authgate(&["users", "create", "--email", "Root@Example.com", "--role", "admin", "--username", "root.one"], &format!("{PASSWORD}\n"));
        assert_eq!(code, Some(0), "{out}{err}");
        assert!(out.contains("root@example.com") && out.contains("admin"), "{out}");
        let (code, out, err) = authgate(&["users", "create", "--email", "weak@example.com"], "12345678\n");
        assert_eq!(code, Some(1), "{out}");
        assert!(err.contains("password") && err.contains("validation_failed"), "{err}");
        let (code, _, err) = authgate(&["users", "create", "--email", "root@example.com"], &format!("{PASSWORD}\n"));
        assert_eq!(code, Some(1));
        assert!(err.contains("email_taken"), "{err}");
        let (code, out, err) = authgate(&["users", "create", "--email", "invitee@example.com", "--invite"], "");
        assert_eq!(code, Some(0), "{out}{err}");
        assert!(out.contains("invitation"), "{out}");
        let mails: Vec<String> = std::fs::read_dir(&mail_dir).unwrap().map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap()).collect();
        assert!(mails.iter().any(|mail| mail.contains("invitee@example.com") && mail.contains("invited")), "{mails:?}");

        let (code, out, err) = authgate(&["users", "list", "--json"], "");
        assert_eq!(code, Some(0), "{err}");
        let listed: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("stdout is JSON alone ({e}): {out}"));
        let listed: Vec<&str> = listed.as_array().unwrap().iter().map(|user| user["email"].as_str().unwrap()).collect();
        assert_eq!(listed, ["invitee@example.com", "root@example.com"]);
        let (code, out, _) = authgate(&["users", "list", "--role", "admin"], "");
        assert_eq!(code, Some(0));
        assert!(out.contains("root@example.com") && !out.contains("invitee@example.com"), "{out}");
        let (code, _, err) = authgate(&["users", "list", "--role", "wizard"], "");
        assert_eq!(code, Some(1));
        assert!(err.contains("role"), "{err}");

        let (code, _, err) = authgate(&["users", "set-role", "root@example.com", "user"], "");
        assert_eq!(code, Some(1), "the last admin keeps the role");
        assert!(err.contains("last_admin"), "{err}");
        let (code, out, err) = authgate(&["users", "set-role", "invitee@example.com", "admin"], "");
        assert_eq!(code, Some(0), "{err}");
        assert!(out.contains("invitee@example.com") && out.contains("admin"), "{out}");
        let (code, _, err) = authgate(&["users", "set-role", "root@example.com", "user"], "");
        assert_eq!(code, Some(1), "an invitee who never signed in is no admin to rely on yet");
        assert!(err.contains("last_admin"), "{err}");
        let (code, out, err) = authgate(&["users", "create", "--email", "deputy@example.com", "--role", "admin"], &format!("{PASSWORD}\n"));
        assert_eq!(code, Some(0), "{out}{err}");
        let (code, out, err) = authgate(&["users", "set-role", "root@example.com", "user"], "");
        assert_eq!(code, Some(0), "{err}");
        assert!(out.contains("was admin"), "{out}");
        let (code, _, err) = authgate(&["users", "set-role", "nobody@example.com", "user"], "");
        assert_eq!(code, Some(1));
        assert!(err.contains("not_found"), "{err}");
        for help in [&["users", "--help"][..], &["users", "create", "--help"], &["users", "list", "--help"], &["users", "set-role", "--help"]] {
            let (code, out, _) = authgate(help, "");
            assert_eq!(code, Some(0), "{help:?}");
            assert!(out.contains("Usage"), "{out}");
        }

        // The audit trail shows what the command line did, with no actor.
        let db = authgate::store::connect(&url, authgate::store::Open::Existing)
            .await
            .unwrap();
        let created = authgate::store::audit::page(&db, &authgate::store::audit::EventFilter { action: Some("account_created".into()), ..Default::default() }, None, 10).await.unwrap();
        assert_eq!(created.len(), 3);
        assert!(created.iter().all(|event| event.actor_id.is_none() && event.user_agent.as_deref() == Some("authgate-cli")));
    }

    async fn filters_matching_many_accounts_page_like_filters_matching_few(db: Db) {
        let app = TestApp::spawn(db).await;
        let (token, _) = admin(&app, "admin@example.com").await;
        insert_accounts(&app, 1_203).await;
        let bulk = |range: std::ops::Range<usize>| range.map(|n| format!("bulk{n:04}@example.com")).collect::<Vec<_>>();

        // Over a thousand matches: read along the index, counted apart.
        let newest_first: Vec<String> = bulk(0..1_203).into_iter().rev().collect();
        let seen = every_page(&app, &token, "q=bulk&limit=200", async |_| {}).await;
        assert_eq!(seen, newest_first);
        let first = get(&app, "/admin/users?q=bulk&limit=200", &token).await;
        assert_eq!(first.body["total"], 1_203);
        assert_eq!(every_page(&app, &token, "q=bulk&sort=email&limit=200", async |_| {}).await, bulk(0..1_203));
        let by_login = every_page(&app, &token, "q=bulk&sort=-last_login_at&limit=200", async |_| {}).await;
        let signed_in: Vec<String> = (0..1_203).rev().filter(|n| n % 3 == 0).map(|n| format!("bulk{n:04}@example.com")).collect();
        assert_eq!(&by_login[..signed_in.len()], signed_in.as_slice());
        assert_eq!(by_login.len(), 1_203);
        let second = get(&app, &format!("/admin/users?q=bulk&limit=200&cursor={}", first.body["next_cursor"].as_str().unwrap()), &token).await;
        assert_eq!(second.body["total"], 1_203, "later pages count too");

        // A few matches: found in one pass, ordered alike.
        let rare: Vec<String> = [1001, 501, 1].iter().map(|n| format!("bulk{n:04}@example.com")).collect();
        assert_eq!(every_page(&app, &token, "q=rare&limit=2", async |_| {}).await, rare);
        let rare_page = get(&app, "/admin/users?q=rare&limit=2", &token).await;
        assert_eq!(rare_page.body["total"], 3);
        let mut by_email = rare.clone();
        by_email.sort();
        assert_eq!(every_page(&app, &token, "q=rare&sort=email&limit=2", async |_| {}).await, by_email);
        assert_eq!(every_page(&app, &token, "q=rare&sort=created_at&limit=2", async |_| {}).await, by_email);
        let everyone = get(&app, "/admin/users?limit=1", &token).await;
        assert_eq!(everyone.body["total"], 1_204);
    }
}
