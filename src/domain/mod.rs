//! The domain: accounts, codes, passwords and sessions. Nothing here knows about HTTP.
//!
//! [`AuthService`] is split by flow over several files: `registration`, `sessions`
//! (sign-in, refresh, sign-out), `password_reset` and `profile`. Every state change of a
//! request happens in one transaction; mail goes out only after it commits.

pub mod audit;
pub mod codes;
pub mod email;
pub mod error;
pub mod hashing;
pub mod limits;
pub mod password;
pub mod password_reset;
pub mod pictures;
pub mod profile;
pub mod registration;
pub mod sessions;

use std::{net::IpAddr, sync::Arc};

use sea_orm::{DatabaseConnection, DatabaseTransaction};
use uuid::Uuid;

use crate::{
    clock::Clock,
    config::Config,
    mail::{Mail, Mailer},
    store::{profiles, users},
    tokens::AccessTokens,
};
use codes::Issued;
use error::{AuthError, FieldErrors};
use hashing::HashingPool;

pub struct AuthService {
    pub(crate) db: DatabaseConnection,
    pub(crate) config: Arc<Config>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) hashing: Arc<HashingPool>,
    pub(crate) mailer: Arc<Mailer>,
    pub(crate) access_tokens: Arc<AccessTokens>,
}

/// Who is calling, as far as the network tells: recorded on sessions and in the audit trail,
/// and the subject of per-IP limits.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// What per-IP limits count: the address, but for IPv6 its /64, since one subscriber
    /// usually holds a whole /64 and could rotate through it. Requests whose address is
    /// unknown share one limit.
    pub fn limit_subject(&self) -> String {
        match self.ip.as_deref().map(str::parse::<IpAddr>) {
            Some(Ok(IpAddr::V6(ip))) => {
                let [a, b, c, d, ..] = ip.segments();
                format!("{a:x}:{b:x}:{c:x}:{d:x}::/64")
            }
            Some(Ok(ip)) => ip.to_string(),
            _ => "unknown".into(),
        }
    }
}

/// A user with their profile: what the API shows as "the user object".
#[derive(Debug, Clone)]
pub struct Account {
    pub user: users::Model,
    pub profile: profiles::Model,
}

impl Account {
    /// True when first and last name are both set.
    pub fn profile_complete(&self) -> bool {
        !self.user.first_name.trim().is_empty() && !self.user.last_name.trim().is_empty()
    }
}

/// What a client receives on sign-in and refresh.
#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access: String,
    pub refresh: String,
    pub expires_in: u64,
    pub refresh_expires_in: u64,
}

#[derive(Debug, Clone)]
pub struct SignedIn {
    pub account: Account,
    pub tokens: TokenPair,
}

impl AuthService {
    pub fn new(
        db: DatabaseConnection,
        config: Arc<Config>,
        clock: Arc<dyn Clock>,
        hashing: Arc<HashingPool>,
        mailer: Arc<Mailer>,
        access_tokens: Arc<AccessTokens>,
    ) -> Self {
        Self {
            db,
            config,
            clock,
            hashing,
            mailer,
            access_tokens,
        }
    }

    async fn begin(&self) -> Result<DatabaseTransaction, AuthError> {
        Ok(crate::store::begin(&self.db).await?)
    }

    /// Checks a new password and its confirmation, recording problems under `new_password`
    /// and `confirm_password`: the same rules wherever a password is replaced.
    fn check_new_password(
        &self,
        errors: &mut FieldErrors,
        email: &email::Email,
        new_password: &str,
        confirmation: &str,
    ) -> Option<password::Password> {
        let checked = password::Password::new_checked(
            new_password.to_string(),
            self.config.password_min_length,
            email,
        );
        let password = errors.check("new_password", checked);
        password::check_confirmation(errors, "confirm_password", new_password, confirmation);
        password
    }

    /// Records that sessions of `user_id` were ended, in the transaction that ended them.
    async fn audit_revocation(
        &self,
        txn: &DatabaseTransaction,
        user_id: Uuid,
        client: &ClientInfo,
        details: serde_json::Value,
    ) -> Result<(), AuthError> {
        self.audit(
            txn,
            audit::Action::SessionRevocation,
            audit::Outcome::Success,
            Some(user_id),
            client,
            details,
        )
        .await
    }

    /// Tells the owner their password changed. The change stands whatever happens to the
    /// notice, so a failure is only logged.
    async fn notify_password_changed(&self, email: &str) {
        if let Err(err) = self
            .mailer
            .send(email, crate::mail::templates::password_changed())
            .await
        {
            tracing::error!(error = %err, "the password-changed notice could not be mailed");
        }
    }

    /// Mails a freshly issued code. On failure the code stays valid, the cooldown is lifted
    /// and the caller learns that mail is unavailable.
    async fn mail_code(
        &self,
        email: &email::Email,
        issued: &Issued,
        template: fn(&str, std::time::Duration) -> Mail,
    ) -> Result<(), AuthError> {
        let Some(code) = &issued.code else {
            // Nothing to mail: take as long as a mail would, so timing tells nothing either.
            tokio::time::sleep(self.mailer.typical_send_time()).await;
            return Ok(());
        };
        let mail = template(code.expose(), self.config.otp_ttl);
        if let Err(err) = self.mailer.send(email.as_str(), mail).await {
            tracing::error!(error = %err, "a code could not be mailed");
            self.forget_send(issued).await;
            self.refund(limits::LimitKind::MailAddress, email.as_str())
                .await?;
            return Err(AuthError::MailUnavailable);
        }
        Ok(())
    }
}
