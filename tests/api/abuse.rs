//! Abuse limits (§8): each limit on a low setting, lockout, trusted proxies, several instances,
//! and the audit trail.

use std::time::Duration;

use authgate::config::{Limit, Limits};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Db, PASSWORD, Reply, TestApp};

fn limit(count: u32, seconds: u64) -> Option<Limit> {
    Some(Limit {
        count,
        window: Duration::from_secs(seconds),
    })
}

#[track_caller]
fn assert_rate_limited(reply: &Reply, max_wait: u64) {
    reply.expect(429, Some("rate_limited"));
    let wait = reply.body["retry_after"].as_u64().expect("retry_after");
    assert!((1..=max_wait).contains(&wait), "retry_after {wait}");
    assert_eq!(reply.header("retry-after"), Some(wait.to_string().as_str()));
}

/// A login as seen from `ip`, through a proxy the app trusts.
async fn login_from(app: &TestApp, ip: &str, email: &str, password: &str) -> Reply {
    let response = app
        .client
        .post(format!("{}/auth/login", app.base))
        .header("x-forwarded-for", ip)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    Reply::read(response).await
}

fn trusting_loopback(config: &mut authgate::config::Config) {
    config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
}

db_tests! {
    async fn logins_per_ip_are_limited(db: Db) {
        let app = TestApp::spawn_with(db, |config| {
            trusting_loopback(config);
            config.limits = Limits { login_ip: limit(3, 60), ..Limits::OFF };
        })
        .await;
        app.verified_user("jane@example.com").await;

        for _ in 0..3 {
            login_from(&app, "203.0.113.7", "jane@example.com", "wrong password").await.expect(401, None);
        }
        assert_rate_limited(&login_from(&app, "203.0.113.7", "jane@example.com", PASSWORD).await, 60);
        // Another address has its own allowance; the window passes.
        login_from(&app, "198.51.100.2", "jane@example.com", PASSWORD).await.expect(200, None);
        app.clock.advance(Duration::from_secs(60));
        login_from(&app, "203.0.113.7", "jane@example.com", PASSWORD).await.expect(200, None);
    }

    async fn failed_logins_lock_the_account_and_tell_its_owner_once(db: Db) {
        let app = TestApp::spawn_with(db, |config| {
            config.limits = Limits { login_account: limit(3, 900), ..Limits::OFF };
        })
        .await;
        app.verified_user("jane@example.com").await;

        for _ in 0..3 {
            app.login("jane@example.com", "wrong password").await.expect(401, Some("invalid_credentials"));
        }
        let locked = app.login("jane@example.com", PASSWORD).await;
        assert_rate_limited(&locked, 900);
        app.login("jane@example.com", "wrong password again").await.expect(429, Some("rate_limited"));

        // The notice goes out in the background.
        let notices = app
            .mail
            .eventually(|mails| mails.iter().filter(|m| m.subject().contains("locked")).count())
            .await;
        assert_eq!(notices, 1, "one lockout mail per window");
        // Unknown addresses lock alike (and nobody is mailed).
        for _ in 0..3 {
            app.login("ghost@example.com", "whatever pw").await.expect(401, Some("invalid_credentials"));
        }
        app.login("ghost@example.com", "whatever pw").await.expect(429, Some("rate_limited"));

        app.clock.advance(Duration::from_secs(900));
        app.login("jane@example.com", PASSWORD).await.expect(200, None);
    }

    async fn parallel_guesses_cannot_outrun_the_lockout(db: Db) {
        let app = TestApp::spawn_with(db, |config| {
            config.limits = Limits { login_account: limit(3, 900), ..Limits::OFF };
        })
        .await;
        app.verified_user("jane@example.com").await;

        let guesses = (0..12).map(|i| app.login("jane@example.com", if i == 0 { "x1 wrong" } else { "x2 wrong" }));
        let replies = futures_util::future::join_all(guesses).await;

        let checked = replies.iter().filter(|reply| reply.status == 401).count();
        assert!(checked <= 3, "{checked} guesses were checked against a limit of 3");
        assert!(replies.iter().all(|reply| reply.status == 401 || reply.status == 429));
    }

    async fn registrations_per_ip_are_limited(db: Db) {
        let app = TestApp::spawn_with(db, |config| {
            trusting_loopback(config);
            config.limits = Limits { register_ip: limit(2, 3600), ..Limits::OFF };
        })
        .await;
        let register_from = |ip: &'static str, email: &'static str| {
            let request = app
                .client
                .post(format!("{}/auth/register", app.base))
                .header("x-forwarded-for", ip)
                .json(&json!({"email": email, "password": PASSWORD, "password2": PASSWORD}));
            async move { Reply::read(request.send().await.unwrap()).await }
        };

        register_from("203.0.113.7", "a@example.com").await.expect(201, None);
        register_from("203.0.113.7", "b@example.com").await.expect(201, None);
        assert_rate_limited(&register_from("203.0.113.7", "c@example.com").await, 3600);
        register_from("198.51.100.2", "c@example.com").await.expect(201, None);
        assert_eq!(app.count("users").await, 3);
    }

    async fn code_checks_per_ip_are_limited_across_endpoints(db: Db) {
        let app = TestApp::spawn_with(db, |config| {
            config.limits = Limits { otp_verify_ip: limit(3, 300), ..Limits::OFF };
        })
        .await;
        app.register("jane@example.com", PASSWORD).await.expect(201, None);
        let code = app.mail.latest_code("jane@example.com");

        app.post("/auth/verify-otp", json!({"email": "jane@example.com", "otp": "000000"})).await;
        app.post("/auth/verify-password-reset-otp", json!({"email": "jane@example.com", "otp": "000000"})).await;
        app.post("/auth/reset-password", json!({"email": "jane@example.com", "otp": "000000",
            "new_password": "fine new secret", "confirm_password": "fine new secret"})).await;

        let refused = app.post("/auth/verify-otp", json!({"email": "jane@example.com", "otp": code})).await;
        assert_rate_limited(&refused, 300);
        app.clock.advance(Duration::from_secs(300));
        app.post("/auth/verify-otp", json!({"email": "jane@example.com", "otp": code})).await.expect(200, None);
    }

    async fn codes_mailed_per_address_are_limited(db: Db) {
        let app = TestApp::spawn_with(db, |config| {
            config.limits = Limits { mail_address: limit(2, 3600), ..Limits::OFF };
        })
        .await;
        app.register("jane@example.com", PASSWORD).await.expect(201, None);
        app.pass_cooldown();
        app.post("/auth/resend-otp", json!({"email": "jane@example.com"})).await.expect(200, None);
        app.post("/auth/forgot-password", json!({"email": "ghost@example.com"})).await.expect(200, None);
        app.pass_cooldown();
        app.post("/auth/forgot-password", json!({"email": "ghost@example.com"})).await.expect(200, None);
        app.pass_cooldown();

        let known = app.post("/auth/resend-otp", json!({"email": "jane@example.com"})).await;
        let unknown = app.post("/auth/forgot-password", json!({"email": "ghost@example.com"})).await;

        assert_rate_limited(&known, 3600);
        assert_rate_limited(&unknown, 3600);
        assert_eq!(app.mail.to("jane@example.com").len(), 2);
    }

    async fn refreshes_per_session_are_limited(db: Db) {
        let app = TestApp::spawn_with(db, |config| {
            config.limits = Limits { refresh_session: limit(2, 60), ..Limits::OFF };
        })
        .await;
        let mut refresh = app.verified_user("jane@example.com").await["refresh"].clone();
        for _ in 0..2 {
            let reply = app.post("/auth/token/refresh", json!({"refresh": refresh})).await;
            reply.expect(200, None);
            refresh = reply.body["refresh"].clone();
        }

        assert_rate_limited(&app.post("/auth/token/refresh", json!({"refresh": refresh})).await, 60);

        // The refused refresh changed nothing: the same token works once the window passes.
        app.clock.advance(Duration::from_secs(60));
        app.post("/auth/token/refresh", json!({"refresh": refresh})).await.expect(200, None);
    }

    async fn forwarded_for_from_an_untrusted_peer_changes_nothing(db: Db) {
        let app = TestApp::spawn_with(db, |config| {
            config.limits = Limits { login_ip: limit(2, 60), ..Limits::OFF };
        })
        .await;
        let signed_in = app.verified_user("jane@example.com").await;

        login_from(&app, "203.0.113.1", "jane@example.com", "wrong password").await.expect(401, None);
        login_from(&app, "203.0.113.2", "jane@example.com", "wrong password").await.expect(401, None);
        assert_rate_limited(&login_from(&app, "203.0.113.3", "jane@example.com", PASSWORD).await, 60);

        let sessions = app.get("/auth/sessions", signed_in["access"].as_str()).await.body;
        assert_eq!(sessions[0]["ip"], "127.0.0.1");
    }

    async fn a_trusted_proxy_names_the_client(db: Db) {
        let app = TestApp::spawn_with(db, trusting_loopback).await;
        app.verified_user("jane@example.com").await;

        let signed_in = login_from(&app, "6.6.6.6, 203.0.113.9", "jane@example.com", PASSWORD).await.body;

        let sessions = app.get("/auth/sessions", signed_in["access"].as_str()).await.body;
        let current = sessions.as_array().unwrap().iter().find(|s| s["current"] == true).unwrap();
        assert_eq!(current["ip"], "203.0.113.9");
    }

    async fn forwarded_for_hops_are_canonical_and_may_carry_ports(db: Db) {
        let app = TestApp::spawn_with(db, |config| {
            trusting_loopback(config);
            config.limits = Limits { login_ip: limit(2, 60), ..Limits::OFF };
        })
        .await;
        app.verified_user("jane@example.com").await;

        // A dual-stack proxy writes IPv4 clients as IPv4-mapped IPv6 addresses.
        let first = login_from(&app, "::ffff:203.0.113.5", "jane@example.com", PASSWORD).await;
        login_from(&app, "::ffff:203.0.113.5", "jane@example.com", "wrong password").await.expect(401, None);
        let neighbour = login_from(&app, "::ffff:203.0.113.6", "jane@example.com", PASSWORD).await;
        let ported_v4 = login_from(&app, "203.0.113.7:5678", "jane@example.com", PASSWORD).await;
        let ported_v6 = login_from(&app, "[2001:db8::1]:443", "jane@example.com", PASSWORD).await;

        first.expect(200, None);
        neighbour.expect(200, None);
        assert_rate_limited(&login_from(&app, "::ffff:203.0.113.5", "jane@example.com", PASSWORD).await, 60);
        let sessions = app.get("/auth/sessions", first.body["access"].as_str()).await.body;
        let mut ips: Vec<&str> = sessions.as_array().unwrap().iter().filter_map(|s| s["ip"].as_str()).collect();
        ips.sort();
        assert_eq!(ips, ["127.0.0.1", "2001:db8::1", "203.0.113.5", "203.0.113.6", "203.0.113.7"]);
        assert_eq!(ported_v4.status, 200);
        assert_eq!(ported_v6.status, 200);
        let rows = audit_rows(&app).await;
        let failure = rows.iter().find(|row| row["action"] == "login_failed" && row["outcome"] == "failure").unwrap();
        assert_eq!(failure["ip"], "203.0.113.5");
    }

    async fn instances_on_one_database_count_together(db: Db) {
        let limits = |config: &mut authgate::config::Config| {
            config.limits = Limits { login_ip: limit(2, 60), ..Limits::OFF };
        };
        let first = TestApp::spawn_with(db, limits).await;
        let second = first.spawn_alongside(limits).await;
        first.verified_user("jane@example.com").await;

        first.login("jane@example.com", "wrong password").await.expect(401, None);
        second.login("jane@example.com", "wrong password").await.expect(401, None);

        assert_rate_limited(&first.login("jane@example.com", PASSWORD).await, 60);
        assert_rate_limited(&second.login("jane@example.com", PASSWORD).await, 60);
    }

    async fn security_events_are_audited(db: Db) {
        let app = TestApp::spawn_with(db, |config| {
            config.limits = Limits { login_account: limit(2, 900), ..Limits::OFF };
        })
        .await;
        let signed_in = app.verified_user("jane@example.com").await;
        let token = signed_in["access"].as_str();
        let stolen = signed_in["refresh"].clone();
        app.post("/auth/token/refresh", json!({"refresh": stolen})).await.expect(200, None);
        app.clock.advance(Duration::from_secs(11));
        app.post("/auth/token/refresh", json!({"refresh": stolen})).await.expect(401, None);
        let relogged = app.login("jane@example.com", PASSWORD).await.body;
        app.request(Method::POST, "/auth/change-password", relogged["access"].as_str(), Some(json!({
            "current_password": PASSWORD, "new_password": "brand new secret", "confirm_password": "brand new secret"})))
            .await
            .expect(200, None);
        app.post("/auth/forgot-password", json!({"email": "jane@example.com"})).await.expect(200, None);
        let code = app.mail.latest_code("jane@example.com");
        app.post("/auth/reset-password", json!({"email": "jane@example.com", "otp": code,
            "new_password": "another new secret", "confirm_password": "another new secret"}))
            .await
            .expect(200, None);
        let again = app.login("jane@example.com", "another new secret").await.body;
        app.request(Method::POST, "/auth/logout-all", again["access"].as_str(), None).await;
        app.login("jane@example.com", "wrong 1").await;
        app.login("jane@example.com", "wrong 2").await;
        assert!(token.is_some());

        let rows = audit_rows(&app).await;

        for (action, outcome) in [
            ("registration", "success"), ("verification", "success"), ("login", "success"),
            ("login_failed", "failure"), ("lockout", "success"), ("refresh_reuse", "failure"),
            ("password_change", "success"), ("password_reset", "success"), ("session_revocation", "success"),
        ] {
            assert!(
                rows.iter().any(|row| row["action"] == action && row["outcome"] == outcome),
                "no {action}/{outcome} in {rows:?}"
            );
        }
        for row in &rows {
            assert_eq!(row["ip"], "127.0.0.1");
            assert!(row["user_id"].is_string(), "{row}");
            assert!(!row["details"].as_str().unwrap().contains(PASSWORD));
        }
    }
}

async fn audit_rows(app: &TestApp) -> Vec<Value> {
    use sea_orm::{EntityTrait, QueryOrder};
    authgate::store::audit::Entity::find()
        .order_by_asc(authgate::store::audit::Column::OccurredAt)
        .all(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .map(|row| json!({"action": row.action, "outcome": row.outcome, "user_id": row.user_id, "ip": row.ip,
            "details": row.details}))
        .collect()
}
