//! `TestApp`: the real service on port 0 with a fresh database, a loopback SMTP server that
//! keeps every mail, and a clock the test moves.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use authgate::{
    app::AppState,
    clock::ManualClock,
    config::{Argon2Params, Config, Limits},
    server::BoundServer,
};
use reqwest::{Method, StatusCode, header::HeaderMap};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
    sync::oneshot,
};

pub const PASSWORD: &str = "correct horse battery";

/// Runs each test body once per database: `sqlite` always, `postgres` when
/// `TEST_DATABASE_URL` is set.
macro_rules! db_tests {
    ($($(#[$meta:meta])* async fn $name:ident($db:ident: $db_type:ty) $body:block)*) => {$(
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($db: $db_type) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run(crate::helpers::Db::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                match crate::helpers::Db::postgres() {
                    Some(db) => run(db).await,
                    None => eprintln!("TEST_DATABASE_URL is not set: PostgreSQL variant skipped"),
                }
            }
        }
    )*};
}

#[derive(Debug, Clone)]
pub enum Db {
    Sqlite,
    Postgres(String),
}

impl Db {
    pub fn postgres() -> Option<Db> {
        std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|url| !url.is_empty())
            .map(Db::Postgres)
    }

    /// A database no other test sees: a new SQLite file, or a new PostgreSQL schema.
    pub async fn fresh_url(&self, scratch: &tempfile::TempDir) -> String {
        match self {
            Db::Sqlite => format!(
                "sqlite://{}?mode=rwc",
                scratch.path().join("authgate.db").display()
            ),
            Db::Postgres(base) => {
                let schema = format!("test_{}", uuid::Uuid::new_v4().simple());
                let admin = Database::connect(base.as_str())
                    .await
                    .expect("TEST_DATABASE_URL must be reachable");
                admin
                    .execute_unprepared(&format!("CREATE SCHEMA {schema}"))
                    .await
                    .expect("create a test schema");
                admin.close().await.ok();
                let separator = if base.contains('?') { '&' } else { '?' };
                format!("{base}{separator}options=-c%20search_path%3D{schema}")
            }
        }
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Asserts the status and, for errors, the contract's error code.
    #[track_caller]
    pub fn expect(&self, status: u16, error: Option<&str>) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text
        );
        if let Some(code) = error {
            assert_eq!(
                self.body["error"], code,
                "unexpected error code; body: {}",
                self.text
            );
            assert!(
                self.body["message"].as_str().is_some_and(|m| !m.is_empty()),
                "no message: {}",
                self.text
            );
        }
        self
    }

    /// The problems listed for a field of a `validation_failed` answer.
    pub fn field_problems(&self, field: &str) -> Vec<String> {
        self.body["fields"][field]
            .as_array()
            .map(|problems| {
                problems
                    .iter()
                    .filter_map(|p| p.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// One mail as the SMTP server received it.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub recipients: Vec<String>,
    pub data: String,
}

impl ReceivedMail {
    pub fn subject(&self) -> String {
        self.data
            .lines()
            .find_map(|line| line.strip_prefix("Subject: "))
            .unwrap_or_default()
            .to_string()
    }

    /// The code: the line of the text part that is six digits alone.
    pub fn code(&self) -> Option<String> {
        self.data
            .lines()
            .map(str::trim)
            .find(|line| line.len() == 6 && line.chars().all(|c| c.is_ascii_digit()))
            .map(str::to_string)
    }
}

/// A loopback SMTP server that keeps what it is sent, and can be told to refuse mail.
#[derive(Clone, Default)]
pub struct SmtpSink {
    mails: Arc<Mutex<Vec<ReceivedMail>>>,
    refuse: Arc<AtomicBool>,
    /// Milliseconds to wait before accepting each mail, like a distant mail server.
    delay_ms: Arc<std::sync::atomic::AtomicU64>,
}

impl SmtpSink {
    pub async fn start() -> (SmtpSink, u16) {
        let sink = SmtpSink::default();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the SMTP sink");
        let port = listener.local_addr().expect("sink address").port();
        let accepting = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(accepting.clone().converse(stream));
            }
        });
        (sink, port)
    }

    /// From now on take this long to accept each mail.
    pub fn delay(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// From now on answer `451` to every mail (or accept again).
    pub fn refuse_mail(&self, refuse: bool) {
        self.refuse.store(refuse, Ordering::SeqCst);
    }

    /// Waits up to five seconds for `count` to see mail sent in the background.
    pub async fn eventually(&self, count: impl Fn(&[ReceivedMail]) -> usize) -> usize {
        for _ in 0..250 {
            let seen = count(&self.all());
            if seen > 0 {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        0
    }

    pub fn all(&self) -> Vec<ReceivedMail> {
        self.mails.lock().unwrap().clone()
    }

    pub fn to(&self, address: &str) -> Vec<ReceivedMail> {
        self.all()
            .into_iter()
            .filter(|mail| {
                mail.recipients
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case(address))
            })
            .collect()
    }

    /// The code of the latest mail to `address`.
    #[track_caller]
    pub fn latest_code(&self, address: &str) -> String {
        self.to(address)
            .last()
            .and_then(ReceivedMail::code)
            .unwrap_or_else(|| panic!("no code was mailed to {address}"))
    }

    async fn converse(self, stream: tokio::net::TcpStream) {
        let (reader, mut writer) = stream.into_split();
        let mut lines = BufReader::new(reader).lines();
        let mut recipients = Vec::new();
        let _ = writer.write_all(b"220 sink ESMTP\r\n").await;
        while let Ok(Some(line)) = lines.next_line().await {
            let verb = line
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            let reply: &[u8] = match verb.as_str() {
                "EHLO" | "HELO" => b"250-sink\r\n250 8BITMIME\r\n",
                "MAIL" if self.refuse.load(Ordering::SeqCst) => b"451 4.3.0 try again later\r\n",
                "MAIL" => {
                    recipients.clear();
                    b"250 OK\r\n"
                }
                "RCPT" => {
                    let address = line
                        .split(['<', '>'])
                        .nth(1)
                        .unwrap_or_default()
                        .to_string();
                    recipients.push(address);
                    b"250 OK\r\n"
                }
                "DATA" => {
                    let _ = writer.write_all(b"354 go on\r\n").await;
                    let mut data = String::new();
                    while let Ok(Some(line)) = lines.next_line().await {
                        if line == "." {
                            break;
                        }
                        data.push_str(line.strip_prefix('.').unwrap_or(&line));
                        data.push('\n');
                    }
                    let delay = self.delay_ms.load(Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    self.mails.lock().unwrap().push(ReceivedMail {
                        recipients: recipients.clone(),
                        data,
                    });
                    b"250 OK queued\r\n"
                }
                "QUIT" => {
                    let _ = writer.write_all(b"221 bye\r\n").await;
                    return;
                }
                _ => b"250 OK\r\n",
            };
            if writer.write_all(reply).await.is_err() {
                return;
            }
        }
    }
}

pub struct TestApp {
    pub base: String,
    /// The metrics listener, on a port of its own (unless the test turned it off).
    pub metrics_base: Option<String>,
    /// The database this app runs on; a second instance can share it.
    pub database_url: String,
    pub client: reqwest::Client,
    pub mail: SmtpSink,
    pub clock: ManualClock,
    pub state: Arc<AppState>,
    _scratch: tempfile::TempDir,
    _stop: oneshot::Sender<()>,
}

/// Tracing for failing tests: `RUST_LOG=debug cargo test`.
fn init_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        if std::env::var("RUST_LOG").is_ok() {
            authgate::telemetry::init(authgate::config::LogFormat::Pretty);
        }
    });
}

