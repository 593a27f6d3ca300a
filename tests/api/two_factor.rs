//! Two-factor sign-in (§11), with real TOTP codes computed from the secret the API returns.

use std::time::Duration;

use authgate::clock::Clock;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Db, PASSWORD, Reply, TestApp};
use crate::tokens::claims_of;

/// The code an authenticator app shows for `secret` (base32) at the app's current time,
/// `steps` steps of 30 s from now.
pub fn totp_code(app: &TestApp, secret: &str, steps: i64) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret).expect("a base32 secret");
    let time = app.clock.now().timestamp() + steps * 30;
    totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(secret)
        .build_noncompliant()
        .generate(u64::try_from(time).unwrap())
        .to_string()
}

/// A verified user with an authenticator app on. Returns the first sign-in's body, the TOTP
/// secret and the recovery codes.
pub async fn user_with_totp(app: &TestApp, email: &str) -> (Value, String, Vec<String>) {
    let signed_in = app.verified_user(email).await;
    let token = signed_in["access"].as_str();
    let setup = app
        .request(
            Method::POST,
            "/auth/mfa/totp/setup",
            token,
            Some(json!({"password": PASSWORD})),
        )
        .await;
    setup.expect(200, None);
    let secret = setup.body["secret"].as_str().unwrap().to_string();
    let enabled = app
        .request(
            Method::POST,
            "/auth/mfa/totp/enable",
            token,
            Some(json!({"code": totp_code(app, &secret, 0)})),
        )
        .await;
    enabled.expect(200, None);
    let codes = enabled.body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|code| code.as_str().unwrap().to_string())
        .collect();
    // The step used to enable cannot be used again: move to the next one.
    app.clock.advance(Duration::from_secs(30));
    (signed_in, secret, codes)
}

pub async fn mfa_token(app: &TestApp, email: &str) -> String {
    let login = app.login(email, PASSWORD).await;
    login.expect(403, Some("mfa_required"));
    login.body["mfa_token"].as_str().unwrap().to_string()
}

pub async fn verify(app: &TestApp, token: &str, method: &str, code: &str) -> Reply {
    app.post(
        "/auth/mfa/verify",
        json!({"mfa_token": token, "method": method, "code": code}),
    )
    .await
}

