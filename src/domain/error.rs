//! What can go wrong in the domain, in the domain's words. The API layer maps each variant to
//! the contract's status and error code in one place (`api::error`).

use std::collections::BTreeMap;

use sea_orm::DbErr;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the request failed validation")]
    Validation(FieldErrors),
    #[error("this email domain may not register")]
    EmailDomainNotAllowed,
    #[error("this role cannot be chosen at registration")]
    RoleNotAllowed,
    #[error("a verified account already uses this email")]
    EmailTaken,
    #[error("the code is wrong, expired or already used")]
    InvalidOtp,
    #[error("too many wrong guesses; the code is burned")]
    OtpLocked,
    #[error("the account is already verified")]
    AlreadyVerified,
    #[error("a code was mailed to this address moments ago")]
    ResendTooSoon { retry_after_seconds: u64 },
    #[error("over the {limit} limit")]
    RateLimited {
        limit: &'static str,
        retry_after_seconds: u64,
    },
    #[error("wrong email or password")]
    InvalidCredentials,
    #[error("the email address is not verified yet")]
    EmailNotVerified,
    #[error("the account is disabled")]
    AccountDisabled,
    #[error("the account is scheduled for deletion")]
    AccountPendingDeletion {
        deletion_scheduled_for: chrono::DateTime<chrono::Utc>,
    },
    #[error("the account is not scheduled for deletion")]
    NotPendingDeletion,
    #[error("another account holds this username")]
    UsernameTaken,
    #[error("the upload is not an acceptable picture")]
    InvalidImage,
    #[error("the caller's role may not do this")]
    Forbidden,
    #[error("the change would leave no active admin")]
    LastAdmin,
    #[error("an admin may not do this to their own account")]
    CannotTargetSelf,
    #[error("the event changed no fields")]
    NotRevertible,
    #[error("the fields changed since the event")]
    Conflict(FieldErrors),
    #[error("a second factor is needed")]
    MfaRequired {
        /// The sign-in waiting for its second factor, when there is one.
        challenge: Option<MfaChallenge>,
        methods: Vec<String>,
    },
    #[error("the sign-in attempt is unknown, expired or used up")]
    InvalidMfaToken,
    #[error("the second-factor code is wrong")]
    InvalidMfaCode,
    #[error("the second factor is already on")]
    AlreadyEnabled,
    #[error("no second-factor setup is waiting")]
    NoPendingSetup,
    #[error("the refresh token is unknown, expired or revoked")]
    InvalidRefreshToken,
    #[error("a rotated refresh token was presented again")]
    RefreshTokenReused,
    #[error("authentication is required")]
    Unauthorized,
    #[error("not found")]
    NotFound,
    #[error("too many password hashes are waiting")]
    Overloaded { retry_after_seconds: u64 },
    #[error("the database cannot be reached")]
    Unavailable(#[source] DbErr),
    /// A fault of the service's own. `context` says what was being done; `source`, when
    /// there is one, keeps the chain of causes for the log.
    #[error("{context}")]
    Internal {
        context: &'static str,
        #[source]
        source: Option<BoxError>,
    },
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// "outer: cause: root cause", for one log line or start-up message.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A sign-in waiting for its second factor: the single-use token and how long it lives.
#[derive(Clone)]
pub struct MfaChallenge {
    pub token: String,
    pub expires_in: u64,
}

/// Redacting: the token completes a sign-in.
impl std::fmt::Debug for MfaChallenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaChallenge")
            .field("token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

impl AuthError {
    /// A fault without a cause of its own: an invariant that did not hold.
    pub fn internal(context: &'static str) -> AuthError {
        AuthError::Internal {
            context,
            source: None,
        }
    }

    /// A fault caused by `source`, for example a library call that failed.
    pub fn internal_from(context: &'static str, source: impl Into<BoxError>) -> AuthError {
        AuthError::Internal {
            context,
            source: Some(source.into()),
        }
    }
}

impl From<DbErr> for AuthError {
    fn from(err: DbErr) -> Self {
        if crate::store::is_unreachable(&err) {
            AuthError::Unavailable(err)
        } else {
            AuthError::internal_from("a database statement failed", err)
        }
    }
}

/// Problems with individual fields of a request, reported all at once.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors(BTreeMap<String, Vec<String>>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: &str, problem: impl Into<String>) {
        self.0
            .entry(field.to_string())
            .or_default()
            .push(problem.into());
    }

    /// Records the problem of a parse step and hands back its value, so one pass can gather
    /// every problem of a request.
    pub fn check<T>(&mut self, field: &str, result: Result<T, Vec<String>>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(problems) => {
                for problem in problems {
                    self.add(field, problem);
                }
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_map(self) -> BTreeMap<String, Vec<String>> {
        self.0
    }

    /// `Ok(())` when nothing was recorded.
    pub fn into_result(self) -> Result<(), AuthError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(AuthError::Validation(self))
        }
    }

    /// The checked values when every check passed, else the problems. [`FieldErrors::check`]
    /// records a problem whenever it yields `None`, so a missing value always comes with one.
    pub fn finish<T>(self, values: Option<T>) -> Result<T, AuthError> {
        match values {
            Some(values) if self.is_empty() => Ok(values),
            _ => Err(AuthError::Validation(self)),
        }
    }
}
