//! Mail transports (§1 `AUTHGATE_MAIL`): SMTP to a loopback server, files, and failures.

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

    async fn a_mail_outage_is_reported_and_a_resend_works_once_it_ends(db: Db) {
        let app = TestApp::spawn(db).await;
        app.mail.refuse_mail(true);

        let registered = app.register("jane@example.com", PASSWORD).await;
        let forgot = app.post("/auth/forgot-password", json!({"email": "jane@example.com"})).await;

        registered.expect(503, Some("mail_unavailable"));
        forgot.expect(503, Some("mail_unavailable"));
        assert_eq!(app.count("users").await, 1, "the account stays saved");

        app.mail.refuse_mail(false);
        app.post("/auth/resend-otp", json!({"email": "jane@example.com"})).await.expect(200, None);
        let code = app.mail.latest_code("jane@example.com");
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
