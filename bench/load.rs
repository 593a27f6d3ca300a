//! Load client for `bench/load.sh`: seeds verified users straight into the database, then
//! drives one scenario against a running authgate for a fixed time and prints requests per
//! second, p50 and p99.
//!
//! `DATABASE_URL=… cargo run --release --example load -- seed 64`
//! `cargo run --release --example load -- run login http://127.0.0.1:8080 32 10`
//! `DATABASE_URL=… cargo run --release --example load -- seed-mfa 20000`, then
//! `DATABASE_URL=… cargo run --release --example load -- run mfa http://127.0.0.1:8080 32 10`
//! `cargo run --release --example load -- avatars http://127.0.0.1:8080 10` (`bench/avatars.sh`)

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use authgate::{
    clock::{Clock, SystemClock},
    config::Argon2Params,
    domain::{hashing::HashingPool, password_policy::Password},
    store::{self, mfa_challenges, mfa_factors, profiles, users},
    tokens::refresh,
};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait,
    sea_query::{Expr, OnConflict},
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::Barrier;
use uuid::Uuid;

const PASSWORD: &str = "load test password";
/// How long a seeded waiting sign-in lives: the service's default `mfa_token` lifetime.
const MFA_TOKEN_TTL: Duration = Duration::from_secs(300);

fn email(n: usize) -> String {
    format!("load{n}@example.com")
}

fn mfa_email(n: usize) -> String {
    format!("mfa{n}@example.com")
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["seed", users] => seed(users.parse().expect("a user count")).await,
        ["seed-mfa", users] => seed_mfa(users.parse().expect("a user count")).await,
        ["hashrate", seconds] => hash_rate(seconds.parse().expect("seconds")).await,
        ["run", scenario, base, concurrency, seconds] => {
            run(
                scenario,
                base,
                concurrency.parse().expect("concurrency"),
                seconds.parse().expect("seconds"),
            )
            .await
        }
        ["avatars", base, seconds] => avatars(base, seconds.parse().expect("seconds")).await,
        _ => eprintln!(
            "usage: load seed USERS | load seed-mfa USERS | load hashrate SECONDS | load run (health|login|me|refresh|mfa) BASE_URL CONCURRENCY SECONDS | load avatars BASE_URL SECONDS"
        ),
    }
}

/// Inserts verified users `load0@example.com`… with one password hashed at the default
/// parameters (the server verifies it with those).
async fn seed(count: usize) {
    let db = migrated_database().await;
    let hash = default_hash().await;
    let now = SystemClock.now();
    for n in 0..count {
        insert_user(&db, &email(n), &hash, "[]", now).await;
    }
    println!("seeded {count} users");
}

