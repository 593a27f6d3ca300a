//! The numbers on an admin console's front page.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use chrono::{NaiveDate, TimeDelta};
use poem_openapi::Object;
use sea_orm::DatabaseConnection;

use crate::{
    clock::{Clock, delta},
    config::Config,
    domain::{AuthError, audit::Action, parts::Parts},
    store::{
        audit, sessions,
        users::{self, UserFilter},
    },
};

/// Days in `signups_by_day`, today included.
const SIGNUP_DAYS: i64 = 30;
/// Seen this recently counts as online.
const ONLINE_WINDOW: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Object)]
pub struct Stats {
    pub users: UserStats,
    /// Accounts created on each of the last 30 days (UTC), oldest first, today last; every
    /// day is present, with 0 when nobody signed up.
    pub signups_by_day: Vec<DaySignups>,
    /// Sign-ins in the last 24 hours.
    pub logins_24h: LoginCounts,
    /// Sessions that can still be refreshed.
    pub active_sessions: u64,
    /// Accounts that signed in or refreshed a token in the last 5 minutes.
    pub online_now: u64,
}

#[derive(Debug, Object)]
pub struct UserStats {
    pub total: u64,
    pub verified: u64,
    pub disabled: u64,
    pub pending_deletion: u64,
    /// Accounts with a second factor turned on (§11).
    pub mfa_enabled: u64,
    /// Accounts per role: every role of `AUTHGATE_ROLES`, and any other role still held.
    pub by_role: BTreeMap<String, u64>,
}

#[derive(Debug, Object)]
pub struct DaySignups {
    pub date: NaiveDate,
    pub count: u64,
}

#[derive(Debug, Object)]
pub struct LoginCounts {
    pub succeeded: u64,
    pub failed: u64,
}

pub struct AdminStats {
    db: DatabaseConnection,
    config: Arc<Config>,
    clock: Arc<dyn Clock>,
}

impl AdminStats {
    pub fn new(parts: &Parts) -> AdminStats {
        AdminStats {
            db: parts.db.clone(),
            config: Arc::clone(&parts.config),
            clock: Arc::clone(&parts.clock),
        }
    }

    pub async fn compute(&self) -> Result<Stats, AuthError> {
        let db = &self.db;
        let now = self.clock.now();
        let count = |filter: UserFilter| async move { users::count_matching(db, &filter).await };
        let mut by_role: BTreeMap<String, u64> = self
            .config
            .roles
            .iter()
            .map(|role| (role.clone(), 0))
            .collect();
        by_role.extend(users::count_by_role(db).await?);
        let users = UserStats {
            total: count(UserFilter::default()).await?,
            verified: count(UserFilter {
                verified: Some(true),
                ..UserFilter::default()
            })
            .await?,
            disabled: count(UserFilter {
                status: Some(users::DISABLED),
                ..UserFilter::default()
            })
            .await?,
            pending_deletion: count(UserFilter {
                status: Some(users::PENDING_DELETION),
                ..UserFilter::default()
            })
            .await?,
            mfa_enabled: count(UserFilter {
                mfa: Some(true),
                ..UserFilter::default()
            })
            .await?,
            by_role,
        };

        let today = now.date_naive();
        let days: Vec<NaiveDate> = (0..SIGNUP_DAYS)
            .rev()
            .map(|ago| today - TimeDelta::days(ago))
            .collect();
        let bounds: Vec<_> = days
            .iter()
            .chain([&(today + TimeDelta::days(1))])
            .map(|day| day.and_time(chrono::NaiveTime::MIN).and_utc())
            .collect();
        let signups = users::count_created_between(db, &bounds).await?;
        let signups_by_day = days
            .into_iter()
            .zip(signups)
            .map(|(date, count)| DaySignups { date, count })
            .collect();

        let day_ago = now - TimeDelta::hours(24);
        let logins_24h = LoginCounts {
            succeeded: audit::count_since(db, Action::Login.as_str(), day_ago).await?,
            failed: audit::count_since(db, Action::LoginFailed.as_str(), day_ago).await?,
        };
        // A session unused for a refresh lifetime holds no refresh token that still works.
        let used_since = now - delta(self.config.refresh_ttl);
        Ok(Stats {
            users,
            signups_by_day,
            logins_24h,
            active_sessions: sessions::count_live(db, now, used_since).await?,
            online_now: users::count_seen_since(db, now - delta(ONLINE_WINDOW)).await?,
        })
    }
}
