//! Signing in with email and password, under the login limits and the account lockout.

use std::sync::Arc;

use poem_openapi::Object;
use sea_orm::{DatabaseConnection, DatabaseTransaction};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::{
    clock::Clock,
    domain::{
        AuthError, ClientInfo, SignedIn,
        accounts::AccountStatus,
        audit::{Action, AuditTrail, Event},
        email::Email,
        error::FieldErrors,
        hashing::Verification,
        limits::{LimitKind, Limiter},
        outbox::{Letter, Outbox},
        parts::Parts,
        password_policy::Password,
        passwords::Passwords,
        second_factors::{ChallengePurpose, Method, PassedChallenge, SecondFactors},
        sessions::{Amr, Sessions, WayIn},
        trusted_devices::TrustedDevices,
        usernames::Username,
    },
    mail::templates,
    store::{self, profiles, users},
};

// No `Debug`: it carries the password.
#[derive(Default, Object, Deserialize)]
#[oai(example)]
#[serde(default)]
pub struct LoginRequest {
    /// The account's address or username. Takes the place of `email`.
    #[oai(skip_serializing_if_is_empty)]
    pub login: String,
    /// The account's address; `login` does the same and also takes a username.
    #[oai(skip_serializing_if_is_empty)]
    pub email: String,
    pub password: String,
    /// The `device_token` a second-factor sign-in with `remember_device` returned: on that
    /// device, the password alone signs in.
    #[oai(skip_serializing_if_is_none)]
    pub device_token: Option<String>,
}

/// The second step of a sign-in that answered 403 `mfa_required`.
// No `Debug`: it carries the token and the code.
#[derive(Default, Object, Deserialize)]
#[oai(example)]
#[serde(default)]
pub struct MfaVerifyRequest {
    /// From the 403 `mfa_required` answer; single use.
    pub mfa_token: String,
    /// `totp`, `email` or `recovery_code`.
    pub method: Option<Method>,
    /// The 6-digit code (app or mail), or a recovery code `xxxxx-xxxxx`.
    pub code: String,
    /// Trust this device: the answer carries a `device_token` that, sent with later sign-ins,
    /// skips the second factor here for `AUTHGATE_TRUSTED_DEVICE_TTL`.
    pub remember_device: bool,
    /// A name for the trusted device (`Jane's laptop`).
    pub device_name: Option<String>,
}

/// A completed second-factor sign-in, and the device token when the device is now trusted.
pub struct VerifiedSignIn {
    pub signed_in: SignedIn,
    pub device_token: Option<String>,
}

/// An account whose password was just proven, and its rehashed password when the stored
/// hash used outdated parameters.
struct Proven {
    user: users::Model,
    upgraded_hash: Option<String>,
}

pub struct SignIn {
    db: DatabaseConnection,
    second_factors: Arc<SecondFactors>,
    devices: Arc<TrustedDevices>,
    clock: Arc<dyn Clock>,
    limiter: Arc<Limiter>,
    audit: Arc<AuditTrail>,
    passwords: Arc<Passwords>,
    sessions: Arc<Sessions>,
    outbox: Arc<Outbox>,
}

impl SignIn {
    pub fn new(parts: &Parts) -> SignIn {
        SignIn {
            db: parts.db.clone(),
            second_factors: Arc::clone(&parts.second_factors),
            devices: Arc::clone(&parts.devices),
            clock: Arc::clone(&parts.clock),
            limiter: Arc::clone(&parts.limiter),
            audit: Arc::clone(&parts.audit),
            passwords: Arc::clone(&parts.passwords),
            sessions: Arc::clone(&parts.sessions),
            outbox: Arc::clone(&parts.outbox),
        }
    }