impl TestApp {
    pub async fn spawn(db: Db) -> TestApp {
        TestApp::spawn_with(db, |_| {}).await
    }

    /// Starts the app with test defaults (cheap argon2, mail to the sink), changed by `adjust`.
    pub async fn spawn_with(db: Db, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let scratch = tempfile::tempdir().expect("scratch dir");
        let database_url = db.fresh_url(&scratch).await;
        TestApp::start(database_url, scratch, adjust).await
    }

    /// The app on a database the test prepared (an older release's, say), migrated at start
    /// as in production. `scratch` holds the database file, if it is SQLite.
    pub async fn spawn_on(database_url: String, scratch: tempfile::TempDir) -> TestApp {
        TestApp::start(database_url, scratch, |_| {}).await
    }

    /// A second instance on this app's database, as behind a load balancer.
    pub async fn spawn_alongside(&self, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let scratch = tempfile::tempdir().expect("scratch dir");
        TestApp::start(self.database_url.clone(), scratch, adjust).await
    }

    async fn start(
        database_url: String,
        scratch: tempfile::TempDir,
        adjust: impl FnOnce(&mut Config),
    ) -> TestApp {
        init_logs();
        let (mail, smtp_port) = SmtpSink::start().await;
        let variables = HashMap::from([
            ("DATABASE_URL".to_string(), database_url.clone()),
            (
                "AUTHGATE_MAIL".to_string(),
                format!("smtp://127.0.0.1:{smtp_port}"),
            ),
        ]);
        let mut config =
            Config::from_lookup(|name| variables.get(name).cloned()).expect("test config");
        config.argon2 = Argon2Params::FOR_TESTS;
        // Tests about limits switch on the ones they exercise.
        config.limits = Limits::OFF;
        adjust(&mut config);
        let clock = ManualClock::starting_now();
        let loopback = |port| std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let metrics_listen = config.metrics_listen.map(|_| loopback(0));
        let server = BoundServer::bind(loopback(0), metrics_listen)
            .await
            .expect("bind");
        let address = server.local_addr().expect("bound address");
        let metrics_base = server
            .metrics_addr()
            .map(|address| format!("http://{address}"));
        let state = AppState::build(config, Arc::new(clock.clone()))
            .await
            .expect("the app starts");
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(server.serve(
            Arc::clone(&state),
            async {
                let _ = stopped.await;
            },
            Duration::from_secs(1),
        ));
        TestApp {
            base: format!("http://{address}"),
            metrics_base,
            database_url,
            client: reqwest::Client::builder().build().expect("http client"),
            mail,
            clock,
            state,
            _scratch: scratch,
            _stop: stop,
        }
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply = Reply::read(request.send().await.expect("the request reaches the app")).await;
        // Mail goes out through the outbox in the background; delivering what is due now makes
        // a test's mailbox as of its last request deterministic.
        self.deliver_mail().await;
        reply
    }

