//! Mail transports (§1 `AUTHGATE_MAIL`): SMTP to a loopback server, files, and failures.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{Db, PASSWORD, TestApp};

db_tests! {
    async fn codes_travel_over_smtp_with_a_text_and_an_html_part(db: Db) {
        let app = TestApp::spawn(db).await;

        app.register("jane@example.com", PASSWORD).await.expect(201, None);

        let mails = app.mail.to("jane@example.com");
        assert_eq!(mails.len(), 1);
        let raw = &mails[0].data;
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(raw.contains("text/plain"));
        assert!(raw.contains("text/html"));
        assert!(raw.contains("From: authgate <no-reply@localhost>"));
        let code = mails[0].code().unwrap();
        assert!(raw.lines().any(|line| line.trim() == code), "the code stands alone on a line");
    }

    async fn a_mail_outage_fails_no_request_tells_nothing_and_loses_nothing(db: Db) {
        let app = TestApp::spawn(db).await;
        app.mail.refuse_mail(true);

        let registered = app.register("jane@example.com", PASSWORD).await;
        let known = app.post("/auth/forgot-password", json!({"email": "jane@example.com"})).await;
        let unknown = app.post("/auth/forgot-password", json!({"email": "ghost@example.com"})).await;

        registered.expect(201, None);
        known.expect(200, None);
        unknown.expect(200, None);
        assert_eq!(known.text, unknown.text, "the same answer for real and unknown addresses");
        assert!(app.mail.all().is_empty());
        assert_eq!(app.count("outbox").await, 2, "both mails wait in the outbox");

        // The server comes back; the worker (not the test) delivers once the retry is due.
        app.mail.refuse_mail(false);
        app.clock.advance(Duration::from_secs(31));
        let arrived = app.mail.eventually(|mails| usize::from(mails.len() == 2)).await;
        assert_eq!(arrived, 1, "both mails arrive after the outage: {:?}", app.mail.all());
        assert!(app.mail.to("ghost@example.com").is_empty());
        let code = app.mail.to("jane@example.com").into_iter().find(|mail| mail.subject().contains("Verify")).unwrap().code().unwrap();
        app.post("/auth/verify-otp", json!({"email": "jane@example.com", "otp": code})).await.expect(200, None);
        assert_eq!(app.count("outbox").await, 0);
    }

    async fn mail_whose_code_died_is_dropped_not_sent(db: Db) {
        let app = TestApp::spawn(db).await;
        app.mail.refuse_mail(true);
        app.register("jane@example.com", PASSWORD).await.expect(201, None);
        app.pass_cooldown();
        // A newer code replaces the first while the server is down.
        app.post("/auth/resend-otp", json!({"email": "jane@example.com"})).await.expect(200, None);
        // And a reset code expires while it waits.
        app.post("/auth/forgot-password", json!({"email": "jane@example.com"})).await.expect(200, None);
        app.clock.advance(app.state.config.otp_ttl / 2);
        app.post("/auth/resend-otp", json!({"email": "jane@example.com"})).await.expect(200, None);
        app.clock.advance(app.state.config.otp_ttl / 2 + Duration::from_secs(1));

        app.mail.refuse_mail(false);
        app.deliver_mail().await;

        let mails = app.mail.to("jane@example.com");
        assert_eq!(mails.len(), 1, "only the live code goes out: {mails:?}");
        assert!(mails[0].subject().contains("Verify"));
        assert_eq!(app.count("outbox").await, 0, "dead mail is dropped");
    }

    async fn codes_are_stored_in_the_outbox_sealed_when_keys_are_set(db: Db) {
        let app = TestApp::spawn_with(db, |config| {
            config.encryption_keys = authgate::config::Secret::new(format!("k1:{}=", "A".repeat(43)));
        }).await;
        app.mail.refuse_mail(true);
        app.register("jane@example.com", PASSWORD).await.expect(201, None);

        let stored = app.query_strings("SELECT body FROM outbox").await;
        assert_eq!(stored.len(), 1);
        assert!(stored[0].starts_with("enc:v1:k1:"), "{}", stored[0]);
        app.mail.refuse_mail(false);
        app.clock.advance(Duration::from_secs(31));
        app.deliver_mail().await;
        let code = app.mail.latest_code("jane@example.com");
        assert!(!stored[0].contains(&code));
        app.post("/auth/verify-otp", json!({"email": "jane@example.com", "otp": code})).await.expect(200, None);
    }

    async fn the_file_transport_writes_one_eml_per_mail(db: Db) {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().to_path_buf();
        let app = TestApp::spawn_with(db, move |config| {
            config.mail = authgate::config::MailTransport::File(path);
        })
        .await;

        app.register("jane@example.com", PASSWORD).await.expect(201, None);
        app.post("/auth/forgot-password", json!({"email": "jane@example.com"})).await.expect(200, None);

        let files: Vec<String> = std::fs::read_dir(folder.path())
            .unwrap()
            .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
            .collect();
        assert_eq!(files.len(), 2);
        assert!(files.iter().any(|mail| mail.contains("Subject: Verify")));
        assert!(files.iter().any(|mail| mail.contains("Subject: Reset")));
    }
}

db_tests! {
    async fn two_instances_deliver_each_mail_once(db: Db) {
        let first = TestApp::spawn(db).await;
        let second = first.spawn_alongside(|_| {}).await;
        // Both instances' workers, and both test harnesses, race for the same outbox.
        let addresses: Vec<String> = (0..12).map(|n| format!("user{n}@example.com")).collect();
        let mut registrations = Vec::new();
        for (n, address) in addresses.iter().enumerate() {
            let app = if n % 2 == 0 { &first } else { &second };
            let body = json!({"email": address, "password": PASSWORD, "password2": PASSWORD});
            registrations.push(app.client.post(format!("{}/auth/register", app.base)).json(&body).send());
        }
        for response in futures_util::future::join_all(registrations).await {
            assert_eq!(response.unwrap().status(), 201);
        }
        tokio::join!(first.deliver_mail(), second.deliver_mail());

        for address in &addresses {
            let received = first.mail.to(address).len() + second.mail.to(address).len();
            assert_eq!(received, 1, "{address} got {received} mails");
        }
    }
}