db_tests! {
    async fn totp_setup_and_the_two_step_sign_in(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let token = signed_in["access"].as_str();
        assert_eq!(claims_of(token.unwrap())["amr"], json!(["pwd"]));

        app.request(Method::POST, "/auth/mfa/totp/setup", token, Some(json!({"password": "wrong password"})))
            .await
            .expect(401, Some("invalid_credentials"));
        app.request(Method::POST, "/auth/mfa/totp/enable", token, Some(json!({"code": "123456"})))
            .await
            .expect(400, Some("no_pending_setup"));
        let setup = app
            .request(Method::POST, "/auth/mfa/totp/setup", token, Some(json!({"password": PASSWORD})))
            .await;
        setup.expect(200, None);
        let secret = setup.body["secret"].as_str().unwrap().to_string();
        let uri = setup.body["otpauth_uri"].as_str().unwrap();
        assert!(uri.starts_with("otpauth://totp/authgate:jane%40example.com?"), "{uri}");
        assert!(uri.contains(&format!("secret={secret}")) && uri.contains("issuer=authgate"));
        assert!(setup.body["qr_code"].as_str().unwrap().starts_with("data:image/"));
        assert_eq!(setup.body["expires_in"], 600);

        let wrong = if totp_code(&app, &secret, 0) == "000000" { "111111" } else { "000000" };
        app.request(Method::POST, "/auth/mfa/totp/enable", token, Some(json!({"code": wrong})))
            .await
            .expect(400, Some("invalid_mfa_code"));
        let enabled = app
            .request(Method::POST, "/auth/mfa/totp/enable", token, Some(json!({"code": totp_code(&app, &secret, 0)})))
            .await;
        enabled.expect(200, None);
        assert_eq!(enabled.body["methods"], json!(["totp"]));
        let codes = enabled.body["recovery_codes"].as_array().unwrap();
        assert_eq!(codes.len(), 10);
        assert!(codes.iter().all(|code| code.as_str().unwrap().len() == 11));
        app.request(Method::POST, "/auth/mfa/totp/setup", token, Some(json!({"password": PASSWORD})))
            .await
            .expect(409, Some("already_enabled"));
        let status = app.get("/auth/mfa", token).await;
        assert_eq!(status.body["enabled"], true);
        assert_eq!(status.body["methods"][0]["type"], "totp");
        assert_eq!(status.body["recovery_codes_left"], 10);
        assert_eq!(app.get("/auth/me", token).await.body["mfa"], json!({"enabled": true, "methods": ["totp"]}));

        // Step 1: the right password, no token yet.
        app.clock.advance(Duration::from_secs(30));
        app.login("jane@example.com", "wrong password").await.expect(401, Some("invalid_credentials"));
        let login = app.login("jane@example.com", PASSWORD).await;
        login.expect(403, Some("mfa_required"));
        assert_eq!(login.body["methods"], json!(["totp", "recovery_code"]));
        assert_eq!(login.body["expires_in"], 300);
        assert!(login.body.get("access").is_none());
        let mfa_token = login.body["mfa_token"].as_str().unwrap();

        // Step 2: the app's code.
        let signed_in = verify(&app, mfa_token, "totp", &totp_code(&app, &secret, 0)).await;
        signed_in.expect(200, None);
        assert_eq!(signed_in.header("cache-control"), Some("no-store"));
        let access = signed_in.body["access"].as_str().unwrap();
        assert_eq!(claims_of(access)["amr"], json!(["pwd", "mfa", "otp"]));
        // The token is single use.
        verify(&app, mfa_token, "totp", &totp_code(&app, &secret, 1)).await.expect(401, Some("invalid_mfa_token"));
        // A refresh keeps the session's methods.
        let refreshed = app.post("/auth/token/refresh", json!({"refresh": signed_in.body["refresh"]})).await;
        assert_eq!(claims_of(refreshed.body["access"].as_str().unwrap())["amr"], json!(["pwd", "mfa", "otp"]));
    }

    async fn a_totp_step_works_once_even_for_two_racing_sign_ins(db: Db) {
        let app = TestApp::spawn(db).await;
        let (_, secret, _) = user_with_totp(&app, "jane@example.com").await;
        let (first, second) = (mfa_token(&app, "jane@example.com").await, mfa_token(&app, "jane@example.com").await);
        let code = totp_code(&app, &secret, 0);

        let (a, b) = tokio::join!(verify(&app, &first, "totp", &code), verify(&app, &second, "totp", &code));

        let mut statuses = [a.status.as_u16(), b.status.as_u16()];
        statuses.sort();
        assert_eq!(statuses, [200, 400], "{} / {}", a.text, b.text);
        // An older step than the one used is refused too.
        let third = mfa_token(&app, "jane@example.com").await;
        verify(&app, &third, "totp", &totp_code(&app, &secret, -1)).await.expect(400, Some("invalid_mfa_code"));
    }

    async fn one_mfa_token_signs_in_once_however_many_race(db: Db) {
        let app = TestApp::spawn(db).await;
        let (_, _, codes) = user_with_totp(&app, "jane@example.com").await;
        let token = mfa_token(&app, "jane@example.com").await;

        let (a, b) = tokio::join!(
            verify(&app, &token, "recovery_code", &codes[0]),
            verify(&app, &token, "recovery_code", &codes[1]),
        );

        let ok = [&a, &b].iter().filter(|reply| reply.status == 200).count();
        assert_eq!(ok, 1, "{} / {}", a.text, b.text);
    }

    async fn recovery_codes_work_once_mail_a_notice_and_can_be_replaced(db: Db) {
        let app = TestApp::spawn(db).await;
        let (signed_in, secret, codes) = user_with_totp(&app, "jane@example.com").await;

        let token = mfa_token(&app, "jane@example.com").await;
        // Typed with other case and spaces, as people do.
        let typed = codes[0].to_uppercase().replace('-', " ");
        verify(&app, &token, "recovery_code", &typed).await.expect(200, None);
        assert!(app.mail.to("jane@example.com").iter().any(|mail| mail.subject().contains("recovery code")));
        let again = mfa_token(&app, "jane@example.com").await;
        verify(&app, &again, "recovery_code", &codes[0]).await.expect(400, Some("invalid_mfa_code"));
        assert_eq!(app.get("/auth/mfa", signed_in["access"].as_str()).await.body["recovery_codes_left"], 9);

        let access = signed_in["access"].as_str();
        app.request(Method::POST, "/auth/mfa/recovery-codes", access, Some(json!({"password": PASSWORD, "code": "000000"})))
            .await
            .expect(400, Some("invalid_mfa_code"));
        let fresh = app
            .request(Method::POST, "/auth/mfa/recovery-codes", access, Some(json!({"password": PASSWORD, "code": totp_code(&app, &secret, 0)})))
            .await;
        fresh.expect(200, None);
        assert_eq!(fresh.body["recovery_codes"].as_array().unwrap().len(), 10);
        let old = mfa_token(&app, "jane@example.com").await;
        verify(&app, &old, "recovery_code", &codes[1]).await.expect(400, Some("invalid_mfa_code"));
        verify(&app, &old, "recovery_code", fresh.body["recovery_codes"][0].as_str().unwrap()).await.expect(200, None);
    }

    async fn codes_by_mail_as_a_second_factor(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        let token = signed_in["access"].as_str();

        app.request(Method::POST, "/auth/mfa/email/enable", token, Some(json!({"password": "wrong password"})))
            .await
            .expect(401, Some("invalid_credentials"));
        app.request(Method::POST, "/auth/mfa/email/enable", token, Some(json!({"password": PASSWORD})))
            .await
            .expect(202, None);
        let mail = app.mail.to("jane@example.com").pop().unwrap();
        assert!(mail.subject().contains("sign-in code"), "{}", mail.subject());
        app.request(Method::POST, "/auth/mfa/email/enable", token, Some(json!({"password": PASSWORD})))
            .await
            .expect(429, Some("resend_too_soon"));
        app.request(Method::POST, "/auth/mfa/email/confirm", token, Some(json!({"code": "000000"})))
            .await
            .expect(400, Some("invalid_mfa_code"));
        let enabled = app
            .request(Method::POST, "/auth/mfa/email/confirm", token, Some(json!({"code": mail.code().unwrap()})))
            .await;
        enabled.expect(200, None);
        assert_eq!(enabled.body["methods"], json!(["email"]));

        app.pass_cooldown();
        let login = app.login("jane@example.com", PASSWORD).await;
        login.expect(403, Some("mfa_required"));
        assert_eq!(login.body["methods"], json!(["email", "recovery_code"]));
        let mfa_token = login.body["mfa_token"].as_str().unwrap();
        app.post("/auth/mfa/challenge", json!({"mfa_token": "not a token", "method": "email"}))
            .await
            .expect(401, Some("invalid_mfa_token"));
        app.post("/auth/mfa/challenge", json!({"method": "email"}))
            .await
            .expect(401, Some("invalid_mfa_token"));
        let sent = app.post("/auth/mfa/challenge", json!({"mfa_token": mfa_token, "method": "email"})).await;
        sent.expect(202, None);
        assert_eq!(sent.body["otp_expires_in"], 600);
        let code = app.mail.latest_code("jane@example.com");
        verify(&app, mfa_token, "email", &code).await.expect(200, None);
    }

    async fn wrong_codes_burn_the_token_and_lock_the_account_out(db: Db) {
        let app = TestApp::spawn_with(db, |config| {
            config.limits.login_account = Some(authgate::config::Limit { count: 8, window: Duration::from_secs(900) });
        })
        .await;
        let (_, secret, _) = user_with_totp(&app, "jane@example.com").await;
        let good = totp_code(&app, &secret, 0);
        let wrong = if good == "999999" { "888888" } else { "999999" };

        let token = mfa_token(&app, "jane@example.com").await;
        for _ in 0..5 {
            verify(&app, &token, "totp", wrong).await.expect(400, Some("invalid_mfa_code"));
        }
        verify(&app, &token, "totp", &good).await.expect(401, Some("invalid_mfa_token"));

        // A guesser with fresh tokens runs into the account's lockout: five wrong codes above,
        // three more reach the limit of eight, and then even the right code is refused.
        let token = mfa_token(&app, "jane@example.com").await;
        for _ in 0..3 {
            verify(&app, &token, "totp", wrong).await.expect(400, Some("invalid_mfa_code"));
        }
        let locked = verify(&app, &token, "totp", &good).await;
        locked.expect(429, Some("rate_limited"));
        app.login("jane@example.com", PASSWORD).await.expect(429, Some("rate_limited"));
    }

    async fn step_up_codes_count_toward_the_lockout_like_passwords(db: Db) {
        let app = TestApp::spawn_with(db, |config| {
            config.limits.login_account = Some(authgate::config::Limit { count: 5, window: Duration::from_secs(900) });
        })
        .await;
        let (signed_in, secret, _) = user_with_totp(&app, "jane@example.com").await;
        let access = signed_in["access"].as_str();
        let good = totp_code(&app, &secret, 0);
        let wrong = if good == "999999" { "888888" } else { "999999" };
        let with_code = |code: &str| json!({"password": PASSWORD, "code": code});

        // Whoever holds the session and the password guesses the code of a sensitive change.
        for path in ["/auth/mfa/recovery-codes", "/auth/mfa/recovery-codes", "/auth/mfa/totp"] {
            let method = if path.ends_with("totp") { Method::DELETE } else { Method::POST };
            app.request(method, path, access, Some(with_code(wrong))).await.expect(400, Some("invalid_mfa_code"));
        }
        let change = json!({"current_password": PASSWORD, "new_password": "a brand new secret",
            "confirm_password": "a brand new secret", "mfa_code": wrong});
        for _ in 0..2 {
            app.request(Method::POST, "/auth/change-password", access, Some(change.clone()))
                .await
                .expect(400, Some("invalid_mfa_code"));
        }
        // Five wrong codes are the limit: the right code is refused, and so is the next login.
        app.request(Method::POST, "/auth/mfa/recovery-codes", access, Some(with_code(&good)))
            .await
            .expect(429, Some("rate_limited"));
        app.login("jane@example.com", PASSWORD).await.expect(429, Some("rate_limited"));
        let failures = app.count_where("audit_events", "action = 'mfa_challenge_failed'").await;
        assert_eq!(failures, 5);
    }

    async fn a_waiting_sign_in_ends_when_the_password_changes(db: Db) {
        let app = TestApp::spawn(db).await;
        let (signed_in, secret, _) = user_with_totp(&app, "jane@example.com").await;
        let token = mfa_token(&app, "jane@example.com").await;
        let change = json!({"current_password": PASSWORD, "new_password": "a brand new secret",
            "confirm_password": "a brand new secret", "mfa_code": totp_code(&app, &secret, 0)});
        app.request(Method::POST, "/auth/change-password", signed_in["access"].as_str(), Some(change))
            .await
            .expect(200, None);
        app.clock.advance(Duration::from_secs(30));

        verify(&app, &token, "totp", &totp_code(&app, &secret, 0)).await.expect(401, Some("invalid_mfa_token"));
    }

    async fn expired_and_unknown_tokens_are_refused(db: Db) {
        let app = TestApp::spawn(db).await;
        let (_, secret, _) = user_with_totp(&app, "jane@example.com").await;
        let token = mfa_token(&app, "jane@example.com").await;
        app.clock.advance(Duration::from_secs(301));

        verify(&app, &token, "totp", &totp_code(&app, &secret, 0)).await.expect(401, Some("invalid_mfa_token"));
        verify(&app, "made-up", "totp", "123456").await.expect(401, Some("invalid_mfa_token"));
        let missing = app.post("/auth/mfa/verify", json!({"mfa_token": token})).await;
        missing.expect(400, Some("validation_failed"));
        app.post("/auth/mfa/verify", json!({"mfa_token": token, "method": "sms", "code": "1"}))
            .await
            .expect(400, Some("validation_failed"));
    }

    async fn a_trusted_device_skips_the_second_factor_until_revoked(db: Db) {
        let app = TestApp::spawn(db).await;
        let (signed_in, secret, _) = user_with_totp(&app, "jane@example.com").await;
        let token = mfa_token(&app, "jane@example.com").await;
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";

        let remembered = app
            .client
            .post(format!("{}/auth/mfa/verify", app.base))
            .header("user-agent", firefox)
            .json(&json!({"mfa_token": token, "method": "totp", "code": totp_code(&app, &secret, 0),
                "remember_device": true, "device_name": "Jane's laptop"}))
            .send()
            .await
            .unwrap();
        let remembered = Reply::read(remembered).await;
        remembered.expect(200, None);
        let device_token = remembered.body["device_token"].as_str().unwrap().to_string();

        let direct = app
            .post("/auth/login", json!({"email": "jane@example.com", "password": PASSWORD, "device_token": device_token}))
            .await;
        direct.expect(200, None);
        let access = direct.body["access"].as_str().unwrap();
        assert_eq!(claims_of(access)["amr"], json!(["pwd", "mfa", "swk"]));
        // Another account cannot use the token; a made-up one is ignored.
        app.post("/auth/login", json!({"email": "jane@example.com", "password": PASSWORD, "device_token": "made-up"}))
            .await
            .expect(403, Some("mfa_required"));

        let devices = app.get("/auth/devices", Some(access)).await;
        devices.expect(200, None);
        let device = &devices.body[0];
        assert_eq!(device["name"], "Jane's laptop");
        assert!(device["browser"].as_str().unwrap().starts_with("Firefox"), "{device}");
        assert_eq!(device["os"], "Linux");
        assert_eq!(device["device_type"], "desktop");
        assert_eq!(device["current"], true);
        assert!(app.get("/auth/devices", signed_in["access"].as_str()).await.body[0]["current"] == false);

        let id = device["id"].as_str().unwrap();
        app.request(Method::DELETE, &format!("/auth/devices/{}", uuid::Uuid::new_v4()), Some(access), None)
            .await
            .expect(404, Some("not_found"));
        app.request(Method::DELETE, &format!("/auth/devices/{id}"), Some(access), None).await.expect(204, None);
        app.post("/auth/login", json!({"email": "jane@example.com", "password": PASSWORD, "device_token": device_token}))
            .await
            .expect(403, Some("mfa_required"));
    }

    async fn changing_the_password_needs_a_code_and_forgets_trusted_devices(db: Db) {
        let app = TestApp::spawn(db).await;
        let (signed_in, secret, _) = user_with_totp(&app, "jane@example.com").await;
        let token = mfa_token(&app, "jane@example.com").await;
        let device_token = app
            .post("/auth/mfa/verify", json!({"mfa_token": token, "method": "totp", "code": totp_code(&app, &secret, 0), "remember_device": true}))
            .await
            .body["device_token"]
            .as_str()
            .unwrap()
            .to_string();
        app.clock.advance(Duration::from_secs(30));
        let access = signed_in["access"].as_str();
        let change = |code: Option<String>| {
            json!({"current_password": PASSWORD, "new_password": "a brand new secret", "confirm_password": "a brand new secret", "mfa_code": code})
        };

        let asked = app.request(Method::POST, "/auth/change-password", access, Some(change(None))).await;
        asked.expect(403, Some("mfa_required"));
        assert_eq!(asked.body["methods"], json!(["totp", "recovery_code"]));
        assert!(asked.body.get("mfa_token").is_none());
        app.request(Method::POST, "/auth/change-password", access, Some(change(Some("000000".into()))))
            .await
            .expect(400, Some("invalid_mfa_code"));
        let changed = app
            .request(Method::POST, "/auth/change-password", access, Some(change(Some(totp_code(&app, &secret, 0)))))
            .await;
        changed.expect(200, None);
        assert_eq!(claims_of(changed.body["access"].as_str().unwrap())["amr"], json!(["pwd", "mfa", "otp"]));

        app.post("/auth/login", json!({"email": "jane@example.com", "password": "a brand new secret", "device_token": device_token}))
            .await
            .expect(403, Some("mfa_required"));
    }

    async fn a_step_up_takes_a_mailed_code_beside_an_authenticator_app(db: Db) {
        let app = TestApp::spawn(db).await;
        let (signed_in, secret, _) = user_with_totp(&app, "jane@example.com").await;
        let access = signed_in["access"].as_str();
        app.request(Method::POST, "/auth/mfa/email/enable", access, Some(json!({"password": PASSWORD})))
            .await
            .expect(202, None);
        let code = app.mail.latest_code("jane@example.com");
        app.request(Method::POST, "/auth/mfa/email/confirm", access, Some(json!({"code": code})))
            .await
            .expect(200, None);
        let change = |code: String| {
            json!({"current_password": PASSWORD, "new_password": "a brand new secret", "confirm_password": "a brand new secret", "mfa_code": code})
        };
        app.pass_cooldown();
        app.request(Method::POST, "/auth/mfa/challenge", access, Some(json!({"method": "email"})))
            .await
            .expect(202, None);
        let mailed = app.mail.latest_code("jane@example.com");
        // Neither the app's code nor the mailed one when the code is neither.
        let wrong = if mailed == "000000" { "111111" } else { "000000" };
        app.request(Method::POST, "/auth/change-password", access, Some(change(wrong.into())))
            .await
            .expect(400, Some("invalid_mfa_code"));

        let changed = app.request(Method::POST, "/auth/change-password", access, Some(change(mailed.clone()))).await;

        changed.expect(200, None);
        // Used up: the same mailed code does not step up twice; the app's code still does.
        let access = changed.body["access"].as_str();
        let again = |code: String| json!({"password": "a brand new secret", "code": code});
        app.request(Method::POST, "/auth/mfa/recovery-codes", access, Some(again(mailed)))
            .await
            .expect(400, Some("invalid_mfa_code"));
        app.request(Method::POST, "/auth/mfa/recovery-codes", access, Some(again(totp_code(&app, &secret, 0))))
            .await
            .expect(200, None);
    }

    async fn turning_the_last_factor_off_removes_codes_and_devices(db: Db) {
        let app = TestApp::spawn(db).await;
        let (signed_in, secret, codes) = user_with_totp(&app, "jane@example.com").await;
        let access = signed_in["access"].as_str();

        app.request(Method::DELETE, "/auth/mfa/totp", access, Some(json!({"password": PASSWORD, "code": "000000"})))
            .await
            .expect(400, Some("invalid_mfa_code"));
        app.request(Method::DELETE, "/auth/mfa/totp", access, Some(json!({"password": "wrong password", "code": codes[0]})))
            .await
            .expect(401, Some("invalid_credentials"));
        app.request(Method::DELETE, "/auth/mfa/sms", access, Some(json!({"password": PASSWORD, "code": codes[0]})))
            .await
            .expect(404, Some("not_found"));
        let off = app
            .request(Method::DELETE, "/auth/mfa/totp", access, Some(json!({"password": PASSWORD, "code": totp_code(&app, &secret, 0)})))
            .await;
        off.expect(200, None);
        assert_eq!(off.body["methods"], json!([]));
        let status = app.get("/auth/mfa", access).await;
        assert_eq!(status.body, json!({"enabled": false, "methods": [], "recovery_codes_left": 0}));
        let login = app.login("jane@example.com", PASSWORD).await;
        login.expect(200, None);
        assert_eq!(claims_of(login.body["access"].as_str().unwrap())["amr"], json!(["pwd"]));
    }

    async fn restoring_never_skips_the_second_factor(db: Db) {
        let app = TestApp::spawn(db).await;
        let (_, secret, _) = user_with_totp(&app, "jane@example.com").await;
        app.execute("UPDATE users SET status = 'pending_deletion', is_active = false").await;

        let restore = app.post("/auth/restore", json!({"login": "jane@example.com", "password": PASSWORD})).await;
        restore.expect(403, Some("mfa_required"));
        let token = restore.body["mfa_token"].as_str().unwrap();
        let restored = verify(&app, token, "totp", &totp_code(&app, &secret, 0)).await;
        restored.expect(200, None);
        assert_eq!(restored.body["user"]["status"], "active");
        // A plain login of the pending account was refused before the second factor.
        app.execute("UPDATE users SET status = 'pending_deletion', is_active = false").await;
        app.login("jane@example.com", PASSWORD).await.expect(403, Some("account_pending_deletion"));
    }

    async fn a_restore_waiting_for_its_code_cannot_undo_a_disable_or_outlive_the_grace(db: Db) {
        let app = TestApp::spawn(db).await;
        let (_, secret, _) = user_with_totp(&app, "jane@example.com").await;
        let pending = "UPDATE users SET status = 'pending_deletion', is_active = false";
        app.execute(pending).await;
        let restore = || app.post("/auth/restore", json!({"login": "jane@example.com", "password": PASSWORD}));

        // An admin disables the account while its owner fetches their code.
        let token = restore().await.body["mfa_token"].as_str().unwrap().to_string();
        app.execute("UPDATE users SET status = 'disabled'").await;
        verify(&app, &token, "totp", &totp_code(&app, &secret, 0)).await.expect(409, Some("not_pending_deletion"));
        assert_eq!(app.query_strings("SELECT status FROM users").await, ["disabled"]);

        // The grace ends while the code is typed: the account is as good as gone.
        app.execute(pending).await;
        let due = (app.clock.now() + chrono::TimeDelta::seconds(60)).to_rfc3339();
        app.execute(&format!("UPDATE users SET deletion_scheduled_for = '{due}'")).await;
        let token = restore().await.body["mfa_token"].as_str().unwrap().to_string();
        app.clock.advance(Duration::from_secs(61));
        verify(&app, &token, "totp", &totp_code(&app, &secret, 0)).await.expect(401, Some("invalid_credentials"));
        assert_eq!(app.query_strings("SELECT status FROM users").await, ["pending_deletion"]);
        restore().await.expect(401, Some("invalid_credentials"));
    }

    async fn totp_secrets_are_sealed_at_rest(db: Db) {
        let app = TestApp::spawn_with(db, |config| {
            config.encryption_keys = authgate::config::Secret::new(crate::secrets::encryption_key("k1", 3));
        })
        .await;
        let (_, secret, _) = user_with_totp(&app, "jane@example.com").await;

        let stored = app.query_strings("SELECT secret FROM mfa_factors").await;
        assert!(stored[0].starts_with("enc:v1:k1:"), "{}", stored[0]);
        assert!(!stored[0].contains(&secret));
        let token = mfa_token(&app, "jane@example.com").await;
        verify(&app, &token, "totp", &totp_code(&app, &secret, 0)).await.expect(200, None);
    }
}

