//! Speed of the admin directory for `bench/admin_list.sh`: seeds many accounts straight into
//! the database (multi-row inserts, one transaction), then times `GET /admin/users` queries
//! one after another against a running authgate and prints p50, p90 and p99 of each.
//!
//! `DATABASE_URL=… cargo run --release --example admin_list -- seed 100000`
//! `cargo run --release --example admin_list -- run http://127.0.0.1:8080 200`

use std::time::{Duration, Instant};

use authgate::{
    clock::{Clock, SystemClock},
    config::Argon2Params,
    domain::{hashing::HashingPool, password_policy::Password},
    store::{self, profiles, users},
};
use chrono::TimeDelta;
use rand::{Rng, SeedableRng, rngs::StdRng};
use sea_orm::{ActiveValue::Set, EntityTrait, TransactionTrait};
use serde_json::{Value, json};

const ADMIN: &str = "admin@bench.example";
const PASSWORD: &str = "admin bench password";
/// Rows per INSERT: 500 rows of 19 columns stay under SQLite's and PostgreSQL's limits on
/// bound parameters.
const BATCH: usize = 500;

const FIRST: &[&str] = &[
    "Ada",
    "Alan",
    "Grace",
    "Edsger",
    "Barbara",
    "Donald",
    "Margaret",
    "Ken",
    "Frances",
    "John",
    "Radia",
    "Dennis",
    "Hedy",
    "Linus",
    "Katherine",
    "Tim",
    "Sophie",
    "Guido",
    "Anita",
    "Bjarne",
];
const LAST: &[&str] = &[
    "Lovelace",
    "Turing",
    "Hopper",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Hamilton",
    "Thompson",
    "Allen",
    "McCarthy",
    "Perlman",
    "Ritchie",
    "Lamarr",
    "Torvalds",
    "Johnson",
    "Berners-Lee",
    "Wilson",
    "Rossum",
    "Borg",
    "Stroustrup",
    "Smith",
    "Garcia",
    "Nguyen",
    "Okafor",
    "Kowalski",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "example.org",
    "mail.example.net",
    "uni.example.edu",
];

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["seed", count] => seed(count.parse().expect("a user count")).await,
        ["run", base, rounds] => run(base, rounds.parse().expect("rounds")).await,
        _ => eprintln!("usage: admin_list seed USERS | admin_list run BASE_URL ROUNDS"),
    }
}

/// `count` accounts created over the last year (70 % of them signed in since), with names
/// drawn from small lists so that searches find many or few, plus the admin who lists them.
async fn seed(count: usize) {
    let db = store::connect(
        &std::env::var("DATABASE_URL").expect("DATABASE_URL"),
        store::Open::CreatingIfMissing,
    )
    .await
    .unwrap();
    store::migrate(&db).await.unwrap();
    // Cheap parameters: the server verifies a hash with the parameters stored in it.
    let cheap = Argon2Params {
        memory_kib: 64,
        iterations: 1,
        lanes: 1,
    };
    let hash = HashingPool::new(cheap)
        .unwrap()
        .hash(&Password::for_login(PASSWORD.into()).unwrap())
        .await
        .unwrap();
    let now = SystemClock.now();
    let mut rng = StdRng::seed_from_u64(42);
    let started = Instant::now();
    let txn = db.begin().await.unwrap();
    let (mut rows, mut profile_rows) = (Vec::with_capacity(BATCH), Vec::with_capacity(BATCH));
    for n in 0..=count {
        let id = uuid::Uuid::now_v7();
        let created_at = now - TimeDelta::seconds(rng.gen_range(0..365 * 86_400));
        let signed_in = rng.gen_bool(0.7);
        let last_login_at =
            signed_in.then(|| created_at + (now - created_at) / rng.gen_range(1..10));
        let (email, role) = if n == count {
            (ADMIN.to_string(), "admin")
        } else {
            let domain = DOMAINS[n % DOMAINS.len()];
            (format!("user{n}@{domain}"), "user")
        };
        let username = (n % 3 == 0).then(|| format!("member{n}"));
        rows.push(users::ActiveModel {
            id: Set(id),
            email: Set(email),
            password_hash: Set(hash.clone().into()),
            first_name: Set(FIRST[rng.gen_range(0..FIRST.len())].into()),
            last_name: Set(LAST[rng.gen_range(0..LAST.len())].into()),
            phone_number: Set(None),
            role: Set(role.into()),
            is_verified: Set(n == count || rng.gen_bool(0.9)),
            is_active: Set(true),
            created_at: Set(created_at),
            updated_at: Set(created_at),
            last_login_at: Set(last_login_at),
            registrations: Set(1),
            username_key: Set(username.as_deref().map(str::to_lowercase)),
            username: Set(username),
            status: Set("active".into()),
            deletion_scheduled_for: Set(None),
            metadata: Set("{}".into()),
            app_metadata: Set("{}".into()),
            last_seen_at: Set(last_login_at),
            mfa_methods: Set("[]".into()),
        });
        profile_rows.push(profiles::ActiveModel::from(profiles::empty(id)));
        if rows.len() == BATCH || n == count {
            users::Entity::insert_many(std::mem::take(&mut rows))
                .exec(&txn)
                .await
                .unwrap();
            profiles::Entity::insert_many(std::mem::take(&mut profile_rows))
                .exec(&txn)
                .await
                .unwrap();
        }
    }
    txn.commit().await.unwrap();
    println!(
        "seeded {count} users and {ADMIN} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Times each listing `rounds` times, one request at a time (a person at an admin console),
/// after a few untimed warm-up requests.
async fn run(base: &str, rounds: usize) {
    let client = reqwest::Client::new();
    let base = base.trim_end_matches('/');
    let login: Value = client
        .post(format!("{base}/auth/login"))
        .json(&json!({"email": ADMIN, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access"]
        .as_str()
        .expect("the admin signs in")
        .to_string();
    let first: Value = client
        .get(format!("{base}/admin/users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cursor = first["next_cursor"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    println!("{} accounts", first["total"]);
    let queries = [
        "/admin/users".to_string(),
        format!("/admin/users?cursor={cursor}"),
        "/admin/users?q=smith".to_string(),
        "/admin/users?q=user4242".to_string(),
        "/admin/users?q=nobody-has-this".to_string(),
        "/admin/users?sort=email".to_string(),
        "/admin/users?sort=-last_login_at".to_string(),
        "/admin/users?role=admin".to_string(),
        "/admin/users?verified=false&created_after=2026-06-01T00:00:00Z".to_string(),
    ];
    println!(
        "{:<64} {:>9} {:>9} {:>9} {:>8}",
        "query", "p50", "p90", "p99", "total"
    );
    for query in queries {
        let mut latencies = Vec::with_capacity(rounds);
        let mut total = Value::Null;
        for round in 0..rounds + 5 {
            let started = Instant::now();
            let reply = client
                .get(format!("{base}{query}"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert!(reply.status().is_success(), "{query}: {}", reply.status());
            let body: Value = reply.json().await.unwrap();
            if round >= 5 {
                latencies.push(started.elapsed());
            }
            total = body["total"].clone();
        }
        latencies.sort();
        let at =
            |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
        let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
        let shown: String = query.chars().take(64).collect();
        println!(
            "{shown:<64} {:>9} {:>9} {:>9} {:>8}",
            ms(at(0.5)),
            ms(at(0.9)),
            ms(at(0.99)),
            total
        );
    }
}