    /// Checks the credentials and opens a session. Unknown addresses and names cost a full
    /// password check too, so neither the answer nor its timing tells whether an account
    /// exists. An account with a second factor answers `MfaRequired` with a waiting sign-in,
    /// unless the request carries a device token the account trusts.
    pub async fn login(
        &self,
        request: LoginRequest,
        client: &ClientInfo,
    ) -> Result<SignedIn, AuthError> {
        let device_token = request.device_token.clone();
        let proven = self.authenticate(request, client).await?;
        self.ensure_may_sign_in(&proven.user)?;
        let way_in = match self
            .trusted_device(&proven.user, device_token.as_deref())
            .await?
        {
            Some(way_in) => way_in,
            None if self.has_second_factor(&proven.user) => {
                return Err(self
                    .wait_for_second_factor(&proven.user, ChallengePurpose::Login)
                    .await?);
            }
            None => WayIn::PASSWORD,
        };
        let (txn, profile) = self.begin_sign_in(&proven).await?;
        let user =
            users::record_login(&txn, proven.user.id, proven.upgraded_hash, self.clock.now())
                .await?;
        self.sessions
            .sign_in(txn, (user, profile), client, Action::Login, way_in)
            .await
    }

    /// Signs in to an account pending deletion and keeps it: the deletion is cancelled and a
    /// mail confirms it. Only after a correct password does a live account get
    /// `NotPendingDeletion`. Restoring never skips the second factor: an account with one
    /// answers `MfaRequired`, and the verification completes the restore.
    pub async fn restore(
        &self,
        request: LoginRequest,
        client: &ClientInfo,
    ) -> Result<SignedIn, AuthError> {
        let proven = self.authenticate(request, client).await?;
        self.ensure_restorable(&proven.user)?;
        if self.has_second_factor(&proven.user) {
            return Err(self
                .wait_for_second_factor(&proven.user, ChallengePurpose::Restore)
                .await?);
        }
        let (txn, profile) = self.begin_sign_in(&proven).await?;
        let user = self
            .keep(&txn, &proven.user, proven.upgraded_hash, client)
            .await?;
        self.sessions
            .sign_in(txn, (user, profile), client, Action::Login, WayIn::PASSWORD)
            .await
    }

    /// Completes a sign-in (or a restore) that waits for its second factor. Wrong codes count
    /// against the account's login allowance like wrong passwords, so a code guesser is
    /// locked out like a password guesser; five burn the waiting sign-in.
    pub async fn verify_second_factor(
        &self,
        request: MfaVerifyRequest,
        client: &ClientInfo,
    ) -> Result<VerifiedSignIn, AuthError> {
        let mut errors = FieldErrors::new();
        if request.mfa_token.is_empty() {
            errors.add("mfa_token", "This field is required.");
        }
        if request.code.trim().is_empty() {
            errors.add("code", "This field is required.");
        }
        if request.method.is_none() {
            errors.add("method", "Choose totp, email or recovery_code.");
        }
        let method = errors.finish(request.method)?;
        // The whole second step is one transaction: the code and the token used up, the
        // session opened, committed at once (a spent token always has its session).
        let txn = store::begin(&self.db).await?;
        let passed = match self
            .second_factors
            .pass_challenge(&txn, &request.mfa_token, method, &request.code, client)
            .await
        {
            Ok(passed) => passed,
            Err(err) => {
                // What a wrong code counted stays counted.
                txn.commit().await?;
                return Err(err);
            }
        };
        let PassedChallenge {
            user,
            profile,
            purpose,
        } = passed;
        let user = match purpose {
            ChallengePurpose::Restore => self.keep(&txn, &user, None, client).await?,
            ChallengePurpose::Login => {
                self.ensure_may_sign_in(&user)?;
                users::record_login(&txn, user.id, None, self.clock.now()).await?
            }
        };
        let device = match request.remember_device {
            true => Some(
                self.devices
                    .trust(&txn, user.id, request.device_name.as_deref(), client)
                    .await?,
            ),
            false => None,
        };
        let way_in = WayIn {
            amr: Amr::PasswordAndCode,
            trusted_device: device.as_ref().map(|(id, _)| *id),
        };
        let signed_in = self
            .sessions
            .sign_in(txn, (user, profile), client, Action::Login, way_in)
            .await?;
        Ok(VerifiedSignIn {
            signed_in,
            device_token: device.map(|(_, token)| token),
        })
    }

    /// Mails a sign-in code for a waiting sign-in. Returns the code's lifetime in seconds.
    pub async fn mail_second_factor(&self, mfa_token: &str) -> Result<u64, AuthError> {
        let user = self.second_factors.waiting_user(mfa_token).await?;
        if !SecondFactors::sign_in_methods(&user)
            .iter()
            .any(|method| method == "email")
        {
            let mut errors = FieldErrors::new();
            errors.add(
                "method",
                "This account does not receive sign-in codes by mail.",
            );
            return Err(AuthError::Validation(errors));
        }
        self.second_factors.mail_code(&user).await
    }

