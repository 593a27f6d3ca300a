//! Admins and operators over an account's life (§10): disable, enable, sign out everywhere,
//! delete (at once or with the grace), anonymize; who may do it; and the same changes from
//! the command line (`authgate users disable|enable`, `authgate purge`).

use std::{process::Output, time::Duration};

use authgate::store::{self, users};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    deletion::{
        assert_scrubbed, events_of, give_picture, login_with_agent, make_all_due, named, user_id,
    },
    helpers::{Db, PASSWORD, Reply, TestApp},
    two_factor::user_with_totp,
};

/// A verified account that holds `admin`.
async fn admin(app: &TestApp, email: &str) -> Value {
    let signed_in = app.verified_user(email).await;
    app.execute(&format!(
        "UPDATE users SET role = 'admin' WHERE email = '{email}'"
    ))
    .await;
    signed_in
}

fn token(signed_in: &Value) -> Option<&str> {
    signed_in["access"].as_str()
}

async fn act(app: &TestApp, method: Method, path: &str, token: Option<&str>) -> Reply {
    app.request(method, path, token, None).await
}

/// `authgate` run on the app's database, as an operator would.
fn authgate(app: &TestApp, args: &[&str]) -> Output {
    let scratch = tempfile::tempdir().unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_authgate"))
        .args(args)
        .env_clear()
        .env("DATABASE_URL", &app.database_url)
        .env(
            "AUTHGATE_MAIL",
            format!("file://{}", scratch.path().display()),
        )
        .current_dir(scratch.path())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

db_tests! {
    async fn only_admins_may_change_an_accounts_life(db: Db) {
        let app = TestApp::spawn(db).await;
        let boss = admin(&app, "boss@example.com").await;
        let jane = app.verified_user("jane@example.com").await;
        let mut targets = Vec::new();
        for n in 0..6 {
            targets.push(user_id(&app.verified_user(&format!("target{n}@example.com")).await));
        }
        let routes = [
            (Method::POST, format!("/admin/users/{}/disable", targets[0]), 200),
            (Method::POST, format!("/admin/users/{}/enable", targets[1]), 200),
            (Method::POST, format!("/admin/users/{}/logout", targets[2]), 204),
            (Method::DELETE, format!("/admin/users/{}?grace=true", targets[3]), 202),
            (Method::POST, format!("/admin/users/{}/anonymize", targets[4]), 200),
            (Method::DELETE, format!("/admin/users/{}", targets[5]), 204),
        ];

        for (method, path, success) in routes {
            act(&app, method.clone(), &path, None).await.expect(401, Some("unauthorized"));
            act(&app, method.clone(), &path, Some("not.a.token")).await.expect(401, Some("unauthorized"));
            act(&app, method.clone(), &path, token(&jane)).await.expect(403, Some("forbidden"));
            act(&app, method, &path, token(&boss)).await.expect(success, None);
        }
        assert_eq!(app.count("users").await, 7, "only the admin's delete removed an account");
        app.execute("UPDATE users SET role = 'user' WHERE email = 'boss@example.com'").await;
        act(&app, Method::POST, &format!("/admin/users/{}/enable", targets[0]), token(&boss))
            .await
            .expect(403, Some("forbidden"));
    }

    async fn disabling_signs_out_and_blocks_sign_in_until_enabled(db: Db) {
        let app = TestApp::spawn(db).await;
        let boss = admin(&app, "boss@example.com").await;
        let jane = app.verified_user("jane@example.com").await;
        let id = user_id(&jane);
        let disable = format!("/admin/users/{id}/disable");

        let disabled = app.request(Method::POST, &disable, token(&boss), Some(json!({"reason": "chargebacks"}))).await;

        disabled.expect(200, None);
        assert_eq!(disabled.body["status"], "disabled");
        assert_eq!(disabled.body["is_active"], false);
        assert_eq!(disabled.body["id"], id.to_string());
        app.get("/auth/me", token(&jane)).await.expect(401, Some("unauthorized"));
        app.post("/auth/token/refresh", json!({"refresh": jane["refresh"]}))
            .await
            .expect(401, Some("invalid_refresh_token"));
        app.login("jane@example.com", PASSWORD).await.expect(403, Some("account_disabled"));
        app.post("/auth/restore", json!({"login": "jane@example.com", "password": PASSWORD}))
            .await
            .expect(409, Some("not_pending_deletion"));
        let events = events_of(&app, id).await;
        let recorded = named(&events, "account_disabled");
        assert_eq!(recorded.len(), 1);
        assert_eq!(recorded[0].actor_id, Some(user_id(&boss)));
        let details: Value = serde_json::from_str(&recorded[0].details).unwrap();
        assert_eq!(details["reason"], "chargebacks");
        assert_eq!(details["sessions_revoked"], 1);

        // Again, with no body at all: nothing changes.
        act(&app, Method::POST, &disable, token(&boss)).await.expect(200, None);
        assert_eq!(named(&events_of(&app, id).await, "account_disabled").len(), 1);

        let enabled = act(&app, Method::POST, &format!("/admin/users/{id}/enable"), token(&boss)).await;
        enabled.expect(200, None);
        assert_eq!(enabled.body["status"], "active");
        assert_eq!(enabled.body["is_active"], true);
        let back = app.login("jane@example.com", PASSWORD).await;
        back.expect(200, None);
        // The admin's reason stays with the admins: the owner's export shows the event only.
        let export = app.get("/auth/me/export", back.body["access"].as_str()).await;
        export.expect(200, None);
        assert!(export.body["events"].as_array().unwrap().iter().any(|event| event["event"] == "account_disabled"));
        assert!(!export.body.to_string().contains("chargebacks"), "{}", export.body);
        let enabled_events = named(&events_of(&app, id).await, "account_enabled")
            .into_iter()
            .map(|event| event.actor_id)
            .collect::<Vec<_>>();
        assert_eq!(enabled_events, [Some(user_id(&boss))]);
    }

    async fn disable_refuses_hostile_bodies(db: Db) {
        let app = TestApp::spawn(db).await;
        let boss = admin(&app, "boss@example.com").await;
        let id = user_id(&app.verified_user("jane@example.com").await);
        let disable = format!("/admin/users/{id}/disable");

        for body in [json!({"reason": 5}), json!({"reason": "x".repeat(501)}), json!("spam")] {
            let refused = app.request(Method::POST, &disable, token(&boss), Some(body.clone())).await;
            refused.expect(400, Some("validation_failed"));
        }
        let plain = app
            .client
            .post(format!("{}{disable}", app.base))
            .bearer_auth(token(&boss).unwrap())
            .header("content-type", "text/plain")
            .body("reason=spam")
            .send()
            .await
            .unwrap();
        Reply::read(plain).await.expect(415, Some("unsupported_media_type"));
        let broken = app
            .client
            .post(format!("{}{disable}", app.base))
            .bearer_auth(token(&boss).unwrap())
            .header("content-type", "application/json")
            .body("{\"reason\":")
            .send()
            .await
            .unwrap();
        Reply::read(broken).await.expect(400, Some("invalid_json"));
        app.login("jane@example.com", PASSWORD).await.expect(200, None);
    }

    async fn admins_do_not_target_themselves_and_unknown_ids_are_not_found(db: Db) {
        let app = TestApp::spawn(db).await;
        let boss = admin(&app, "boss@example.com").await;
        let me = user_id(&boss);

        for (method, path) in [
            (Method::POST, format!("/admin/users/{me}/disable")),
            (Method::DELETE, format!("/admin/users/{me}")),
            (Method::DELETE, format!("/admin/users/{me}?grace=true")),
            (Method::POST, format!("/admin/users/{me}/anonymize")),
        ] {
            act(&app, method, &path, token(&boss)).await.expect(409, Some("cannot_target_self"));
        }
        app.get("/auth/me", token(&boss)).await.expect(200, None);

        let unknown = Uuid::new_v4().to_string();
        for id in [unknown.as_str(), "nope", "123", "%27%3B%20DROP%20TABLE%20users%3B--", &"f".repeat(5000)] {
            for (method, path) in [
                (Method::POST, format!("/admin/users/{id}/disable")),
                (Method::POST, format!("/admin/users/{id}/enable")),
                (Method::POST, format!("/admin/users/{id}/logout")),
                (Method::DELETE, format!("/admin/users/{id}")),
                (Method::POST, format!("/admin/users/{id}/anonymize")),
            ] {
                act(&app, method, &path, token(&boss)).await.expect(404, Some("not_found"));
            }
        }
        let target = user_id(&app.verified_user("jane@example.com").await);
        act(&app, Method::DELETE, &format!("/admin/users/{target}?grace=maybe"), token(&boss))
            .await
            .expect(400, Some("validation_failed"));
        assert_eq!(app.count("users").await, 2);
    }

    async fn admins_disabling_each_other_at_once_leave_one_active(db: Db) {
        let app = TestApp::spawn(db).await;
        let ann = admin(&app, "ann@example.com").await;
        let bob = admin(&app, "bob@example.com").await;

        let disable_bob = format!("/admin/users/{}/disable", user_id(&bob));
        let disable_ann = format!("/admin/users/{}/disable", user_id(&ann));
        let (by_ann, by_bob) = tokio::join!(
            act(&app, Method::POST, &disable_bob, token(&ann)),
            act(&app, Method::POST, &disable_ann, token(&bob)),
        );

        let statuses = [by_ann.status.as_u16(), by_bob.status.as_u16()];
        assert_eq!(statuses.iter().filter(|status| **status == 200).count(), 1, "{statuses:?}");
        // Refused as no longer signed in, no longer an admin, or the last one.
        assert!(statuses.iter().any(|status| [401, 403, 409].contains(status)), "{statuses:?}");
        assert_eq!(app.count_where("users", "role = 'admin' AND status = 'active'").await, 1);
    }

    async fn a_change_waits_for_one_in_flight_that_takes_an_admin_away(db: Db) {
        let app = TestApp::spawn(db).await;
        let ann = admin(&app, "ann@example.com").await;
        let bob = admin(&app, "bob@example.com").await;
        let disable_bob = format!("/admin/users/{}/disable", user_id(&bob));
        // Another change, not committed yet, is taking ann away as her request comes in; like
        // any change it holds its target's row.
        let in_flight = store::begin(&app.state.db).await.unwrap();
        users::lock(&in_flight, user_id(&ann)).await.unwrap();
        users::set_status(&in_flight, user_id(&ann), users::DISABLED, None, chrono::Utc::now())
            .await
            .unwrap();

        let (refused, ()) = tokio::join!(act(&app, Method::POST, &disable_bob, token(&ann)), async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            in_flight.commit().await.unwrap();
        });

        assert!([401, 403].contains(&refused.status.as_u16()), "{}", refused.text);
        assert_eq!(app.count_where("users", "role = 'admin' AND status = 'active'").await, 1);
        app.login("bob@example.com", PASSWORD).await.expect(200, None);
    }

    async fn logout_revokes_every_session_of_the_account(db: Db) {
        let app = TestApp::spawn(db).await;
        let boss = admin(&app, "boss@example.com").await;
        let phone = app.verified_user("jane@example.com").await;
        let laptop = app.login("jane@example.com", PASSWORD).await.body;

        act(&app, Method::POST, &format!("/admin/users/{}/logout", user_id(&phone)), token(&boss))
            .await
            .expect(204, None);

        for session in [&phone, &laptop] {
            app.post("/auth/token/refresh", json!({"refresh": session["refresh"]}))
                .await
                .expect(401, Some("invalid_refresh_token"));
        }
        let events = events_of(&app, user_id(&phone)).await;
        let revoked = named(&events, "session_revocation");
        assert_eq!(revoked.len(), 1);
        assert_eq!(revoked[0].actor_id, Some(user_id(&boss)));
        app.login("jane@example.com", PASSWORD).await.expect(200, None);
    }

    async fn deleting_purges_at_once_and_frees_the_address(db: Db) {
        let app = TestApp::spawn(db).await;
        let boss = admin(&app, "boss@example.com").await;
        let jane = app.verified_user("jane@example.com").await;
        let id = user_id(&jane);
        login_with_agent(&app, "jane@example.com").await.expect(200, None);
        give_picture(&app, id).await;

        act(&app, Method::DELETE, &format!("/admin/users/{id}"), token(&boss)).await.expect(204, None);

        assert_eq!(app.count("users").await, 1);
        assert_eq!(app.count("avatars").await, 0);
        app.get("/auth/me", token(&jane)).await.expect(401, Some("unauthorized"));
        app.login("jane@example.com", PASSWORD).await.expect(401, Some("invalid_credentials"));
        let events = events_of(&app, id).await;
        let purged = named(&events, "account_purged");
        assert_eq!(purged.len(), 1);
        assert_eq!(purged[0].actor_id, Some(user_id(&boss)));
        let others: Vec<_> = events.into_iter().filter(|event| event.action != "account_purged").collect();
        assert_scrubbed(&others, "jane@example.com");
        act(&app, Method::DELETE, &format!("/admin/users/{id}"), token(&boss)).await.expect(404, Some("not_found"));
        app.verified_user("jane@example.com").await;
    }

    async fn deleting_with_the_grace_schedules_it_like_its_owner_would(db: Db) {
        let app = TestApp::spawn(db).await;
        let boss = admin(&app, "boss@example.com").await;
        let jane = app.verified_user("jane@example.com").await;
        let id = user_id(&jane);

        let scheduled = act(&app, Method::DELETE, &format!("/admin/users/{id}?grace=true"), token(&boss)).await;

        scheduled.expect(202, None);
        assert_eq!(scheduled.body["status"], "pending_deletion");
        assert!(scheduled.body["deletion_scheduled_for"].is_string());
        assert!(app.mail.to("jane@example.com").iter().any(|mail| mail.subject().contains("deleted")));
        app.get("/auth/me", token(&jane)).await.expect(401, Some("unauthorized"));
        app.login("jane@example.com", PASSWORD).await.expect(403, Some("account_pending_deletion"));
        let requested = named(&events_of(&app, id).await, "deletion_requested")
            .into_iter()
            .map(|event| event.actor_id)
            .collect::<Vec<_>>();
        assert_eq!(requested, [Some(user_id(&boss))]);
        app.post("/auth/restore", json!({"login": "jane@example.com", "password": PASSWORD}))
            .await
            .expect(200, None);

        // A disabled account stays disabled while it waits: its owner cannot restore it.
        let bob = user_id(&app.verified_user("bob@example.com").await);
        act(&app, Method::POST, &format!("/admin/users/{bob}/disable"), token(&boss)).await.expect(200, None);
        let waiting = act(&app, Method::DELETE, &format!("/admin/users/{bob}?grace=true"), token(&boss)).await;
        waiting.expect(202, None);
        assert_eq!(waiting.body["status"], "disabled");
        assert!(waiting.body["deletion_scheduled_for"].is_string());
        app.post("/auth/restore", json!({"login": "bob@example.com", "password": PASSWORD}))
            .await
            .expect(409, Some("not_pending_deletion"));
        app.clock.advance(Duration::from_secs(8 * 86_400));
        app.state.purge.purge_due().await.unwrap();
        assert_eq!(app.count("users").await, 2, "bob is purged, jane restored");
    }

    async fn anonymizing_keeps_the_id_and_removes_the_person(db: Db) {
        let app = TestApp::spawn(db).await;
        let boss = admin(&app, "boss@example.com").await;
        let (jane, _, _) = user_with_totp(&app, "jane@example.com").await;
        let id = user_id(&jane);
        app.request(
            Method::PATCH,
            "/auth/me",
            token(&jane),
            Some(json!({
                "username": "jane.doe", "phone_number": "+15551234567",
                "metadata": {"team": "blue"}, "profile": {"bio": "Physics", "date_of_birth": "1990-04-01"},
            })),
        )
        .await
        .expect(200, None);
        login_with_agent(&app, "jane@example.com").await.expect(403, Some("mfa_required"));
        give_picture(&app, id).await;

        let anonymized = act(&app, Method::POST, &format!("/admin/users/{id}/anonymize"), token(&boss)).await;

        anonymized.expect(200, None);
        let user = &anonymized.body;
        assert_eq!(user["id"], id.to_string());
        assert_eq!(user["email"], format!("deleted-{id}@anonymized.invalid"));
        assert_eq!(user["status"], "disabled");
        for (field, blank) in [
            ("username", json!(null)), ("first_name", json!("")), ("last_name", json!("")),
            ("phone_number", json!(null)), ("metadata", json!({})),
            ("profile", json!({"bio": "", "avatar_url": null, "date_of_birth": null})),
        ] {
            assert_eq!(user[field], blank, "{field}");
        }
        assert_eq!(user["mfa"]["enabled"], false);
        assert_eq!(app.count("sessions").await, 1, "only the admin's session is left");
        for table in ["avatars", "mfa_factors", "recovery_codes", "mfa_challenges"] {
            assert_eq!(app.count(table).await, 0, "{table} keeps something of the person");
        }
        let events = events_of(&app, id).await;
        let (recorded, others): (Vec<_>, Vec<_>) =
            events.into_iter().partition(|event| event.action == "account_anonymized");
        assert_eq!(recorded[0].actor_id, Some(user_id(&boss)));
        assert_eq!(recorded[0].changes, None);
        assert_scrubbed(&others, "jane@example.com");
        app.get("/auth/me", token(&jane)).await.expect(401, Some("unauthorized"));

        // Enabled again, it still cannot sign in: no address under `.invalid` is accepted, and
        // the password is gone too. Nobody can register such an address ahead of an
        // anonymization either.
        act(&app, Method::POST, &format!("/admin/users/{id}/enable"), token(&boss)).await.expect(200, None);
        let anonymized = format!("deleted-{id}@anonymized.invalid");
        let refused = app.login(&anonymized, PASSWORD).await;
        refused.expect(400, Some("validation_failed"));
        assert!(!refused.field_problems("email").is_empty(), "{}", refused.text);
        app.post("/auth/login", json!({"login": anonymized, "password": PASSWORD}))
            .await
            .expect(401, Some("invalid_credentials"));
        let squatter = app.register(&format!("deleted-{}@anonymized.invalid", uuid::Uuid::new_v4()), PASSWORD).await;
        squatter.expect(400, Some("validation_failed"));
        assert!(!squatter.field_problems("email").is_empty(), "{}", squatter.text);
        app.verified_user("jane@example.com").await;
        app.request(Method::PATCH, "/auth/me", token(&boss), Some(json!({"username": "jane.doe"})))
            .await
            .expect(200, None);
    }

    async fn the_command_line_disables_and_enables_by_address(db: Db) {
        let app = TestApp::spawn(db).await;
        admin(&app, "boss@example.com").await;
        let jane = app.verified_user("jane@example.com").await;

        let disabled = authgate(&app, &["users", "disable", "Jane@Example.com"]);

        assert!(disabled.status.success(), "{}", text(&disabled.stderr));
        let stdout = text(&disabled.stdout);
        assert_eq!(stdout.lines().count(), 1, "{stdout}");
        assert!(stdout.starts_with("disabled jane@example.com"), "{stdout}");
        app.login("jane@example.com", PASSWORD).await.expect(403, Some("account_disabled"));
        app.post("/auth/token/refresh", json!({"refresh": jane["refresh"]}))
            .await
            .expect(401, Some("invalid_refresh_token"));
        let recorded = named(&events_of(&app, user_id(&jane)).await, "account_disabled")
            .into_iter()
            .map(|event| (event.actor_id, event.details.contains("command_line")))
            .collect::<Vec<_>>();
        assert_eq!(recorded, [(None, true)]);

        let enabled = authgate(&app, &["users", "enable", "jane@example.com"]);
        assert!(enabled.status.success(), "{}", text(&enabled.stderr));
        assert!(text(&enabled.stdout).starts_with("enabled jane@example.com"));
        app.login("jane@example.com", PASSWORD).await.expect(200, None);

        for (args, problem) in [
            (&["users", "disable", "nobody@example.com"][..], "no account has the address nobody@example.com"),
            (&["users", "enable", "not an address"][..], "is not a valid email address"),
            (&["users", "disable", "boss@example.com"][..], "no active admin"),
        ] {
            let refused = authgate(&app, args);
            assert_eq!(refused.status.code(), Some(1), "{args:?}");
            assert!(text(&refused.stderr).contains(problem), "{args:?}: {}", text(&refused.stderr));
            assert!(text(&refused.stdout).is_empty(), "{args:?}");
        }
        app.login("boss@example.com", PASSWORD).await.expect(200, None);
    }

    async fn the_command_line_purges_what_is_due_once(db: Db) {
        let app = TestApp::spawn(db).await;
        app.verified_user("stays@example.com").await;
        for n in 0..3 {
            app.verified_user(&format!("leaver{n}@example.com")).await;
        }
        make_all_due(&app, "stays@example.com").await;

        let first = authgate(&app, &["purge"]);
        let second = authgate(&app, &["purge"]);

        assert!(first.status.success(), "{}", text(&first.stderr));
        assert_eq!(text(&first.stdout), "purged 3 accounts whose deletion grace had ended\n");
        assert_eq!(text(&second.stdout), "purged 0 accounts whose deletion grace had ended\n");
        assert_eq!(app.count("users").await, 1);
        assert_eq!(app.count_where("audit_events", "action = 'account_purged'").await, 3);
    }
}
