//! Registration, email verification and code resends.

use std::sync::Arc;

use poem_openapi::{Enum, Object};
use sea_orm::DatabaseConnection;
use serde::Deserialize;

use crate::{
    clock::Clock,
    config::Config,
    domain::{
        Account, AuthError, ClientInfo, SignedIn,
        accounts::Accounts,
        audit::{Action, AuditTrail, Event},
        codes::{Codes, Purpose},
        email::Email,
        error::FieldErrors,
        fields::{parse_name, parse_phone},
        hashing::Verification,
        limits::{LimitKind, Limiter},
        parts::Parts,
        password_policy::Password,
        passwords::{Passwords, REGISTRATION_FIELDS},
        sessions::{Sessions, WayIn},
        usernames::{self, Username},
    },
    store::{self, profiles, users},
};

/// A new account. Unknown fields are ignored.
// No `Debug`: it carries the password.
#[derive(Default, Object, Deserialize)]
#[oai(example)]
#[serde(default)]
pub struct RegisterRequest {
    /// Trimmed and lowercased before use.
    pub email: String,
    /// At least `password_min_length` characters (see `/auth/settings`), at most 1024
    /// bytes, not entirely numeric, not a common password, not the email or its local part.
    pub password: String,
    /// The same password again.
    pub password2: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// International form, e.g. `+15551234567`.
    pub phone_number: Option<String>,
    /// One of `self_assignable_roles` (see `/auth/settings`); the first is the default.
    pub role: Option<String>,
    /// A public handle: 3–30 letters, digits, `_`, `.` or `-`, starting with a letter or
    /// digit; unique without regard to case. Needed when `AUTHGATE_USERNAMES=required`,
    /// refused when `off`.
    pub username: Option<String>,
}

/// The code mailed at registration, and, for an address registered more than once, the
/// password of the newest registration.
// No `Debug`: it carries the code and the password.
#[derive(Default, Object, Deserialize)]
#[oai(example)]
#[serde(default)]
pub struct VerifyRequest {
    // The fields of `CodeRequest`, written out rather than flattened: serde reports a
    // flattened field of the wrong type against the whole body, not against its name.
    pub email: String,
    /// The 6-digit code from the mail.
    pub otp: String,
    /// Needed only when the address was registered more than once before verification: the
    /// password of the newest registration.
    pub password: Option<String>,
}

/// Which code to send again.
#[derive(Debug, Clone, Copy, Enum, Deserialize, Default, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum CodeContext {
    /// The email verification code (the default).
    #[default]
    Registration,
    /// The password reset code.
    PasswordReset,
}

#[derive(Debug, Default, Object, Deserialize)]
#[oai(example)]
#[serde(default)]
pub struct ResendRequest {
    pub email: String,
    /// `registration` (default) or `password_reset`.
    pub context: Option<CodeContext>,
}

/// The unverified account and the code on its way.
#[derive(Debug, Object)]
pub struct Registered {
    pub user: Account,
    /// Always true: the verification code is on its way.
    pub otp_sent: bool,
    /// Seconds the code is valid.
    pub otp_expires_in: u64,
}

pub struct Registration {
    db: DatabaseConnection,
    config: Arc<Config>,
    clock: Arc<dyn Clock>,
    accounts: Arc<Accounts>,
    limiter: Arc<Limiter>,
    audit: Arc<AuditTrail>,
    codes: Arc<Codes>,
    passwords: Arc<Passwords>,
    sessions: Arc<Sessions>,
}

/// A registration that passed every check.
struct NewAccount {
    email: Email,
    password: Password,
    first_name: String,
    last_name: String,
    phone_number: Option<String>,
    role: String,
    username: Option<Username>,
}

impl Registration {
    pub fn new(parts: &Parts) -> Registration {
        Registration {
            db: parts.db.clone(),
            config: Arc::clone(&parts.config),
            clock: Arc::clone(&parts.clock),
            accounts: Arc::clone(&parts.accounts),
            limiter: Arc::clone(&parts.limiter),
            audit: Arc::clone(&parts.audit),
            codes: Arc::clone(&parts.codes),
            passwords: Arc::clone(&parts.passwords),
            sessions: Arc::clone(&parts.sessions),
        }
    }

