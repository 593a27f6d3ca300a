//! Abuse limits (§8): fixed-window counters in the database, so every instance that shares it
//! counts together. Each check is one indexed upsert; old counters are purged in the
//! background.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement, Value};

use super::{AuthService, error::AuthError};
use crate::{
    clock::{delta, seconds_until},
    config::{Limit, Limits},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    LoginIp,
    LoginAccount,
    RegisterIp,
    OtpVerifyIp,
    MailAddress,
    RefreshSession,
}

impl LimitKind {
    const ALL: [LimitKind; 6] = [
        LimitKind::LoginIp,
        LimitKind::LoginAccount,
        LimitKind::RegisterIp,
        LimitKind::OtpVerifyIp,
        LimitKind::MailAddress,
        LimitKind::RefreshSession,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LimitKind::LoginIp => "login_ip",
            LimitKind::LoginAccount => "login_account",
            LimitKind::RegisterIp => "register_ip",
            LimitKind::OtpVerifyIp => "otp_verify_ip",
            LimitKind::MailAddress => "mail_address",
            LimitKind::RefreshSession => "refresh_session",
        }
    }

    fn of(self, limits: &Limits) -> Option<Limit> {
        match self {
            LimitKind::LoginIp => limits.login_ip,
            LimitKind::LoginAccount => limits.login_account,
            LimitKind::RegisterIp => limits.register_ip,
            LimitKind::OtpVerifyIp => limits.otp_verify_ip,
            LimitKind::MailAddress => limits.mail_address,
            LimitKind::RefreshSession => limits.refresh_session,
        }
    }
}

/// Counts a hit and returns the counter after it, in one statement: a new window starts when
/// the old one has passed. Works unchanged on SQLite (3.35+) and PostgreSQL.
const COUNT_HIT: &str = "\
INSERT INTO rate_limits (key, window_started_ms, hits) VALUES (?, ?, 1)
ON CONFLICT (key) DO UPDATE SET
  hits = CASE WHEN rate_limits.window_started_ms <= ? THEN 1 ELSE rate_limits.hits + 1 END,
  window_started_ms = CASE WHEN rate_limits.window_started_ms <= ? THEN ? ELSE rate_limits.window_started_ms END
RETURNING hits, window_started_ms";

const REFUND_HIT: &str = "UPDATE rate_limits SET hits = hits - 1 WHERE key = ? AND hits > 0";

const PURGE_COUNTERS: &str = "DELETE FROM rate_limits WHERE window_started_ms <= ?";

/// A counter as read back: hits in the window that started at `window_started_ms`.
struct Counter {
    hits: u32,
    window_started_ms: i64,
}

impl AuthService {
    /// Counts one event of `kind` for `subject` and refuses it once the limit is passed.
    /// Returns the events in the current window (zero when the limit is off).
    pub(super) async fn hit(
        &self,
        conn: &impl ConnectionTrait,
        kind: LimitKind,
        subject: &str,
    ) -> Result<u32, AuthError> {
        let Some(limit) = kind.of(&self.config.limits) else {
            return Ok(0);
        };
        let counter = self.count_hit(conn, kind, limit, subject).await?;
        if counter.hits > limit.count {
            return Err(self.refusal(kind, limit, &counter));
        }
        Ok(counter.hits)
    }

    /// Takes back one counted event that turned out not to be abuse (a right password, a
    /// mail the server never took).
    pub(super) async fn refund(&self, kind: LimitKind, subject: &str) -> Result<(), AuthError> {
        if kind.of(&self.config.limits).is_some() {
            let values = vec![key(kind, subject).into()];
            self.db
                .execute_raw(statement(
                    self.db.get_database_backend(),
                    REFUND_HIT,
                    values,
                ))
                .await?;
        }
        Ok(())
    }

    /// Deletes counters whose window has passed for every limit.
    pub async fn purge_expired_counters(&self) -> Result<u64, AuthError> {
        let longest = LimitKind::ALL
            .into_iter()
            .filter_map(|kind| kind.of(&self.config.limits))
            .map(window_ms)
            .max()
            .unwrap_or(0);
        let cutoff = self.clock.now().timestamp_millis() - longest;
        let statement = statement(
            self.db.get_database_backend(),
            PURGE_COUNTERS,
            vec![cutoff.into()],
        );
        Ok(self.db.execute_raw(statement).await?.rows_affected())
    }

    async fn count_hit(
        &self,
        conn: &impl ConnectionTrait,
        kind: LimitKind,
        limit: Limit,
        subject: &str,
    ) -> Result<Counter, AuthError> {
        let now = self.clock.now().timestamp_millis();
        let window_passed = now - window_ms(limit);
        let values: Vec<Value> = vec![
            key(kind, subject).into(),
            now.into(),
            window_passed.into(),
            window_passed.into(),
            now.into(),
        ];
        let row = conn
            .query_one_raw(statement(conn.get_database_backend(), COUNT_HIT, values))
            .await?
            .ok_or_else(|| AuthError::Internal("the counter upsert returned no row".into()))?;
        Ok(Counter {
            hits: row.try_get::<i32>("", "hits")?.max(0) as u32,
            window_started_ms: row.try_get("", "window_started_ms")?,
        })
    }

    fn refusal(&self, kind: LimitKind, limit: Limit, counter: &Counter) -> AuthError {
        let window_ends_ms = counter.window_started_ms + window_ms(limit);
        let now = self.clock.now();
        let ends = DateTime::<Utc>::from_timestamp_millis(window_ends_ms).unwrap_or(now);
        tracing::warn!(
            security_event = "rate_limited",
            limit = kind.name(),
            "request over a limit refused"
        );
        crate::metrics::count("authgate_rate_limited_total", &[("limit", kind.name())]);
        AuthError::RateLimited {
            limit: kind.name(),
            retry_after_seconds: seconds_until(now, ends).max(1),
        }
    }
}

fn key(kind: LimitKind, subject: &str) -> String {
    format!("{}:{subject}", kind.name())
}

fn window_ms(limit: Limit) -> i64 {
    delta(limit.window).num_milliseconds()
}

/// The statements above use `?`; PostgreSQL numbers its placeholders.
fn statement(backend: DatabaseBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = match backend {
        DatabaseBackend::Postgres => {
            let mut numbered = String::with_capacity(sql.len() + 8);
            let mut n = 0;
            for c in sql.chars() {
                if c == '?' {
                    n += 1;
                    numbered.push_str(&format!("${n}"));
                } else {
                    numbered.push(c);
                }
            }
            numbered
        }
        _ => sql.to_string(),
    };
    Statement::from_sql_and_values(backend, sql, values)
}