/// Inserts users `mfa0@example.com`… with an authenticator app on (a confirmed TOTP factor
/// whose secret [`mfa_secret`] derives from the account id), for the `mfa` scenario. The
/// secrets are stored in clear: the server must run without `AUTHGATE_ENCRYPTION_KEYS`.
async fn seed_mfa(count: usize) {
    let db = migrated_database().await;
    let hash = default_hash().await;
    let now = SystemClock.now();
    // One transaction: tens of thousands of accounts in seconds, not one commit each.
    let txn = db.begin().await.unwrap();
    for n in 0..count {
        let Some(user_id) = insert_user(&txn, &mfa_email(n), &hash, r#"["totp"]"#, now).await
        else {
            continue;
        };
        mfa_factors::Entity::insert(mfa_factors::ActiveModel {
            id: Set(Uuid::new_v4()),
            user_id: Set(user_id),
            kind: Set(mfa_factors::TOTP.into()),
            secret: Set(Some(
                totp_rs::Secret::from(mfa_secret(user_id))
                    .to_base32()
                    .into(),
            )),
            created_at: Set(now),
            confirmed_at: Set(Some(now)),
            last_used_step: Set(None),
        })
        .exec(&txn)
        .await
        .unwrap();
    }
    txn.commit().await.unwrap();
    println!("seeded {count} users with an authenticator app");
}

async fn migrated_database() -> DatabaseConnection {
    let db = store::connect(
        &std::env::var("DATABASE_URL").expect("DATABASE_URL"),
        store::Open::CreatingIfMissing,
    )
    .await
    .unwrap();
    store::migrate(&db).await.unwrap();
    db
}

/// [`PASSWORD`] hashed at the default parameters, which the server verifies logins with.
async fn default_hash() -> String {
    HashingPool::new(DEFAULT_ARGON2)
        .unwrap()
        .hash(&Password::for_login(PASSWORD.into()).unwrap())
        .await
        .unwrap()
}

const DEFAULT_ARGON2: Argon2Params = Argon2Params {
    memory_kib: 19_456,
    iterations: 2,
    lanes: 1,
};

/// A verified user with an empty profile; `None` when the address is taken already (an
/// earlier seed).
async fn insert_user(
    conn: &impl ConnectionTrait,
    email: &str,
    hash: &str,
    mfa_methods: &str,
    now: DateTime<Utc>,
) -> Option<Uuid> {
    let id = Uuid::new_v4();
    let inserted = users::Entity::insert(users::ActiveModel {
        id: Set(id),
        email: Set(email.into()),
        password_hash: Set(hash.to_string().into()),
        first_name: Set("Load".into()),
        last_name: Set("Test".into()),
        phone_number: Set(None),
        role: Set("user".into()),
        is_verified: Set(true),
        is_active: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
        last_login_at: Set(None),
        registrations: Set(1),
        mfa_methods: Set(mfa_methods.into()),
        // Status, metadata and the rest take their column defaults.
        ..Default::default()
    })
    .on_conflict(
        OnConflict::column(users::Column::Email)
            .do_nothing()
            .to_owned(),
    )
    .exec(conn)
    .await;
    inserted.ok()?;
    profiles::Entity::insert(profiles::ActiveModel {
        user_id: Set(id),
        bio: Set(String::new()),
        avatar_url: Set(None),
        date_of_birth: Set(None),
    })
    .exec(conn)
    .await
    .unwrap();
    Some(id)
}

/// The TOTP secret of a seeded account: 160 bits derived from its id, so the load client
/// computes the codes its authenticator app would show.
fn mfa_secret(user_id: Uuid) -> Vec<u8> {
    Sha256::digest(format!("load test totp secret {user_id}"))[..20].to_vec()
}

/// The code an authenticator app shows for `secret` right now.
fn totp_now(secret: &[u8]) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(secret)
        .build_noncompliant()
        .generate(now.as_secs())
        .to_string()
}

/// A sign-in whose password was right, waiting for its second factor.
struct WaitingSignIn {
    mfa_token: String,
    totp_secret: Vec<u8>,
}

/// One waiting sign-in per seeded TOTP account, opened straight in the database as a right
/// password would open it, so the measured phase pays for `/auth/mfa/verify` alone (a login
/// costs an argon2 hash). Each `mfa_token` and each TOTP step work once: one verification per
/// account per run, so the run ends early when they are used up.
async fn open_waiting_sign_ins() -> Vec<WaitingSignIn> {
    let db = migrated_database().await;
    // A step spent by an earlier run in this 30-second window would refuse this run's codes.
    mfa_factors::Entity::update_many()
        .col_expr(mfa_factors::Column::LastUsedStep, Expr::value(None::<i64>))
        .exec(&db)
        .await
        .unwrap();
    let factors = mfa_factors::Entity::find()
        .filter(mfa_factors::Column::Kind.eq(mfa_factors::TOTP))
        .all(&db)
        .await
        .unwrap();
    let now = SystemClock.now();
    let expires_at = now + chrono::Duration::from_std(MFA_TOKEN_TTL).unwrap();
    let txn = db.begin().await.unwrap();
    let mut waiting = Vec::with_capacity(factors.len());
    for factor in factors {
        let minted = refresh::mint();
        let challenge = mfa_challenges::NewChallenge {
            user_id: factor.user_id,
            token_hash: minted.hash,
            purpose: "login",
            expires_at,
        };
        mfa_challenges::insert(&txn, challenge, now).await.unwrap();
        waiting.push(WaitingSignIn {
            mfa_token: minted.token,
            totp_secret: mfa_secret(factor.user_id),
        });
    }
    txn.commit().await.unwrap();
    assert!(
        !waiting.is_empty(),
        "no TOTP accounts: run `load seed-mfa` first"
    );
    waiting
}