    /// Creates an unverified account and mails a verification code. Registering again with
    /// the address of an unverified account replaces its password and names: an address
    /// nobody has proven cannot be squatted.
    pub async fn register(
        &self,
        request: RegisterRequest,
        client: &ClientInfo,
    ) -> Result<Registered, AuthError> {
        self.limiter
            .hit(&self.db, LimitKind::RegisterIp, &client.limit_subject())
            .await?;
        let new = self.check(request)?;
        // Cheap refusals first, so a taken address or name costs no password hash.
        let existing = users::find_by_email(&self.db, new.email.as_str()).await?;
        if existing.as_ref().is_some_and(|user| user.is_verified) {
            return Err(AuthError::EmailTaken);
        }
        if let Some(username) = &new.username {
            let holder = existing.as_ref().map(|user| user.id);
            self.accounts
                .ensure_username_free(&self.db, username, holder)
                .await?;
        }
        let registration = users::Registration {
            email: new.email.to_string(),
            password_hash: self.passwords.hash(&new.password).await?,
            first_name: new.first_name,
            last_name: new.last_name,
            phone_number: new.phone_number,
            role: new.role,
            username: new.username.map(String::from),
        };

        let new_username_key = registration.username.as_deref().map(str::to_lowercase);
        let txn = store::begin(&self.db).await?;
        let now = self.clock.now();
        let user = match users::lock_by_email(&txn, new.email.as_str()).await? {
            Some(user) if user.is_verified => return Err(AuthError::EmailTaken),
            Some(user) => {
                let registration = self.keeping_what_an_admin_gave(&user, registration);
                users::replace_registration(&txn, &user, registration, now).await?
            }
            None => match users::insert_unverified(&txn, registration, now).await {
                Ok(user) => {
                    profiles::insert_empty(&txn, user.id).await?;
                    user
                }
                // Another registration for this address, or this name, committed first.
                Err(err) if store::is_unique_violation(&err) => {
                    return Err(match &new_username_key {
                        Some(key) if users::find_by_username_key(&txn, key).await?.is_some() => {
                            AuthError::UsernameTaken
                        }
                        _ => self.codes.resend_refusal(),
                    });
                }
                Err(err) => return Err(err.into()),
            },
        };
        // Inside the cooldown this fails and the dropped transaction undoes the changes above:
        // a refused re-registration changes nothing.
        self.codes
            .issue(&txn, &new.email, Purpose::Registration, Some(user.id))
            .await?;
        self.audit
            .record(
                &txn,
                Event::new(Action::Registration, Some(user.id), client),
            )
            .await?;
        txn.commit().await?;
        Ok(Registered {
            user: self.accounts.reload(user.id).await?,
            otp_sent: true,
            otp_expires_in: self.codes.ttl_seconds(),
        })
    }

    /// Checks a verification code; a right one verifies the address and signs the user in.
    pub async fn verify(
        &self,
        request: &VerifyRequest,
        client: &ClientInfo,
    ) -> Result<SignedIn, AuthError> {
        self.limiter
            .hit(&self.db, LimitKind::OtpVerifyIp, &client.limit_subject())
            .await?;
        let (email, code) = super::parse_code(&request.email, &request.otp)?;
        // An address registered more than once proves the newest registration's password
        // too, checked before the transaction (hashing is slow) and confirmed unchanged in it.
        let known = users::find_by_email(&self.db, email.as_str()).await?;
        if known.as_ref().is_some_and(|user| user.is_verified) {
            return Err(AuthError::AlreadyVerified);
        }
        let proven_hash = match known.filter(|user| user.registrations > 1) {
            Some(user) => Some(self.newest_password_proven(&user, request).await?),
            None => None,
        };

        // The user row is locked before the code row, in the order registration takes them,
        // so the two can never deadlock on PostgreSQL.
        let txn = store::begin(&self.db).await?;
        let user = users::lock_by_email(&txn, email.as_str()).await?;
        // Answered before the code is looked at, whatever code was sent.
        if user.as_ref().is_some_and(|user| user.is_verified) {
            return Err(AuthError::AlreadyVerified);
        }
        // A wrong password counts as a wrong code; so does a registration that came in since
        // the password was checked.
        let password_holds = match (&proven_hash, &user) {
            (None, Some(user)) => user.registrations <= 1,
            (None, None) => true,
            (Some(proven), Some(user)) => proven.as_deref() == Some(user.password_hash.expose()),
            (Some(_), None) => false,
        };
        let offered = password_holds.then_some(code);
        // An unknown address goes through the same check (and attempt count) as a real one.
        let (txn, _) = self
            .codes
            .check_in(txn, &email, Purpose::Registration, offered, true)
            .await?;
        let user = user.ok_or(AuthError::InvalidOtp)?;
        if !user.is_active {
            return Err(AuthError::AccountDisabled);
        }
        let user = users::mark_verified_and_signed_in(&txn, user.id, self.clock.now()).await?;
        let profile = profiles::find(&txn, user.id).await?;
        self.sessions
            .sign_in(
                txn,
                (user, profile),
                client,
                Action::Verification,
                WayIn::PASSWORD,
            )
            .await
    }

