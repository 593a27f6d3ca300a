//! Micro-benchmarks of the costs every request pays: password hashing, token signing and
//! verification per algorithm, and one-time code issue/check. `cargo bench`; figures and the
//! machine are in BENCHMARKS.md.

use std::{hint::black_box, sync::Arc, time::Duration};

use authgate::{
    app::AppState,
    clock::SystemClock,
    config::{Argon2Params, Config, Limits, SigningAlgorithm},
    domain::{ClientInfo, codes::OtpCode, hashing::HashingPool, password_policy::Password},
    flows::{registration::RegisterRequest, sign_in::LoginRequest},
    store,
    tokens::{AccessTokens, KeyRing, access::Subject},
    vault::Vault,
};
use criterion::{Criterion, criterion_group, criterion_main};
use uuid::Uuid;

fn password_hashing(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let defaults = Argon2Params {
        memory_kib: 19_456,
        iterations: 2,
        lanes: 1,
    };
    let pool = HashingPool::new(defaults).unwrap();
    let password = Password::for_login("correct horse battery staple".into()).unwrap();
    let hash = runtime.block_on(pool.hash(&password)).unwrap();
    let mut group = c.benchmark_group("argon2id m=19456,t=2,p=1");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("hash", |b| {
        b.to_async(&runtime)
            .iter(|| pool.hash(black_box(&password)))
    });
    group.bench_function("verify", |b| {
        b.to_async(&runtime)
            .iter(|| pool.verify(black_box(&password), &hash))
    });
    group.finish();
}

fn access_tokens(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut group = c.benchmark_group("access token");
    for algorithm in [
        SigningAlgorithm::EdDsa,
        SigningAlgorithm::Es256,
        SigningAlgorithm::Rs256,
    ] {
        let tokens = runtime.block_on(async {
            let db = store::connect("sqlite::memory:").await.unwrap();
            store::migrate(&db).await.unwrap();
            let keys = KeyRing::start(
                db,
                Arc::new(Vault::from_spec("").unwrap()),
                algorithm,
                Duration::from_secs(300),
                Arc::new(SystemClock),
            )
            .await
            .unwrap();
            AccessTokens::new(
                Arc::new(keys),
                "http://127.0.0.1:8080".into(),
                "authgate".into(),
                Duration::from_secs(300),
                Arc::new(SystemClock),
            )
        });
        let amr = vec!["pwd".to_string()];
        let subject = Subject {
            user_id: Uuid::new_v4(),
            session_id: Uuid::new_v4(),
            email: "jane@example.com",
            email_verified: true,
            role: "user",
            amr: &amr,
        };
        let token = tokens.issue(&subject).unwrap();
        group.bench_function(format!("{} sign", algorithm.as_str()), |b| {
            b.iter(|| tokens.issue(black_box(&subject)))
        });
        group.bench_function(format!("{} verify", algorithm.as_str()), |b| {
            b.to_async(&runtime)
                .iter(|| tokens.verify(black_box(&token)))
        });
    }
    group.finish();
}

fn one_time_codes(c: &mut Criterion) {
    let row = Uuid::new_v4();
    let mut group = c.benchmark_group("one-time code");
    for (name, vault) in [
        ("clear", Vault::from_spec("").unwrap()),
        (
            "keyed",
            Vault::from_spec("k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap(),
        ),
    ] {
        let stored = vault.mac(row.as_bytes(), OtpCode::generate().expose());
        group.bench_function(format!("issue (draw and MAC), {name}"), |b| {
            b.iter(|| vault.mac(black_box(row.as_bytes()), OtpCode::generate().expose()))
        });
        group.bench_function(format!("check, {name}"), |b| {
            b.iter(|| vault.mac_matches(black_box(row.as_bytes()), black_box("123456"), &stored))
        });
    }
    group.finish();
}

/// The refresh path end to end below HTTP: token lookup, rotation, a new refresh token and a
/// signed access token, in one transaction. SQLite always; PostgreSQL when `TEST_DATABASE_URL`
/// is set.
fn refresh(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut databases = vec![("sqlite", "sqlite::memory:".to_string())];
    if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
        let schema = format!("bench_{}", Uuid::new_v4().simple());
        runtime.block_on(async {
            let admin = sea_orm::Database::connect(url.as_str()).await.unwrap();
            sea_orm::ConnectionTrait::execute_unprepared(
                &admin,
                &format!("CREATE SCHEMA {schema}"),
            )
            .await
            .unwrap();
        });
        databases.push((
            "postgres",
            format!("{url}?options=-c%20search_path%3D{schema}"),
        ));
    }
    let mut group = c.benchmark_group("refresh");
    for (name, database_url) in databases {
        let (state, first_token) = runtime.block_on(signed_in_user(&database_url));
        let token = std::sync::Mutex::new(first_token);
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| async {
                let current = token.lock().unwrap().clone();
                let pair = state
                    .sessions
                    .refresh(&current, &ClientInfo::default())
                    .await
                    .unwrap();
                *token.lock().unwrap() = pair.refresh;
            })
        });
    }
    group.finish();
}

async fn signed_in_user(database_url: &str) -> (Arc<AppState>, String) {
    let mail = std::env::temp_dir().join("authgate-bench-mail");
    let variables = std::collections::HashMap::from([
        ("DATABASE_URL", database_url.to_string()),
        ("AUTHGATE_MAIL", format!("file://{}", mail.display())),
        ("AUTHGATE_ARGON2", "m=64,t=1,p=1".to_string()),
    ]);
    let mut config = Config::from_lookup(|name| variables.get(name).cloned()).unwrap();
    // The benchmark refreshes one session far beyond any sane per-session limit.
    config.limits = Limits::OFF;
    let state = AppState::build(config, Arc::new(SystemClock))
        .await
        .unwrap();
    let password = "correct horse battery staple";
    state
        .registration
        .register(
            RegisterRequest {
                email: "bench@example.com".into(),
                password: password.into(),
                password2: password.into(),
                ..RegisterRequest::default()
            },
            &ClientInfo::default(),
        )
        .await
        .unwrap();
    sea_orm::ConnectionTrait::execute_unprepared(&state.db, "UPDATE users SET is_verified = true")
        .await
        .unwrap();
    let login = LoginRequest {
        login: "bench@example.com".into(),
        email: String::new(),
        device_token: None,
        password: password.into(),
    };
    let signed_in = state
        .sign_in
        .login(login, &ClientInfo::default())
        .await
        .unwrap();
    (state, signed_in.tokens.refresh)
}

criterion_group!(
    benches,
    password_hashing,
    access_tokens,
    one_time_codes,
    refresh
);
criterion_main!(benches);