    /// The states in which a right password still signs nobody in.
    fn ensure_may_sign_in(&self, user: &users::Model) -> Result<(), AuthError> {
        match AccountStatus::parse(&user.status) {
            AccountStatus::Active => {}
            AccountStatus::Disabled => return Err(AuthError::AccountDisabled),
            AccountStatus::PendingDeletion => {
                return Err(AuthError::AccountPendingDeletion {
                    deletion_scheduled_for: user
                        .deletion_scheduled_for
                        .unwrap_or_else(|| self.clock.now()),
                });
            }
        }
        if !user.is_verified {
            return Err(AuthError::EmailNotVerified);
        }
        Ok(())
    }

    fn has_second_factor(&self, user: &users::Model) -> bool {
        !SecondFactors::sign_in_methods(user).is_empty()
    }

    /// How a device token signs in, if the account trusts the device.
    async fn trusted_device(
        &self,
        user: &users::Model,
        token: Option<&str>,
    ) -> Result<Option<WayIn>, AuthError> {
        let Some(token) = token.filter(|token| !token.is_empty()) else {
            return Ok(None);
        };
        if !self.has_second_factor(user) {
            return Ok(None);
        }
        Ok(self
            .devices
            .recognise(user.id, token)
            .await?
            .map(|device| WayIn {
                amr: Amr::PasswordAndTrustedDevice,
                trusted_device: Some(device),
            }))
    }

    /// The answer of a sign-in that must wait for its second factor.
    async fn wait_for_second_factor(
        &self,
        user: &users::Model,
        purpose: ChallengePurpose,
    ) -> Result<AuthError, AuthError> {
        let challenge = self.second_factors.open_challenge(user, purpose).await?;
        Ok(AuthError::MfaRequired {
            challenge: Some(challenge),
            methods: SecondFactors::sign_in_methods(user),
        })
    }

    /// Whether the deletion of `user` can still be cancelled: it is scheduled, nobody (an
    /// admin) has disabled the account meanwhile, and the grace has not ended. An account past
    /// its grace is as good as purged, so it answers like one that does not exist.
    fn ensure_restorable(&self, user: &users::Model) -> Result<(), AuthError> {
        if AccountStatus::parse(&user.status) != AccountStatus::PendingDeletion {
            return Err(AuthError::NotPendingDeletion);
        }
        match user.deletion_scheduled_for {
            Some(due) if due <= self.clock.now() => Err(AuthError::InvalidCredentials),
            _ => Ok(()),
        }
    }

    /// Cancels the deletion of `user` (its row locked in `txn`) inside `txn`: active again,
    /// audited, confirmed by mail. The account is checked again under the lock, since a
    /// second-factor restore completes minutes after its password was checked.
    async fn keep(
        &self,
        txn: &DatabaseTransaction,
        user: &users::Model,
        upgraded_hash: Option<String>,
        client: &ClientInfo,
    ) -> Result<users::Model, AuthError> {
        self.ensure_restorable(user)?;
        let now = self.clock.now();
        users::set_status(txn, user.id, users::ACTIVE, None, now).await?;
        let user = users::record_login(txn, user.id, upgraded_hash, now).await?;
        self.audit
            .record(
                txn,
                Event::new(Action::DeletionCancelled, Some(user.id), client),
            )
            .await?;
        let notice = Letter {
            to: &user.email,
            mail: templates::deletion_cancelled(),
            user_id: Some(user.id),
            code: None,
        };
        self.outbox.enqueue(txn, notice).await?;
        Ok(user)
    }

