//! The audit trail as admins read it: every event, filtered, newest first, a page at a time.

use chrono::{DateTime, SecondsFormat, Utc};
use poem_openapi::Object;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::{
    cursor::{self, CursorError},
    listing,
};
use crate::{
    domain::{
        AuthError,
        accounts::{Metadata, parse_metadata},
        error::FieldErrors,
        parts::Parts,
    },
    store::audit::{self, EventFilter},
};

/// The listing a cursor of this trail is for.
const SCOPE: &str = "audit";
/// Longer event names and addresses match nothing that was ever recorded.
const MAX_FILTER_CHARS: usize = 64;

/// The query of `GET /admin/audit`, as sent: every value is checked here, so a bad one is
/// refused under its own name.
#[derive(Debug, Default, Clone)]
pub struct AuditQuery {
    pub user_id: Option<String>,
    pub actor_id: Option<String>,
    pub event: Option<String>,
    pub ip: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// One event of the trail.
#[derive(Debug, Object)]
#[oai(rename = "AuditEvent")]
pub struct AuditEventView {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    /// What happened: `login`, `login_failed`, `account_updated`, `session_revocation`, …
    pub event: String,
    /// The account it concerns, when known.
    #[oai(nullable)]
    pub user_id: Option<Uuid>,
    /// Who did it when not the account itself: an admin.
    #[oai(nullable)]
    pub actor_id: Option<Uuid>,
    #[oai(nullable)]
    pub ip: Option<String>,
    #[oai(nullable)]
    pub user_agent: Option<String>,
    /// What else matters about it (never a secret).
    pub details: Metadata,
    /// For edits, `{"<field>": {"before": …, "after": …}}`; `POST /admin/audit/{id}/revert`
    /// writes the `before` values back.
    #[oai(nullable)]
    pub changes: Option<Metadata>,
}

/// One page of events, newest first.
#[derive(Debug, Object)]
pub struct AuditPage {
    pub events: Vec<AuditEventView>,
    /// Pass as `cursor` for the next (older) page; `null` on the last one.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

pub struct AdminAudit {
    db: DatabaseConnection,
}

impl AdminAudit {
    pub fn new(parts: &Parts) -> AdminAudit {
        AdminAudit {
            db: parts.db.clone(),
        }
    }

    /// One page of the events that match the query, newest first.
    pub async fn list(&self, query: &AuditQuery) -> Result<AuditPage, AuthError> {
        let mut errors = FieldErrors::new();
        let filter = EventFilter {
            user_id: listing::uuid(&mut errors, "user_id", query.user_id.as_deref()),
            actor_id: listing::uuid(&mut errors, "actor_id", query.actor_id.as_deref()),
            action: listing::text(
                &mut errors,
                "event",
                query.event.as_deref(),
                MAX_FILTER_CHARS,
            ),
            ip: listing::text(&mut errors, "ip", query.ip.as_deref(), MAX_FILTER_CHARS),
            since: listing::time(&mut errors, "since", query.since.as_deref()),
            until: listing::time(&mut errors, "until", query.until.as_deref()),
        };
        let limit = listing::limit(&mut errors, query.limit.as_deref());
        let after =
            listing::cursor(&mut errors, SCOPE, query.cursor.as_deref()).and_then(|cursor| {
                let at = cursor
                    .key
                    .as_deref()
                    .and_then(|key| DateTime::parse_from_rfc3339(key).ok());
                if at.is_none() {
                    errors.add("cursor", CursorError::Malformed.message());
                }
                at.map(|at| (at.to_utc(), cursor.id))
            });
        errors.into_result()?;

        let mut rows = audit::page(&self.db, &filter, after, limit + 1).await?;
        let more = rows.len() as u64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_cursor = rows.last().filter(|_| more).map(|event| {
            let at = event
                .occurred_at
                .to_rfc3339_opts(SecondsFormat::AutoSi, true);
            cursor::encode(SCOPE, Some(&at), event.id)
        });
        Ok(AuditPage {
            events: rows.into_iter().map(view).collect(),
            next_cursor,
        })
    }
}

fn view(event: audit::Model) -> AuditEventView {
    AuditEventView {
        id: event.id,
        at: event.occurred_at,
        event: event.action,
        user_id: event.user_id,
        actor_id: event.actor_id,
        ip: event.ip,
        user_agent: event.user_agent,
        details: parse_metadata(&event.details),
        changes: event.changes.as_deref().map(parse_metadata),
    }
}
