//! Abuse limits (§8): fixed-window counters in the database, so every instance that shares it
//! counts together. Each check is one indexed upsert; old counters are purged in the
//! background.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;

use super::error::AuthError;
use crate::{
    clock::{Clock, delta, seconds_until},
    config::{Limit, Limits},
    store::limits,
    telemetry::metrics,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    LoginIp,
    LoginAccount,
    RegisterIp,
    OtpVerifyIp,
    MailAddress,
    RefreshSession,
    LookupIp,
}

impl LimitKind {
    const ALL: [LimitKind; 7] = [
        LimitKind::LoginIp,
        LimitKind::LoginAccount,
        LimitKind::RegisterIp,
        LimitKind::OtpVerifyIp,
        LimitKind::MailAddress,
        LimitKind::RefreshSession,
        LimitKind::LookupIp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LimitKind::LoginIp => "login_ip",
            LimitKind::LoginAccount => "login_account",
            LimitKind::RegisterIp => "register_ip",
            LimitKind::OtpVerifyIp => "otp_verify_ip",
            LimitKind::MailAddress => "mail_address",
            LimitKind::RefreshSession => "refresh_session",
            LimitKind::LookupIp => "lookup_ip",
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
            LimitKind::LookupIp => limits.lookup_ip,
        }
    }
}

/// Where one subject stands against one limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Standing {
    /// Events counted in the current window.
    pub hits: u32,
    /// When the subject's events are allowed again, while they are refused.
    pub refused_until: Option<DateTime<Utc>>,
}

pub struct Limiter {
    limits: Limits,
    clock: Arc<dyn Clock>,
}

impl Limiter {
    pub fn new(limits: Limits, clock: Arc<dyn Clock>) -> Limiter {
        Limiter { limits, clock }
    }

    /// Counts one event of `kind` for `subject` and refuses it once the limit is passed.
    /// Returns the events in the current window (zero when the limit is off). Counted through
    /// `conn`: inside a transaction, a refused request changes nothing, this counter included.
    pub async fn hit(
        &self,
        conn: &impl ConnectionTrait,
        kind: LimitKind,
        subject: &str,
    ) -> Result<u32, AuthError> {
        let Some(limit) = kind.of(&self.limits) else {
            return Ok(0);
        };
        let now = self.clock.now();
        let counter = limits::count_hit(
            conn,
            key(kind, subject),
            now.timestamp_millis(),
            window_ms(limit),
        )
        .await?;
        let hits = counter.hits.max(0) as u32;
        if hits > limit.count {
            let window_ends = DateTime::<Utc>::from_timestamp_millis(
                counter.window_started_ms + window_ms(limit),
            )
            .unwrap_or(now);
            tracing::warn!(
                security_event = "rate_limited",
                limit = kind.name(),
                "request over a limit refused"
            );
            ::metrics::counter!(metrics::RATE_LIMITED, "limit" => kind.name()).increment(1);
            return Err(AuthError::RateLimited {
                limit: kind.name(),
                retry_after_seconds: seconds_until(now, window_ends).max(1),
            });
        }
        Ok(hits)
    }

    /// Takes back one counted event that turned out not to be abuse (a right password, a
    /// mail the server never took).
    pub async fn refund(
        &self,
        conn: &impl ConnectionTrait,
        kind: LimitKind,
        subject: &str,
    ) -> Result<(), AuthError> {
        if kind.of(&self.limits).is_some() {
            limits::refund_hit(conn, key(kind, subject)).await?;
        }
        Ok(())
    }

    /// Where `subject` stands against the limit of `kind` now, without counting anything.
    pub async fn standing(
        &self,
        conn: &impl ConnectionTrait,
        kind: LimitKind,
        subject: &str,
    ) -> Result<Standing, AuthError> {
        let Some(limit) = kind.of(&self.limits) else {
            return Ok(Standing::default());
        };
        let now = self.clock.now().timestamp_millis();
        let Some(counter) = limits::find(conn, &key(kind, subject)).await? else {
            return Ok(Standing::default());
        };
        let window_ends_ms = counter.window_started_ms + window_ms(limit);
        if window_ends_ms <= now {
            return Ok(Standing::default());
        }
        let hits = counter.hits.max(0) as u32;
        Ok(Standing {
            hits,
            // `hit` refuses the event that takes the count past the limit: with the limit
            // reached, the next one is refused until the window ends.
            refused_until: (hits >= limit.count)
                .then(|| DateTime::<Utc>::from_timestamp_millis(window_ends_ms))
                .flatten(),
        })
    }

    /// Forgets what was counted for `subject` under `kind`: its limit starts afresh. Returns
    /// whether anything was counted.
    pub async fn clear(
        &self,
        conn: &impl ConnectionTrait,
        kind: LimitKind,
        subject: &str,
    ) -> Result<bool, AuthError> {
        Ok(limits::delete(conn, &key(kind, subject)).await? > 0)
    }

    /// The configured limit of `kind`, if it is on.
    pub fn limit(&self, kind: LimitKind) -> Option<Limit> {
        kind.of(&self.limits)
    }

    /// Deletes counters whose window has passed for every limit.
    pub async fn purge_expired(&self, conn: &impl ConnectionTrait) -> Result<u64, AuthError> {
        let longest = LimitKind::ALL
            .into_iter()
            .filter_map(|kind| kind.of(&self.limits))
            .map(window_ms)
            .max()
            .unwrap_or(0);
        let cutoff = self.clock.now().timestamp_millis() - longest;
        Ok(limits::purge_started_before(conn, cutoff).await?)
    }
}

fn key(kind: LimitKind, subject: &str) -> String {
    format!("{}:{subject}", kind.name())
}

fn window_ms(limit: Limit) -> i64 {
    delta(limit.window).num_milliseconds()
}