/// The ceiling for logins: argon2id verifications per second with every core busy, through
/// the same pool the server uses.
async fn hash_rate(seconds: u64) {
    let pool = Arc::new(HashingPool::new(DEFAULT_ARGON2).unwrap());
    let password = Password::for_login(PASSWORD.into()).unwrap();
    let hash = pool.hash(&password).await.unwrap();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..cores)
        .map(|_| {
            let (pool, password, hash) = (Arc::clone(&pool), password.clone(), hash.clone());
            tokio::spawn(async move {
                let mut done = 0u64;
                while Instant::now() < deadline {
                    pool.verify(&password, &hash).await.unwrap();
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for worker in workers {
        total += worker.await.unwrap();
    }
    println!(
        "hashrate {:>6.1} verifications/s on {cores} cores",
        total as f64 / seconds as f64
    );
}

async fn run(scenario: &str, base: &str, concurrency: usize, seconds: u64) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let waiting = Arc::new(match scenario {
        "mfa" => open_waiting_sign_ins().await,
        _ => Vec::new(),
    });
    let next_waiting = Arc::new(AtomicUsize::new(0));
    // The clock starts once every client has signed in: the logins of `me` and `refresh`
    // cost an argon2 hash each and are not what those scenarios measure.
    let ready = Arc::new(Barrier::new(concurrency));
    let base = Arc::new(base.trim_end_matches('/').to_string());
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let (client, base, scenario) = (client.clone(), Arc::clone(&base), scenario.to_string());
        let (waiting, next_waiting, ready) = (
            Arc::clone(&waiting),
            Arc::clone(&next_waiting),
            Arc::clone(&ready),
        );
        workers.push(tokio::spawn(async move {
            let login = json!({"email": email(worker), "password": PASSWORD});
            let mut tokens = match scenario.as_str() {
                "me" | "refresh" => post(&client, &base, "/auth/login", &login).await.1,
                _ => Value::Null,
            };
            ready.wait().await;
            let began = Instant::now();
            let deadline = began + Duration::from_secs(seconds);
            let (mut latencies, mut errors) = (Vec::new(), 0usize);
            while Instant::now() < deadline {
                let started = Instant::now();
                let ok = match scenario.as_str() {
                    "health" => get(&client, &base, "/health", None).await,
                    "me" => get(&client, &base, "/auth/me", tokens["access"].as_str()).await,
                    "login" => post(&client, &base, "/auth/login", &login).await.0,
                    "refresh" => {
                        let (ok, pair) = post(
                            &client,
                            &base,
                            "/auth/token/refresh",
                            &json!({"refresh": tokens["refresh"]}),
                        )
                        .await;
                        if ok {
                            tokens = pair;
                        }
                        ok
                    }
                    "mfa" => {
                        let Some(sign_in) =
                            waiting.get(next_waiting.fetch_add(1, Ordering::Relaxed))
                        else {
                            break;
                        };
                        let body = json!({
                            "mfa_token": sign_in.mfa_token,
                            "method": "totp",
                            "code": totp_now(&sign_in.totp_secret),
                        });
                        post(&client, &base, "/auth/mfa/verify", &body).await.0
                    }
                    other => panic!("unknown scenario {other}"),
                };
                latencies.push(started.elapsed());
                if !ok {
                    errors += 1;
                }
            }
            (latencies, errors, began, Instant::now())
        }));
    }
    let (mut latencies, mut errors) = (Vec::new(), 0);
    let (mut first_began, mut last_ended) = (None::<Instant>, None::<Instant>);
    for worker in workers {
        let (worker_latencies, worker_errors, began, ended) = worker.await.unwrap();
        latencies.extend(worker_latencies);
        errors += worker_errors;
        first_began = Some(first_began.map_or(began, |first| first.min(began)));
        last_ended = Some(last_ended.map_or(ended, |last| last.max(ended)));
    }
    // `mfa` may use up its waiting sign-ins before the time is over.
    let elapsed = match (first_began, last_ended) {
        (Some(began), Some(ended)) => (ended - began).as_secs_f64().min(seconds as f64),
        _ => seconds as f64,
    };
    latencies.sort();
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
    };
    let ms = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    println!(
        "{scenario:<8} {:>8} req {:>9.1} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   errors {errors}   over {elapsed:.1} s",
        latencies.len(),
        latencies.len() as f64 / elapsed,
        ms(percentile(0.50)),
        ms(percentile(0.99)),
    );
}

/// Uploaders running at once while `/health` is timed.
const UPLOADERS: usize = 10;

/// Picture uploads of a 2 MB JPEG through HTTP: one at a time (the target is under 150 ms
/// each), then `/health` timed alone and again while [`UPLOADERS`] users upload without pause.
/// Decoding runs on the blocking pool, so `/health` must not wait behind it. Needs
/// `load seed` of at least [`UPLOADERS`] users.
async fn avatars(base: &str, seconds: u64) {
    let client = reqwest::Client::new();
    let photo = two_megabyte_jpeg();
    println!(
        "upload: a {:.2} MB JPEG of 3000×2000 px",
        photo.len() as f64 / 1e6
    );
    let mut tokens = Vec::new();
    for n in 0..UPLOADERS {
        let login = json!({"email": email(n), "password": PASSWORD});
        let (_, pair) = post(&client, base, "/auth/login", &login).await;
        let token = pair["access"].as_str().map(str::to_string);
        tokens.push(token.expect("seeded users sign in: run `load seed` first"));
    }

    let mut alone = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        assert!(upload(&client, base, &tokens[0], photo.clone()).await);
        alone.push(started.elapsed());
    }
    summary("upload, one at a time", &mut alone, 0);

    let window = Duration::from_secs(seconds);
    let (mut health, errors) = time_health(&client, base, window).await;
    summary("/health, alone", &mut health, errors);

    let deadline = Instant::now() + window;
    let uploaders: Vec<_> = tokens
        .into_iter()
        .map(|token| {
            let (client, base, photo) = (client.clone(), base.to_string(), photo.clone());
            tokio::spawn(async move {
                let (mut latencies, mut errors) = (Vec::new(), 0);
                while Instant::now() < deadline {
                    let started = Instant::now();
                    if !upload(&client, &base, &token, photo.clone()).await {
                        errors += 1;
                    }
                    latencies.push(started.elapsed());
                }
                (latencies, errors)
            })
        })
        .collect();
    let (mut health, health_errors) = time_health(&client, base, window).await;
    let (mut uploads, mut upload_errors) = (Vec::new(), 0);
    for uploader in uploaders {
        let (latencies, errors) = uploader.await.unwrap();
        uploads.extend(latencies);
        upload_errors += errors;
    }
    summary(
        &format!("upload, {UPLOADERS} at once"),
        &mut uploads,
        upload_errors,
    );
    summary(
        &format!("/health, {UPLOADERS} uploads running"),
        &mut health,
        health_errors,
    );
}