    /// The account whose credentials these are, under the login limits and the lockout.
    async fn authenticate(
        &self,
        request: LoginRequest,
        client: &ClientInfo,
    ) -> Result<Proven, AuthError> {
        let mut errors = FieldErrors::new();
        // `login` (an address or a username) takes the place of `email`, which keeps working.
        let (field, identifier) = match request.login.trim() {
            "" => ("email", request.email.trim()),
            login => ("login", login),
        };
        let email = if field == "email" {
            errors.check("email", Email::parse(identifier)).map(Some)
        } else if identifier.is_empty() {
            errors.add("login", "This field is required.");
            None
        } else {
            Some(Email::parse(identifier).ok())
        };
        if request.password.is_empty() {
            errors.add("password", "This field is required.");
        }
        let email = errors.finish(email)?;
        // Limits come before any hashing: a refused attempt costs almost nothing.
        self.limiter
            .hit(&self.db, LimitKind::LoginIp, &client.limit_subject())
            .await?;
        let user = match &email {
            Some(email) => users::find_by_email(&self.db, email.as_str()).await?,
            None => match Username::parse(identifier) {
                Ok(name) => users::find_by_username_key(&self.db, &name.key()).await?,
                Err(_) => None,
            },
        };
        // The lockout counts per account, however it is named; an unknown name or address
        // counts under itself, alike.
        let subject = match &user {
            Some(user) => user.email.clone(),
            None => identifier.to_lowercase(),
        };
        // The account counter takes this attempt now, before the (slow) check, so a burst of
        // parallel guesses cannot all slip under the limit; a right password gives it back.
        let attempts = self
            .limiter
            .hit(&self.db, LimitKind::LoginAccount, &subject)
            .await?;
        // No password over the size limit was ever accepted, so none can match.
        let verification = match Password::for_login(request.password) {
            Some(password) => {
                let stored = user.as_ref().map(|user| user.password_hash.expose());
                Some((self.passwords.verify(&password, stored).await?, password))
            }
            None => None,
        };
        let (user, verification, password) = match (user, verification) {
            (Some(user), Some((verification, password)))
                if verification != Verification::Mismatch =>
            {
                (user, verification, password)
            }
            (user, _) => {
                let owner = user.map(|user| (user.id, user.email));
                self.failed_login(owner, client, attempts).await?;
                return Err(AuthError::InvalidCredentials);
            }
        };
        self.limiter
            .refund(&self.db, LimitKind::LoginAccount, &subject)
            .await?;
        let upgraded_hash = match verification {
            Verification::MatchNeedsRehash => Some(self.passwords.hash(&password).await?),
            _ => None,
        };
        Ok(Proven {
            user,
            upgraded_hash,
        })
    }

    /// Starts the transaction that signs `proven` in, and answers it with the account's
    /// profile, read with the locked row. The password was checked outside it; a reset,
    /// change or status change that committed meanwhile must win, or its session revocation
    /// (or new hash) would be undone.
    async fn begin_sign_in(
        &self,
        proven: &Proven,
    ) -> Result<(DatabaseTransaction, Option<profiles::Model>), AuthError> {
        let txn = store::begin(&self.db).await?;
        let current = users::lock_with_profile(&txn, proven.user.id).await?;
        match current {
            Some((current, profile))
                if current.password_hash == proven.user.password_hash
                    && current.status == proven.user.status
                    && current.is_verified == proven.user.is_verified =>
            {
                Ok((txn, profile))
            }
            _ => Err(AuthError::InvalidCredentials),
        }
    }

    /// Records a failed login. The failure that uses up the account's allowance starts a
    /// lockout, and its owner (if there is an account) is told, once per window.
    async fn failed_login(
        &self,
        owner: Option<(Uuid, String)>,
        client: &ClientInfo,
        failures: u32,
    ) -> Result<(), AuthError> {
        let user_id = owner.as_ref().map(|(id, _)| *id);
        let event = Event::new(Action::LoginFailed, user_id, client)
            .with(json!({"reason": "invalid_credentials"}));
        self.audit.record(&self.db, event).await?;
        let Some(limit) = self.limiter.limit(LimitKind::LoginAccount) else {
            return Ok(());
        };
        if failures != limit.count {
            return Ok(());
        }
        let event =
            Event::new(Action::Lockout, user_id, client).with(json!({"failures": failures}));
        self.audit.record(&self.db, event).await?;
        tracing::warn!(security_event = "lockout", user_id = ?user_id, "sign-in locked after failed logins");
        if let Some((user_id, email)) = owner {
            let notice = Letter {
                to: &email,
                mail: templates::account_locked(limit.window),
                user_id: Some(user_id),
                code: None,
            };
            self.outbox.enqueue(&self.db, notice).await?;
        }
        Ok(())
    }
}
