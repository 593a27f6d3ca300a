//! Operations (§7, §9): metrics, CORS, overload, timing of failed logins, JSON logs and
//! graceful shutdown of the real binary.

use std::{
    io::{Read, Write},
    net::TcpStream,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use authgate::config::Argon2Params;
use serde_json::{Value, json};

use crate::helpers::{Db, PASSWORD, TestApp};

/// The contract's default parameters: these tests are about hashing.
const PRODUCTION_ARGON2: Argon2Params = Argon2Params {
    memory_kib: 19_456,
    iterations: 2,
    lanes: 1,
};

db_tests! {
    async fn metrics_count_requests_logins_and_hashes(db: Db) {
        let app = TestApp::spawn(db).await;
        let signed_in = app.verified_user("jane@example.com").await;
        app.login("jane@example.com", PASSWORD).await.expect(200, None);
        app.login("jane@example.com", "wrong password").await.expect(401, None);
        let session_path = format!("/auth/sessions/{}", uuid::Uuid::new_v4());
        app.request(reqwest::Method::DELETE, &session_path, signed_in["access"].as_str(), None).await;

        let metrics_base = app.metrics_base.as_deref().expect("a metrics listener");
        let response = app.client.get(format!("{metrics_base}/metrics")).send().await.unwrap();

        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        let text = response.text().await.unwrap();
        for expected in [
            "authgate_http_requests_total{route=\"/auth/login\",method=\"POST\",status=\"200\"}",
            "authgate_http_request_duration_seconds_bucket{route=\"/auth/login\",method=\"POST\",le=\"+Inf\"}",
            "route=\"/auth/sessions/{id}\"",
            "authgate_logins_total{outcome=\"success\"}",
            "authgate_logins_total{outcome=\"invalid_credentials\"}",
            "authgate_mails_sent_total{kind=\"verification_code\"}",
            "authgate_password_hashes_waiting 0",
            "authgate_password_hashes_in_progress 0",
            "# TYPE authgate_rate_limited_total counter",
            "# TYPE authgate_refresh_reuse_total counter",
            "# TYPE authgate_mail_failures_total counter",
        ] {
            assert!(text.contains(expected), "{expected} missing from\n{text}");
        }
        assert!(!text.contains(&session_path), "raw paths must not become labels");
    }

    async fn metrics_are_never_on_the_public_port(db: Db) {
        let app = TestApp::spawn(db).await;

        // Mail counters by kind would tell anyone which addresses have accounts.
        app.get("/metrics", None).await.expect(404, Some("not_found"));
        let document = app.get("/openapi.json", None).await;
        assert!(document.body["paths"].get("/metrics").is_none());
        let metrics_base = app.metrics_base.as_deref().expect("a metrics listener");
        let metrics = app.client.get(format!("{metrics_base}/metrics")).send().await.unwrap();
        assert_eq!(metrics.status(), 200);
        let address: std::net::SocketAddr = metrics_base.trim_start_matches("http://").parse().unwrap();
        assert!(address.ip().is_loopback());
    }

    async fn cors_admits_only_configured_origins(db: Db) {
        let app = TestApp::spawn_with(db, |config| config.cors_origins = vec!["https://app.example.com".into()]).await;
        let preflight = |origin: &'static str| {
            app.client
                .request(reqwest::Method::OPTIONS, format!("{}/auth/login", app.base))
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "content-type,authorization")
                .send()
        };

        let allowed = preflight("https://app.example.com").await.unwrap();
        let refused = preflight("https://evil.example.com").await.unwrap();

        assert!(allowed.status().is_success(), "{}", allowed.status());
        assert_eq!(allowed.headers()["access-control-allow-origin"], "https://app.example.com");
        assert!(refused.headers().get("access-control-allow-origin").is_none());
        let simple = app.client.get(format!("{}/health", app.base)).header("origin", "https://app.example.com").send().await.unwrap();
        assert_eq!(simple.headers()["access-control-allow-origin"], "https://app.example.com");
    }
}

/// Without `AUTHGATE_CORS_ORIGINS` no CORS header is ever sent.
#[tokio::test]
async fn no_cors_unless_configured() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let response = app
        .client
        .get(format!("{}/health", app.base))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert!(response.headers().get("vary").is_none());
}

