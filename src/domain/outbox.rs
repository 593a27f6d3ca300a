//! The mail outbox: every mail is stored in the transaction of the change that causes it and
//! delivered later by a worker in each instance, so no request waits for the mail server, a
//! mail outage neither fails a request nor tells anyone whether an address has an account, and
//! nothing is lost while the server is down.
//!
//! Delivery: a worker claims a due mail with a compare-and-set lease, so however many
//! instances run, one sends it; it is deleted once the server took it. Should an instance die
//! between the two, the lease runs out and the mail goes again: at least once, and exactly
//! once in every run that does not crash mid-send. A code mail whose code was replaced, used
//! or has expired is dropped unsent.

use std::{sync::Arc, time::Duration};

use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::AuthError;
use crate::{
    clock::{Clock, delta},
    mail::{Mail, Mailer},
    store::{codes, outbox},
    vault::Vault,
};

/// How long a worker owns a claimed mail: well past the SMTP timeout.
const LEASE: Duration = Duration::from_secs(60);
/// Mails claimed per pass.
const BATCH: u64 = 20;
/// Waits between tries grow from one second to this, so mail waiting for a server that came
/// back goes out within a minute.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A notice the server keeps refusing is given up after this long.
const GIVE_UP_AFTER: Duration = Duration::from_secs(2 * 86_400);

/// The part of a mail that may carry a secret, sealed at rest.
#[derive(Serialize, Deserialize)]
struct Body {
    text: String,
    html: String,
}

/// A mail to send, and what it belongs to.
pub struct Letter<'a> {
    pub to: &'a str,
    pub mail: Mail,
    /// The account it concerns, if any: its mail goes when the account is purged.
    pub user_id: Option<Uuid>,
    /// For code mails: the code row and the stored hash of the code the mail carries.
    pub code: Option<(Uuid, String)>,
}

pub struct Outbox {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    vault: Arc<Vault>,
    mailer: Arc<Mailer>,
    wake: tokio::sync::Notify,
}

impl Outbox {
    pub fn new(
        db: DatabaseConnection,
        clock: Arc<dyn Clock>,
        vault: Arc<Vault>,
        mailer: Arc<Mailer>,
    ) -> Outbox {
        Outbox {
            db,
            clock,
            vault,
            mailer,
            wake: tokio::sync::Notify::new(),
        }
    }

    /// Stores a mail through `conn`: inside a transaction, it goes out only if that commits.
    pub async fn enqueue(
        &self,
        conn: &impl ConnectionTrait,
        letter: Letter<'_>,
    ) -> Result<(), AuthError> {
        let id = Uuid::new_v4();
        let Mail {
            kind,
            subject,
            text,
            html,
        } = letter.mail;
        let body = serde_json::to_string(&Body { text, html })
            .map_err(|err| AuthError::internal_from("a mail could not be stored", err))?;
        let body = self
            .vault
            .seal(&context(id), &body)
            .map_err(|err| AuthError::internal_from("a mail could not be sealed", err))?;
        let row = outbox::NewMail {
            id,
            recipient: letter.to.to_string(),
            kind: kind.to_string(),
            subject,
            body,
            user_id: letter.user_id,
            code: letter.code,
        };
        outbox::insert(conn, row, self.clock.now()).await?;
        // The worker may look before this transaction commits; it looks again shortly after.
        self.wake.notify_one();
        Ok(())
    }

    /// Resolves when a mail was stored here (true) or `timeout` passed (false).
    pub async fn wait_for_mail(&self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.wake.notified())
            .await
            .is_ok()
    }

    /// One delivery pass: claims the mail due now and sends it. Returns how many mails were
    /// handed to the mail server.
    pub async fn deliver_due(&self) -> Result<usize, AuthError> {
        let now = self.clock.now();
        let mut sent = 0;
        for row in outbox::due(&self.db, now, BATCH).await? {
            if outbox::claim(&self.db, row.id, now, now + delta(LEASE)).await? {
                sent += usize::from(self.deliver(row).await?);
            }
        }
        Ok(sent)
    }

    /// Sends one claimed mail, or drops it when its code died. True when it was sent.
    async fn deliver(&self, row: outbox::Model) -> Result<bool, AuthError> {
        let now = self.clock.now();
        if let (Some(code_id), Some(code_hash)) = (row.code_id, &row.code_hash)
            && !codes::is_live(&self.db, code_id, code_hash, now).await?
        {
            outbox::delete(&self.db, row.id).await?;
            return Ok(false);
        }
        let mail = match self.open(&row) {
            Ok(mail) => mail,
            Err(err) => {
                tracing::error!(error = %err, mail_id = %row.id, "a stored mail cannot be read; dropped");
                outbox::delete(&self.db, row.id).await?;
                return Ok(false);
            }
        };
        match self.mailer.send(&row.recipient, mail).await {
            Ok(()) => {
                outbox::delete(&self.db, row.id).await?;
                Ok(true)
            }
            Err(err) if now - row.created_at > delta(GIVE_UP_AFTER) => {
                tracing::error!(error = %err, mail_id = %row.id, kind = row.kind, "the mail server refused a mail for two days; given up");
                outbox::delete(&self.db, row.id).await?;
                Ok(false)
            }
            Err(err) => {
                let wait = backoff(row.attempts);
                tracing::warn!(error = %err, mail_id = %row.id, kind = row.kind, retry_in_seconds = wait.as_secs(), "the mail server refused a mail; it will be retried");
                outbox::retry_at(&self.db, row.id, now + delta(wait)).await?;
                Ok(false)
            }
        }
    }

    fn open(&self, row: &outbox::Model) -> Result<Mail, AuthError> {
        let body = self
            .vault
            .open(&context(row.id), &row.body)
            .map_err(|err| AuthError::internal_from("a stored mail cannot be opened", err))?;
        let Body { text, html } = serde_json::from_str(&body)
            .map_err(|err| AuthError::internal_from("a stored mail is malformed", err))?;
        Ok(Mail {
            kind: kind_name(&row.kind),
            subject: row.subject.clone(),
            text,
            html,
        })
    }
}

/// The sealing context: a body copied into another row does not open.
pub fn context(id: Uuid) -> String {
    format!("outbox:{id}")
}

/// 1 s, 2 s, 4 s, … up to [`MAX_BACKOFF`].
fn backoff(attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.clamp(0, 16)).unwrap_or(16);
    Duration::from_secs(2u64.pow(exponent)).min(MAX_BACKOFF)
}

/// The metric label of a stored kind: only known names, so a row cannot invent series.
fn kind_name(stored: &str) -> &'static str {
    crate::mail::templates::KINDS
        .iter()
        .find(|kind| **kind == stored)
        .copied()
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(5), MAX_BACKOFF);
        assert_eq!(backoff(i32::MAX), MAX_BACKOFF);
    }
}
