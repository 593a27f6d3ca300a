//! Registration, verification and resends (§4, §6).

use std::time::Duration;

use serde_json::json;

use crate::helpers::{Db, PASSWORD, TestApp};

db_tests! {
    async fn registration_creates_an_unverified_user_and_mails_a_code(db: Db) {
        let app = TestApp::spawn(db).await;

        let reply = app
            .post("/auth/register", json!({
                "email": "jane@example.com", "password": PASSWORD, "password2": PASSWORD,
                "first_name": "Jane", "last_name": "Doe", "phone_number": "+15551234567",
            }))
            .await;

        reply.expect(201, None);
        assert_eq!(reply.body["otp_sent"], true);
        assert_eq!(reply.body["otp_expires_in"], 600);
        let user = &reply.body["user"];
        assert_eq!(user["email"], "jane@example.com");
        assert_eq!(user["first_name"], "Jane");
        assert_eq!(user["phone_number"], "+15551234567");
        assert_eq!(user["role"], "user");
        assert_eq!(user["is_verified"], false);
        assert_eq!(user["is_active"], true);
        assert_eq!(user["profile_complete"], true);
        assert_eq!(user["profile"], json!({"bio": "", "avatar_url": null, "date_of_birth": null}));
        assert!(uuid::Uuid::parse_str(user["id"].as_str().unwrap()).is_ok());
        assert!(chrono::DateTime::parse_from_rfc3339(user["created_at"].as_str().unwrap()).is_ok());
        let mails = app.mail.to("jane@example.com");
        assert_eq!(mails.len(), 1);
        assert!(mails[0].subject().contains("Verify"));
        assert!(mails[0].code().is_some());
    }

    async fn verification_signs_in_and_only_once(db: Db) {
        let app = TestApp::spawn(db).await;
        app.register("jane@example.com", PASSWORD).await.expect(201, None);
        let code = app.mail.latest_code("jane@example.com");

        let reply = app.post("/auth/verify-otp", json!({"email": "jane@example.com", "otp": code})).await;

        reply.expect(200, None);
        assert_eq!(reply.body["verified"], true);
        assert!(reply.body["message"].is_string());
        assert_eq!(reply.body["user"]["is_verified"], true);
        assert_eq!(reply.body["token_type"], "Bearer");
        assert_eq!(reply.body["expires_in"], 300);
        assert_eq!(reply.body["refresh_expires_in"], 86_400);
        let access = reply.body["access"].as_str().unwrap();
        app.get("/auth/me", Some(access)).await.expect(200, None);
        // Verified now: any code, right or wrong, gets 409.
        app.post("/auth/verify-otp", json!({"email": "jane@example.com", "otp": code}))
            .await
            .expect(409, Some("already_verified"));
        app.post("/auth/verify-otp", json!({"email": "jane@example.com", "otp": "000000"}))
            .await
            .expect(409, Some("already_verified"));
    }

    async fn wrong_unknown_and_malformed_codes_are_invalid(db: Db) {
        let app = TestApp::spawn(db).await;
        app.register("jane@example.com", PASSWORD).await.expect(201, None);
        let code = app.mail.latest_code("jane@example.com");
        let wrong = if code == "111111" { "222222" } else { "111111" };

        app.post("/auth/verify-otp", json!({"email": "jane@example.com", "otp": wrong}))
            .await
            .expect(400, Some("invalid_otp"));
        app.post("/auth/verify-otp", json!({"email": "nobody@example.com", "otp": code}))
            .await
            .expect(400, Some("invalid_otp"));
        app.post("/auth/verify-otp", json!({"email": "jane@example.com", "otp": "12ab"}))
            .await
            .expect(400, Some("invalid_otp"));
        let missing = app.post("/auth/verify-otp", json!({"email": "jane@example.com"})).await;
        missing.expect(400, Some("validation_failed"));
        assert_eq!(missing.field_problems("otp"), vec!["This field is required."]);
        // The right code still works after those misses.
        app.post("/auth/verify-otp", json!({"email": "jane@example.com", "otp": code})).await.expect(200, None);
    }

    async fn codes_burn_after_max_wrong_guesses(db: Db) {
        let app = TestApp::spawn_with(db, |config| config.otp_max_attempts = 3).await;
        app.register("jane@example.com", PASSWORD).await.expect(201, None);
        let code = app.mail.latest_code("jane@example.com");
        let wrong = if code == "111111" { "222222" } else { "111111" };

        for _ in 0..3 {
            app.post("/auth/verify-otp", json!({"email": "jane@example.com", "otp": wrong}))
                .await
                .expect(400, Some("invalid_otp"));
        }
        app.post("/auth/verify-otp", json!({"email": "jane@example.com", "otp": code}))
            .await
            .expect(400, Some("otp_locked"));

        // A new code starts afresh.
        app.pass_cooldown();
        app.post("/auth/resend-otp", json!({"email": "jane@example.com"})).await.expect(200, None);
        let fresh = app.mail.latest_code("jane@example.com");
        app.post("/auth/verify-otp", json!({"email": "jane@example.com", "otp": fresh})).await.expect(200, None);
    }

    async fn parallel_wrong_guesses_cannot_exceed_the_limit(db: Db) {
        let app = TestApp::spawn_with(db, |config| config.otp_max_attempts = 3).await;
        app.register("jane@example.com", PASSWORD).await.expect(201, None);
        let code = app.mail.latest_code("jane@example.com");
        let wrong = if code == "111111" { "222222" } else { "111111" };

        let guesses = (0..8).map(|_| app.post("/auth/verify-otp", json!({"email": "jane@example.com", "otp": wrong})));
        for reply in futures_util::future::join_all(guesses).await {
            assert_eq!(reply.status, 400, "{}", reply.text);
        }

        app.post("/auth/verify-otp", json!({"email": "jane@example.com", "otp": code}))
            .await
            .expect(400, Some("otp_locked"));
    }

    async fn unknown_addresses_lock_exactly_like_real_ones(db: Db) {
        let app = TestApp::spawn_with(db, |config| config.otp_max_attempts = 3).await;
        app.register("jane@example.com", PASSWORD).await.expect(201, None);

        for email in ["jane@example.com", "ghost@example.com"] {
            for _ in 0..3 {
                app.post("/auth/verify-otp", json!({"email": email, "otp": "000000"}))
                    .await
                    .expect(400, Some("invalid_otp"));
            }
            app.post("/auth/verify-otp", json!({"email": email, "otp": "000000"}))
                .await
                .expect(400, Some("otp_locked"));
        }
        // The same for reset codes, asked for or not.
        app.post("/auth/forgot-password", json!({"email": "ghost@example.com"})).await.expect(200, None);
        for email in ["ghost@example.com", "nobody@example.com"] {
            for _ in 0..3 {
                app.post("/auth/verify-password-reset-otp", json!({"email": email, "otp": "000000"})).await;
            }
            app.post("/auth/verify-password-reset-otp", json!({"email": email, "otp": "000000"}))
                .await
                .expect(400, Some("otp_locked"));
        }
    }

    async fn codes_expire(db: Db) {
        let app = TestApp::spawn(db).await;
        app.register("jane@example.com", PASSWORD).await.expect(201, None);
        let code = app.mail.latest_code("jane@example.com");

        app.clock.advance(Duration::from_secs(600));

        app.post("/auth/verify-otp", json!({"email": "jane@example.com", "otp": code}))
            .await
            .expect(400, Some("invalid_otp"));
    }

    async fn a_new_code_voids_the_older_one(db: Db) {
        let app = TestApp::spawn(db).await;
        app.register("jane@example.com", PASSWORD).await.expect(201, None);
        let first = app.mail.latest_code("jane@example.com");
        app.pass_cooldown();

        let reply = app.post("/auth/resend-otp", json!({"email": "jane@example.com", "context": "registration"})).await;

        reply.expect(200, None);
        assert_eq!(reply.body["otp_expires_in"], 600);
        let second = app.mail.latest_code("jane@example.com");
        assert_eq!(app.mail.to("jane@example.com").len(), 2);
        if first != second {
            app.post("/auth/verify-otp", json!({"email": "jane@example.com", "otp": first}))
                .await
                .expect(400, Some("invalid_otp"));
        }
        app.post("/auth/verify-otp", json!({"email": "jane@example.com", "otp": second})).await.expect(200, None);
    }

    async fn resends_look_alike_for_known_and_unknown_addresses(db: Db) {
        let app = TestApp::spawn(db).await;
        app.register("jane@example.com", PASSWORD).await.expect(201, None);
        app.pass_cooldown();

        let known = app.post("/auth/resend-otp", json!({"email": "jane@example.com"})).await;
        let unknown = app.post("/auth/resend-otp", json!({"email": "ghost@example.com"})).await;

        known.expect(200, None);
        unknown.expect(200, None);
        assert_eq!(known.body, unknown.body);
        assert!(app.mail.to("ghost@example.com").is_empty());
        // The cooldown holds for both, with the same answer.
        let known = app.post("/auth/resend-otp", json!({"email": "jane@example.com"})).await;
        let unknown = app.post("/auth/resend-otp", json!({"email": "ghost@example.com"})).await;
        known.expect(429, Some("resend_too_soon"));
        unknown.expect(429, Some("resend_too_soon"));
        assert_eq!(known.body["retry_after"], 60);
        assert_eq!(unknown.body["retry_after"], 60);
        assert_eq!(known.header("retry-after"), Some("60"));
        assert_eq!(unknown.header("retry-after"), Some("60"));
    }

    async fn resends_never_wait_for_the_mail_server(db: Db) {
        let app = TestApp::spawn(db).await;
        app.register("jane@example.com", PASSWORD).await.expect(201, None);
        app.pass_cooldown();
        // A mail server this slow would have told real addresses from unknown ones by timing
        // when requests waited for it.
        app.mail.delay(Duration::from_secs(2));

        let started = std::time::Instant::now();
        let known = app.client.post(format!("{}/auth/resend-otp", app.base))
            .json(&json!({"email": "jane@example.com"})).send().await.unwrap();
        let known_latency = started.elapsed();
        let started = std::time::Instant::now();
        let unknown = app.client.post(format!("{}/auth/resend-otp", app.base))
            .json(&json!({"email": "ghost@example.com"})).send().await.unwrap();
        let unknown_latency = started.elapsed();

        assert_eq!(known.status(), 200);
        assert_eq!(unknown.status(), 200);
        assert_eq!(known.text().await.unwrap(), unknown.text().await.unwrap());
        for latency in [known_latency, unknown_latency] {
            assert!(latency < Duration::from_secs(1), "a request waited for the mail server: {latency:?}");
        }
        app.mail.delay(Duration::ZERO);
        app.deliver_mail().await;
        assert_eq!(app.mail.to("jane@example.com").len(), 2, "the resent code arrives");
        assert!(app.mail.to("ghost@example.com").is_empty());
    }

    async fn resend_for_a_verified_account_mails_nothing(db: Db) {
        let app = TestApp::spawn(db).await;
        app.verified_user("jane@example.com").await;
        app.pass_cooldown();

        app.post("/auth/resend-otp", json!({"email": "jane@example.com"})).await.expect(200, None);

        assert_eq!(app.mail.to("jane@example.com").len(), 1, "only the first verification mail");
    }

    async fn registering_again_before_verification_replaces_the_password(db: Db) {
        let app = TestApp::spawn(db).await;
        app.register("jane@example.com", PASSWORD).await.expect(201, None);
        let first_code = app.mail.latest_code("jane@example.com");

        // Inside the cooldown: refused, and nothing changes.
        let early = app
            .post("/auth/register", json!({"email": "jane@example.com", "password": "a squatter password",
                "password2": "a squatter password", "first_name": "Mallory"}))
            .await;
        early.expect(429, Some("resend_too_soon"));
        assert!(early.body["retry_after"].as_u64().is_some_and(|s| (1..=60).contains(&s)));
        assert_eq!(app.count("users").await, 1);

        app.pass_cooldown();
        let again = app
            .post("/auth/register", json!({"email": "jane@example.com", "password": "the real owner pw",
                "password2": "the real owner pw", "first_name": "Jane"}))
            .await;
        again.expect(201, None);
        assert_eq!(app.count("users").await, 1);
        let code = app.mail.latest_code("jane@example.com");
        if code != first_code {
            app.post("/auth/verify-otp", json!({"email": "jane@example.com", "otp": first_code, "password": "the real owner pw"}))
                .await
                .expect(400, Some("invalid_otp"));
        }
        app.post("/auth/verify-otp", json!({"email": "jane@example.com", "otp": code, "password": "the real owner pw"}))
            .await
            .expect(200, None);
        app.login("jane@example.com", PASSWORD).await.expect(401, Some("invalid_credentials"));
        app.login("jane@example.com", "the real owner pw").await.expect(200, None);
    }

    async fn a_re_registered_address_verifies_only_with_the_newest_password(db: Db) {
        let app = TestApp::spawn(db).await;
        // Jane registers; before she verifies, Mallory registers her address with his password.
        app.register("jane@example.com", PASSWORD).await.expect(201, None);
        app.pass_cooldown();
        app.post("/auth/register", json!({"email": "jane@example.com", "password": "mallory's password",
            "password2": "mallory's password"}))
            .await
            .expect(201, None);
        let newest_code = app.mail.latest_code("jane@example.com");

        // Jane enters the newest code from her inbox, as before the fix, and gets no account
        // holding Mallory's password: without a password she is asked for it...
        let without = app.post("/auth/verify-otp", json!({"email": "jane@example.com", "otp": newest_code})).await;
        without.expect(400, Some("validation_failed"));
        assert!(!without.field_problems("password").is_empty(), "{}", without.text);
        // ...and with her own (not the newest registration's) it is a wrong code, counted.
        app.post("/auth/verify-otp", json!({"email": "jane@example.com", "otp": newest_code, "password": PASSWORD}))
            .await
            .expect(400, Some("invalid_otp"));
        let attempts = app.count_where("one_time_codes", "attempts = 1").await;
        assert_eq!(attempts, 1, "the wrong password counted as a wrong code");
        app.login("jane@example.com", "mallory's password").await.expect(403, Some("email_not_verified"));

        // She registers again with her password, and verifies with it.
        app.pass_cooldown();
        app.register("jane@example.com", PASSWORD).await.expect(201, None);
        let code = app.mail.latest_code("jane@example.com");
        app.post("/auth/verify-otp", json!({"email": "jane@example.com", "otp": code, "password": PASSWORD}))
            .await
            .expect(200, None);
        app.login("jane@example.com", "mallory's password").await.expect(401, Some("invalid_credentials"));
    }

    async fn wrong_passwords_at_verification_burn_the_code_like_wrong_codes(db: Db) {
        let app = TestApp::spawn(db).await;
        app.register("jane@example.com", PASSWORD).await.expect(201, None);
        app.pass_cooldown();
        app.register("jane@example.com", PASSWORD).await.expect(201, None);
        let code = app.mail.latest_code("jane@example.com");

        for _ in 0..5 {
            app.post("/auth/verify-otp", json!({"email": "jane@example.com", "otp": code, "password": "not the password"}))
                .await
                .expect(400, Some("invalid_otp"));
        }

        app.post("/auth/verify-otp", json!({"email": "jane@example.com", "otp": code, "password": PASSWORD}))
            .await
            .expect(400, Some("otp_locked"));
    }

    async fn a_verified_address_is_taken(db: Db) {
        let app = TestApp::spawn(db).await;
        app.verified_user("jane@example.com").await;

        app.register("JANE@example.com", "another password here").await.expect(409, Some("email_taken"));

        app.login("jane@example.com", PASSWORD).await.expect(200, None);
    }

    async fn invalid_registrations_name_each_field_and_store_nothing(db: Db) {
        let app = TestApp::spawn(db).await;

        let cases = [
            (json!({"email": "not-an-email", "password": PASSWORD, "password2": PASSWORD}), "email"),
            (json!({"email": "jane@example.com", "password": PASSWORD, "password2": "something else"}), "password2"),
            (json!({"email": "jane@example.com", "password": "short1", "password2": "short1"}), "password"),
            (json!({"email": "jane@example.com", "password": "8675309123", "password2": "8675309123"}), "password"),
            (json!({"email": "jane@example.com", "password": "password123", "password2": "password123"}), "password"),
            (json!({"email": "jane@example.com", "password": "Jane@Example.com", "password2": "Jane@Example.com"}), "password"),
            (json!({"email": "jane@example.com", "password": PASSWORD, "password2": PASSWORD, "role": "superuser"}), "role"),
            (json!({"email": "jane@example.com", "password": PASSWORD, "password2": PASSWORD, "phone_number": "call me"}), "phone_number"),
            (json!({"email": "jane@example.com", "password": PASSWORD, "password2": PASSWORD, "first_name": "Ev\u{202e}e"}), "first_name"),
            (json!({"password": PASSWORD, "password2": PASSWORD}), "email"),
            (json!({"email": "jane@example.com", "password": "x".repeat(1025), "password2": "x".repeat(1025)}), "password"),
        ];
        for (body, field) in cases {
            let reply = app.post("/auth/register", body.clone()).await;
            reply.expect(400, Some("validation_failed"));
            assert!(!reply.field_problems(field).is_empty(), "{field} not named for {body}: {}", reply.text);
        }

        assert_eq!(app.count("users").await, 0);
        assert_eq!(app.count("one_time_codes").await, 0);
        assert!(app.mail.all().is_empty());
    }

    async fn weak_passwords_list_every_failed_rule(db: Db) {
        let app = TestApp::spawn(db).await;

        let reply = app.post("/auth/register", json!({"email": "jane@example.com", "password": "1234567", "password2": "1234567"})).await;

        reply.expect(400, Some("validation_failed"));
        let problems = reply.field_problems("password").join(" ");
        assert!(problems.contains("too short"), "{problems}");
        assert!(problems.contains("numeric"), "{problems}");
        assert!(problems.contains("common"), "{problems}");
    }

    async fn roles_come_from_the_allowed_list(db: Db) {
        let app = TestApp::spawn_with(db, |config| {
            config.self_assignable_roles = vec!["user".into(), "editor".into()];
        })
        .await;

        let admin = app
            .post("/auth/register", json!({"email": "a@example.com", "password": PASSWORD, "password2": PASSWORD, "role": "admin"}))
            .await;
        let editor = app
            .post("/auth/register", json!({"email": "e@example.com", "password": PASSWORD, "password2": PASSWORD, "role": "editor"}))
            .await;
        let default = app.register("d@example.com", PASSWORD).await;

        admin.expect(403, Some("role_not_allowed"));
        editor.expect(201, None);
        assert_eq!(editor.body["user"]["role"], "editor");
        assert_eq!(default.body["user"]["role"], "user");
    }

    async fn only_allowed_email_domains_register(db: Db) {
        let app = TestApp::spawn_with(db, |config| config.allowed_email_domains = vec!["ucla.edu".into()]).await;

        app.register("joe@ucla.edu", PASSWORD).await.expect(201, None);
        app.register("joe@g.ucla.edu", PASSWORD).await.expect(201, None);
        app.register("joe@notucla.edu", PASSWORD).await.expect(403, Some("email_domain_not_allowed"));
        app.register("joe@example.com", PASSWORD).await.expect(403, Some("email_domain_not_allowed"));
        assert_eq!(app.count("users").await, 2);
    }

    async fn emails_are_trimmed_and_lowercased_everywhere(db: Db) {
        let app = TestApp::spawn(db).await;

        let reply = app.register("  Jane.Doe@Example.COM ", PASSWORD).await;

        reply.expect(201, None);
        assert_eq!(reply.body["user"]["email"], "jane.doe@example.com");
        let code = app.mail.latest_code("jane.doe@example.com");
        app.post("/auth/verify-otp", json!({"email": "JANE.DOE@example.com", "otp": code})).await.expect(200, None);
        app.login(" jane.doe@EXAMPLE.com", PASSWORD).await.expect(200, None);
    }

    async fn codes_of_one_purpose_never_serve_the_other(db: Db) {
        let app = TestApp::spawn(db).await;
        app.register("jane@example.com", PASSWORD).await.expect(201, None);
        let verification_code = app.mail.latest_code("jane@example.com");

        app.post("/auth/verify-password-reset-otp", json!({"email": "jane@example.com", "otp": verification_code}))
            .await
            .expect(400, Some("invalid_otp"));

        app.post("/auth/forgot-password", json!({"email": "jane@example.com"})).await.expect(200, None);
        let reset_code = app.mail.latest_code("jane@example.com");
        if reset_code != verification_code {
            app.post("/auth/verify-otp", json!({"email": "jane@example.com", "otp": reset_code}))
                .await
                .expect(400, Some("invalid_otp"));
        }
        app.post("/auth/verify-otp", json!({"email": "jane@example.com", "otp": verification_code}))
            .await
            .expect(200, None);
    }
}