/// §9: with CORS on, every answer varies by `Origin`, so a shared cache never replays one
/// origin's answer (the JWKS is `Cache-Control: public`) to another.
#[tokio::test]
async fn with_cors_every_response_varies_by_origin() {
    let app = TestApp::spawn_with(Db::Sqlite, |config| {
        config.cors_origins = vec!["https://app.example.com".into()]
    })
    .await;
    let get = |path: &str, origin: Option<&'static str>| {
        let request = app.client.get(format!("{}{path}", app.base));
        match origin {
            Some(origin) => request.header("origin", origin),
            None => request,
        }
        .send()
    };

    let responses = [
        get("/.well-known/jwks.json", Some("https://app.example.com"))
            .await
            .unwrap(),
        get("/.well-known/jwks.json", None).await.unwrap(),
        get("/health", Some("https://evil.example.com"))
            .await
            .unwrap(),
        get("/nowhere", None).await.unwrap(),
        app.client
            .request(reqwest::Method::OPTIONS, format!("{}/auth/login", app.base))
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap(),
    ];

    assert!(
        responses[0].headers()["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("public")
    );
    for response in &responses {
        let vary: Vec<&str> = response
            .headers()
            .get_all("vary")
            .iter()
            .map(|value| value.to_str().unwrap())
            .collect();
        assert_eq!(vary, ["Origin"], "{} {}", response.url(), response.status());
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// An unknown email costs a full password check, so it answers in about the time a wrong
/// password does (generous bounds: this machine is shared with other tests).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_email_and_wrong_password_take_about_the_same_time() {
    let app = TestApp::spawn_with(Db::Sqlite, |config| config.argon2 = PRODUCTION_ARGON2).await;
    app.verified_user("jane@example.com").await;
    let (mut unknown, mut wrong) = (Vec::new(), Vec::new());

    for _ in 0..15 {
        let started = Instant::now();
        app.login("ghost@example.com", "not the password")
            .await
            .expect(401, None);
        unknown.push(started.elapsed());
        let started = Instant::now();
        app.login("jane@example.com", "not the password")
            .await
            .expect(401, None);
        wrong.push(started.elapsed());
    }

    let (unknown, wrong) = (median(unknown), median(wrong));
    let ratio = unknown.as_secs_f64() / wrong.as_secs_f64();
    assert!(
        (0.6..=1.6).contains(&ratio),
        "unknown {unknown:?} vs wrong {wrong:?}"
    );
    assert!(
        wrong > Duration::from_millis(5),
        "a real hash was computed ({wrong:?})"
    );
}

/// A burst larger than the hashing queue is partly refused at once with 503 `overloaded`, never
/// with another 5xx, and `/health` stays fast meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_burst_past_the_queue_is_refused_quickly() {
    let app = TestApp::spawn_with(Db::Sqlite, |config| config.argon2 = PRODUCTION_ARGON2).await;
    let burst = 600;

    let logins = (0..burst).map(|i| {
        let app = &app;
        async move {
            let started = Instant::now();
            let reply = app
                .post(
                    "/auth/login",
                    json!({"email": format!("user{i}@example.com"), "password": "whatever pw"}),
                )
                .await;
            (reply, started.elapsed())
        }
    });
    let health = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = Instant::now();
        // The raw client: the harness's own mail delivery after each request would be timed too.
        let health = app
            .client
            .get(format!("{}/health", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
        started.elapsed()
    };
    let (results, health_latency) = tokio::join!(futures_util::future::join_all(logins), health);

    let overloaded: Vec<&(crate::helpers::Reply, Duration)> = results
        .iter()
        .filter(|(reply, _)| reply.status == 503)
        .collect();
    assert!(!overloaded.is_empty(), "no request was refused");
    for (reply, _) in &results {
        assert!(
            reply.status == 401 || reply.status == 503,
            "unexpected {}: {}",
            reply.status,
            reply.text
        );
    }
    // Refusals never wait for a hash: the slowest comes back before the slowest login that
    // was let in (which waited its turn in the queue).
    let slowest = |status: u16| {
        results
            .iter()
            .filter(|(reply, _)| reply.status == status)
            .map(|(_, latency)| *latency)
            .max()
    };
    for (reply, _) in &overloaded {
        reply.expect(503, Some("overloaded"));
        assert!(reply.header("retry-after").is_some());
    }
    let (refused, admitted) = (slowest(503).unwrap(), slowest(401).unwrap());
    assert!(
        refused < admitted,
        "slowest refusal {refused:?}, slowest admitted login {admitted:?}"
    );
    assert!(
        health_latency < Duration::from_millis(500),
        "/health took {health_latency:?}"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until the binary on `port` serves requests (it has up to 20 s to start). Its port
/// takes connections before start-up ends (the address is bound first, so a port in use
/// fails before anything is created), so a connection alone proves nothing: `/health` must
/// answer.
fn wait_until_serving(port: u16) {
    let started = Instant::now();
    loop {
        let answered = TcpStream::connect(("127.0.0.1", port)).and_then(|mut stream| {
            stream.write_all(
                b"GET /health HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n",
            )?;
            let mut response = String::new();
            stream.read_to_string(&mut response)?;
            Ok(response.starts_with("HTTP/1.1 200"))
        });
        if matches!(answered, Ok(true)) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "authgate did not start serving: {answered:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM with a request in flight: the request completes, the process exits 0, and every
/// log line on the way is one JSON object without secrets.
#[test]
fn sigterm_lets_requests_in_flight_finish_and_exits_zero() {
    let scratch = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_authgate"))
        // Several processes run at once: none takes the default metrics port.
        .env("AUTHGATE_METRICS_LISTEN", "off")
        .env("AUTHGATE_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/authgate.db?mode=rwc", scratch.path().display()),
        )
        .env("AUTHGATE_ARGON2", "m=64,t=1,p=1")
        .env("AUTHGATE_LOG_FORMAT", "json")
        .env("AUTHGATE_SHUTDOWN_GRACE", "10s")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_serving(port);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let body = json!({"email": "jane@example.com", "password": "a secret password"}).to_string();
    let head = format!(
        "POST /auth/login HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body.as_bytes()[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(200));

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    std::thread::sleep(Duration::from_millis(300));
    stream.write_all(&body.as_bytes()[10..]).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = child.wait().unwrap();

    assert!(
        response.starts_with("HTTP/1.1 401"),
        "the request in flight was answered: {response}"
    );
    assert!(status.success(), "exit status {status:?}");
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(!logs.contains("a secret password"));
    let lines: Vec<Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let access = lines
        .iter()
        .find(|line| line["route"] == "/auth/login")
        .expect("an access log line");
    for field in ["method", "status", "latency_ms", "request_id", "client_ip"] {
        assert!(!access[field].is_null(), "{field} missing from {access}");
    }
}

/// `TEST_DATABASE_URL` with a password in it: the one it has, or a made-up one that trust
/// authentication ignores. Returns the URL and the password.
fn with_password(url: &str) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (userinfo, host) = rest.split_once('@').unwrap_or(("postgres", rest));
    match userinfo.split_once(':') {
        Some((_, password)) => (url.to_string(), password.to_string()),
        None => (
            format!("{scheme}://{userinfo}:s3cret-pw@{host}"),
            "s3cret-pw".to_string(),
        ),
    }
}

/// §9: at the most verbose level, through start-up, a request that mails and shutdown, no log
/// line carries the database or the SMTP password.
#[tokio::test]
async fn trace_logs_carry_no_database_or_smtp_password() {
    let scratch = tempfile::tempdir().unwrap();
    let (database_url, database_password) = match Db::postgres() {
        Some(db) => with_password(&db.fresh_url(&scratch).await),
        None => {
            eprintln!("TEST_DATABASE_URL is not set: only the SMTP password is checked");
            let url = format!("sqlite://{}/authgate.db?mode=rwc", scratch.path().display());
            (url, "s3cret-pw".to_string())
        }
    };
    let smtp_password = "smtp-s3cret";
    let port = free_port();
    let (stdout, stderr) = (scratch.path().join("stdout"), scratch.path().join("stderr"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .env("AUTHGATE_LISTEN", format!("127.0.0.1:{port}"))
        .env("AUTHGATE_METRICS_LISTEN", "off")
        .env("DATABASE_URL", &database_url)
        .env(
            "AUTHGATE_MAIL",
            format!("smtp://mailer:{smtp_password}@127.0.0.1:1"),
        )
        .env("AUTHGATE_ARGON2", "m=64,t=1,p=1")
        .env("RUST_LOG", "trace")
        // Files, not pipes: trace output would fill a pipe and stall the process.
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    wait_until_serving(port);

    // A mail to an unreachable server: the worker's failure is logged too.
    let registered = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/auth/register"))
        .json(&json!({"email": "jane@example.com", "password": PASSWORD, "password2": PASSWORD}))
        .send()
        .await
        .unwrap();
    // The outbox worker tries the unreachable server at once; give it time to fail.
    tokio::time::sleep(Duration::from_millis(500)).await;
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();

    assert_eq!(registered.status(), 201);
    assert!(status.success(), "exit status {status:?}");
    let logs =
        std::fs::read_to_string(&stderr).unwrap() + &std::fs::read_to_string(&stdout).unwrap();
    if Db::postgres().is_some() {
        // The PostgreSQL driver logs at trace level; on SQLite nothing does.
        assert!(logs.contains("TRACE"), "trace logging was on");
    }
    for password in [database_password.as_str(), smtp_password] {
        let leaks: Vec<&str> = logs
            .lines()
            .filter(|line| line.contains(password))
            .take(3)
            .collect();
        assert!(leaks.is_empty(), "{password} logged:\n{}", leaks.join("\n"));
    }
}

/// SQLite is built with the query planner's stability guarantee (`.cargo/config.toml`):
/// without it, every query with `LIMIT ?` was parsed and planned again on each run.
#[tokio::test]
async fn sqlite_plans_each_statement_once() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let options = app
        .query_strings("SELECT compile_options FROM pragma_compile_options")
        .await;
    assert!(
        options.iter().any(|option| option == "ENABLE_QPSG"),
        "{options:?}"
    );
}