db_tests! {
    async fn changing_the_address_asks_for_the_second_factor(db: Db) {
        let app = TestApp::spawn(db).await;
        let (signed_in, secret, _) = user_with_totp(&app, "jane@example.com").await;
        let access = signed_in["access"].as_str();
        let request = |code: Option<String>| json!({"new_email": "jane@example.org", "password": PASSWORD, "mfa_code": code});

        let asked = app.request(Method::POST, "/auth/me/email", access, Some(request(None))).await;
        asked.expect(403, Some("mfa_required"));
        assert_eq!(asked.body["methods"], json!(["totp", "recovery_code"]));
        app.request(Method::POST, "/auth/me/email", access, Some(request(Some("000000".into()))))
            .await
            .expect(400, Some("invalid_mfa_code"));
        app.request(Method::POST, "/auth/me/email", access, Some(request(Some(totp_code(&app, &secret, 0)))))
            .await
            .expect(202, None);
        let confirmed = app
            .request(Method::POST, "/auth/me/email/confirm", access, Some(json!({"otp": app.mail.latest_code("jane@example.org")})))
            .await;
        confirmed.expect(200, None);
        // The new session keeps how the caller's own was authenticated: a password alone here.
        assert_eq!(claims_of(confirmed.body["access"].as_str().unwrap())["amr"], json!(["pwd"]));
    }
}