    /// Checks the password sent to verify an address registered more than once: the stored
    /// hash when it matches, `None` when it does not (to be counted as a wrong code). No
    /// password at all is a field problem, not a guess.
    async fn newest_password_proven(
        &self,
        user: &users::Model,
        request: &VerifyRequest,
    ) -> Result<Option<String>, AuthError> {
        let sent = request.password.as_deref().unwrap_or_default();
        if sent.is_empty() {
            let mut errors = FieldErrors::new();
            errors.add(
                "password",
                "This address was registered more than once: enter the password of the newest registration.",
            );
            return Err(AuthError::Validation(errors));
        }
        let matched = match Password::for_login(sent.to_string()) {
            Some(password) => {
                self.passwords
                    .verify(&password, Some(user.password_hash.expose()))
                    .await?
                    != Verification::Mismatch
            }
            None => false,
        };
        Ok(matched.then(|| user.password_hash.expose().to_string()))
    }

    /// Mails a new code of the asked kind if the address has an account it can serve, and
    /// answers the same either way. Returns the code lifetime in seconds.
    pub async fn resend(&self, request: &ResendRequest) -> Result<u64, AuthError> {
        let email = Email::parse_field("email", &request.email)?;
        let purpose = match request.context.unwrap_or_default() {
            CodeContext::Registration => Purpose::Registration,
            CodeContext::PasswordReset => Purpose::PasswordReset,
        };
        self.codes.send(&email, purpose).await?;
        Ok(self.codes.ttl_seconds())
    }

    /// A registration over an unverified account an admin created (an invitation) replaces
    /// the password and names, as any re-registration does, but not the role or username the
    /// admin gave it: whoever registers has proven nothing yet, and must not turn an invited
    /// admin into a plain user (or take the name) before the invitee arrives.
    fn keeping_what_an_admin_gave(
        &self,
        user: &users::Model,
        mut registration: users::Registration,
    ) -> users::Registration {
        if !self.config.self_assignable_roles.contains(&user.role) {
            registration.role = user.role.clone();
        }
        if registration.username.is_none() {
            registration.username = user.username.clone();
        }
        registration
    }

    fn check(&self, request: RegisterRequest) -> Result<NewAccount, AuthError> {
        let mut errors = FieldErrors::new();
        let email = errors.check("email", Email::parse(&request.email));
        let password = self.passwords.check_new(
            &mut errors,
            &REGISTRATION_FIELDS,
            email.as_ref(),
            &request.password,
            &request.password2,
        );
        let name = |errors: &mut FieldErrors, field, value: &Option<String>| {
            errors.check(field, parse_name(value.as_deref().unwrap_or_default()))
        };
        let first_name = name(&mut errors, "first_name", &request.first_name);
        let last_name = name(&mut errors, "last_name", &request.last_name);
        let phone_number = errors.check(
            "phone_number",
            parse_phone(request.phone_number.as_deref().unwrap_or_default()),
        );
        let role = self.check_role(&mut errors, request.role.as_deref());
        let sent_username = request.username.as_deref().map(Some);
        let username =
            usernames::check_field(self.config.usernames, &mut errors, sent_username, true);
        let checked = || Some((email?, password?, first_name?, last_name?, phone_number?));
        let (email, password, first_name, last_name, phone_number) = errors.finish(checked())?;
        if !email.domain_is_allowed(&self.config.allowed_email_domains) {
            return Err(AuthError::EmailDomainNotAllowed);
        }
        Ok(NewAccount {
            email,
            password,
            first_name,
            last_name,
            phone_number,
            role: role?,
            username: username.flatten(),
        })
    }

    /// The chosen role, or the default. `admin` is refused outright (after the fields are
    /// valid); an unknown role is a field problem.
    fn check_role(
        &self,
        errors: &mut FieldErrors,
        role: Option<&str>,
    ) -> Result<String, AuthError> {
        let allowed = &self.config.self_assignable_roles;
        match role.map(str::trim) {
            None | Some("") => Ok(self.config.default_role().to_string()),
            Some("admin") => Err(AuthError::RoleNotAllowed),
            Some(role) if allowed.iter().any(|allowed| allowed == role) => Ok(role.to_string()),
            Some(_) => {
                errors.add("role", format!("Choose one of: {}.", allowed.join(", ")));
                Err(AuthError::RoleNotAllowed)
            }
        }
    }
}