    /// Delivers the mail due now, as the worker would, and waits until none is left (the
    /// worker may hold some). Mail the server refused waits for its retry.
    pub async fn deliver_mail(&self) {
        for _ in 0..250 {
            // A test may have taken the database away; the worker logs such failures.
            let _ = self.state.outbox.deliver_due().await;
            if self.mail_due().await == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Mails in the outbox due now.
    pub async fn mail_due(&self) -> u64 {
        use authgate::store::outbox;
        use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
        outbox::Entity::find()
            .filter(outbox::Column::NextAttemptAt.lte(authgate::clock::Clock::now(&self.clock)))
            .count(&self.state.db)
            .await
            .unwrap_or(0)
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.request(Method::POST, path, None, Some(body)).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn register(&self, email: &str, password: &str) -> Reply {
        self.post(
            "/auth/register",
            json!({"email": email, "password": password, "password2": password, "first_name": "Jane", "last_name": "Doe"}),
        )
        .await
    }

    /// Registers and verifies `email`; returns the verify-otp answer (with tokens).
    pub async fn verified_user(&self, email: &str) -> Value {
        self.register(email, PASSWORD).await.expect(201, None);
        let code = self.mail.latest_code(email);
        let reply = self
            .post("/auth/verify-otp", json!({"email": email, "otp": code}))
            .await;
        reply.expect(200, None);
        reply.body
    }

    pub async fn login(&self, email: &str, password: &str) -> Reply {
        self.post("/auth/login", json!({"email": email, "password": password}))
            .await
    }

    /// Moves the app's clock past the resend cooldown.
    pub fn pass_cooldown(&self) {
        self.clock
            .advance(self.state.config.otp_resend_cooldown + Duration::from_secs(1));
    }

    /// Rows in a table, to prove a refused request changed nothing.
    pub async fn count(&self, table: &str) -> i64 {
        let backend = self.state.db.get_database_backend();
        let row = self
            .state
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                backend,
                format!("SELECT COUNT(*) AS n FROM {table}"),
            ))
            .await
            .expect("count query")
            .expect("a count row");
        row.try_get::<i64>("", "n").expect("a number")
    }

    /// The first column of every row a query returns, as text.
    pub async fn query_strings(&self, sql: &str) -> Vec<String> {
        let backend = self.state.db.get_database_backend();
        self.state
            .db
            .query_all_raw(sea_orm::Statement::from_string(backend, sql.to_string()))
            .await
            .expect("query runs")
            .into_iter()
            .map(|row| row.try_get_by_index::<String>(0).expect("a text column"))
            .collect()
    }

    /// Rows in a table that meet a condition.
    pub async fn count_where(&self, table: &str, condition: &str) -> i64 {
        self.count(&format!("{table} WHERE {condition}")).await
    }

    /// Runs a statement against the app's database (to disable a user, say), behind the
    /// service's back. On PostgreSQL the app hears of a changed account a moment after the
    /// commit; the test goes on at once, so the app is told to read every account afresh
    /// (`accounts::the_app_hears_an_account_changed_behind_its_back` waits for the
    /// announcement instead).
    pub async fn execute(&self, sql: &str) {
        self.state
            .db
            .execute_unprepared(sql)
            .await
            .expect("statement runs");
        self.state.accounts.forget_all();
    }
}

impl Reply {
    pub async fn read(response: reqwest::Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }
}
