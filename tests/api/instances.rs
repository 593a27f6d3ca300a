//! Two authgate processes on one PostgreSQL database, as behind a load balancer (§8): tokens,
//! refresh reuse detection and limits hold across them. Runs when `TEST_DATABASE_URL` is set.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::helpers::{Db, PASSWORD};

struct Instance {
    child: Child,
    base: String,
    client: reqwest::Client,
}

impl Instance {
    async fn start(database_url: &str, mail_folder: &std::path::Path) -> Instance {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_authgate"))
            // Several processes run at once: none takes the default metrics port.
            .env("AUTHGATE_METRICS_LISTEN", "off")
            .env("AUTHGATE_LISTEN", format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", database_url)
            .env("AUTHGATE_MAIL", format!("file://{}", mail_folder.display()))
            .env("AUTHGATE_ARGON2", "m=64,t=1,p=1")
            .env("AUTHGATE_REFRESH_REUSE_INTERVAL", "1s")
            .env("AUTHGATE_LIMIT_LOGIN_IP", "3/1m")
            .env("RUST_LOG", "error")
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let instance = Instance {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        };
        let started = Instant::now();
        while instance
            .client
            .get(format!("{}/health", instance.base))
            .send()
            .await
            .is_err()
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the instance did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        instance
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    async fn me(&self, token: &str) -> u16 {
        let response = self
            .client
            .get(format!("{}/auth/me", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        response.status().as_u16()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The code in the mail folder, once the outbox worker of an instance has written it.
async fn latest_code(folder: &std::path::Path) -> String {
    for _ in 0..250 {
        let code = std::fs::read_dir(folder)
            .unwrap()
            .filter_map(|entry| std::fs::read_to_string(entry.unwrap().path()).ok())
            .flat_map(|mail| {
                mail.lines()
                    .map(str::trim)
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .find(|line| line.len() == 6 && line.chars().all(|c| c.is_ascii_digit()));
        if let Some(code) = code {
            return code;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no code was mailed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_tokens_reuse_detection_and_limits() {
    let Some(db) = Db::postgres() else {
        eprintln!("TEST_DATABASE_URL is not set: two-instance test skipped");
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let database_url = db.fresh_url(&scratch).await;
    // One after the other: the first applies the migrations.
    let first = Instance::start(&database_url, scratch.path()).await;
    let second = Instance::start(&database_url, scratch.path()).await;

    let (status, _) = first
        .post(
            "/auth/register",
            json!({"email": "jane@example.com", "password": PASSWORD, "password2": PASSWORD}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, signed_in) = second
        .post(
            "/auth/verify-otp",
            json!({"email": "jane@example.com", "otp": latest_code(scratch.path()).await}),
        )
        .await;
    assert_eq!(status, 200, "{signed_in}");
    assert_eq!(
        first.me(signed_in["access"].as_str().unwrap()).await,
        200,
        "a token from one works on the other"
    );

    let stolen = signed_in["refresh"].clone();
    let (status, _) = first
        .post("/auth/token/refresh", json!({"refresh": stolen}))
        .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, replay) = second
        .post("/auth/token/refresh", json!({"refresh": stolen}))
        .await;
    assert_eq!(
        (status, replay["error"].as_str()),
        (401, Some("refresh_token_reused"))
    );

    let wrong = json!({"email": "jane@example.com", "password": "wrong password"});
    assert_eq!(first.post("/auth/login", wrong.clone()).await.0, 401);
    assert_eq!(second.post("/auth/login", wrong.clone()).await.0, 401);
    assert_eq!(first.post("/auth/login", wrong.clone()).await.0, 401);
    let (status, refused) = second.post("/auth/login", wrong).await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (429, Some("rate_limited")),
        "limits are counted together"
    );
}