/// A 3000×2000 photo-like JPEG of about 2 MB: gradients with grain, which JPEG compresses as
/// it does a photo.
fn two_megabyte_jpeg() -> Vec<u8> {
    use image::{Rgb, RgbImage, codecs::jpeg::JpegEncoder};
    use rand::{Rng as _, SeedableRng as _, rngs::StdRng};
    let mut rng = StdRng::seed_from_u64(7);
    let photo = RgbImage::from_fn(3000, 2000, |x, y| {
        let grain = rng.gen_range(0..16u32);
        Rgb([
            ((x / 12 + grain) % 256) as u8,
            ((y / 8 + grain) % 256) as u8,
            (((x + y) / 20 + grain) % 256) as u8,
        ])
    });
    let mut jpeg = Vec::new();
    photo
        .write_with_encoder(JpegEncoder::new_with_quality(&mut jpeg, 90))
        .unwrap();
    jpeg
}

async fn upload(client: &reqwest::Client, base: &str, token: &str, picture: Vec<u8>) -> bool {
    client
        .put(format!("{base}/auth/me/avatar"))
        .bearer_auth(token)
        .header("content-type", "image/jpeg")
        .body(picture)
        .send()
        .await
        .is_ok_and(|response| response.status().is_success())
}

/// `/health` one request after another for `window`: latencies and failures.
async fn time_health(
    client: &reqwest::Client,
    base: &str,
    window: Duration,
) -> (Vec<Duration>, usize) {
    let deadline = Instant::now() + window;
    let (mut latencies, mut errors) = (Vec::new(), 0);
    while Instant::now() < deadline {
        let started = Instant::now();
        if !get(client, base, "/health", None).await {
            errors += 1;
        }
        latencies.push(started.elapsed());
    }
    (latencies, errors)
}

fn summary(what: &str, latencies: &mut [Duration], errors: usize) {
    latencies.sort();
    let at = |p: f64| {
        let index = ((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1));
        latencies
            .get(index)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{what:<34} {:>6} req   p50 {:>8.2} ms   p99 {:>8.2} ms   max {:>8.2} ms   errors {errors}",
        latencies.len(),
        at(0.50),
        at(0.99),
        at(1.0),
    );
}

async fn get(client: &reqwest::Client, base: &str, path: &str, token: Option<&str>) -> bool {
    let mut request = client.get(format!("{base}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request
        .send()
        .await
        .is_ok_and(|response| response.status().is_success())
}

async fn post(client: &reqwest::Client, base: &str, path: &str, body: &Value) -> (bool, Value) {
    match client.post(format!("{base}{path}")).json(body).send().await {
        Ok(response) if response.status().is_success() => {
            (true, response.json().await.unwrap_or(Value::Null))
        }
        _ => (false, Value::Null),
    }
}
