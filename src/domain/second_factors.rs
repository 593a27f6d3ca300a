//! Second factors (contract §11): TOTP apps, codes by mail and recovery codes; turning them on
//! and off; checking a code, wherever one is asked for (a sign-in, a sensitive change); and
//! sign-ins waiting for their second factor.

use std::sync::Arc;

use chrono::TimeDelta;
use poem_openapi::{Enum, Object};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, TransactionTrait};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::{
    audit::{Action, AuditTrail, Event},
    client::ClientInfo,
    codes::{Codes, Purpose},
    email::Email,
    error::{AuthError, MfaChallenge},
    limits::{LimitKind, Limiter},
    outbox::{Letter, Outbox},
    passwords::Passwords,
    recovery_codes, totp,
    trusted_devices::TrustedDevices,
};
use crate::{
    clock::{Clock, delta},
    config::{Config, MfaMethod},
    mail::templates,
    store::{self, mfa_challenges, mfa_factors, profiles, recovery_codes as stored_codes, users},
    tokens::refresh,
    vault::Vault,
};

/// The name authenticator apps show beside the account.
const ISSUER: &str = "authgate";
/// How long a TOTP setup waits for its first code.
const SETUP_TTL_SECONDS: i64 = 600;
/// Wrong codes before a waiting sign-in is burned.
const CHALLENGE_ATTEMPTS: i32 = 5;

/// A way to give the second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// A code from an authenticator app.
    Totp,
    /// A code mailed to the account's address (`POST /auth/mfa/challenge` sends it).
    Email,
    /// One of the account's single-use recovery codes.
    RecoveryCode,
}

/// A second factor an account can turn on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factor {
    Totp,
    Email,
}

impl Factor {
    pub fn as_str(self) -> &'static str {
        match self {
            Factor::Totp => mfa_factors::TOTP,
            Factor::Email => mfa_factors::EMAIL,
        }
    }

    /// The factor a path segment names (`DELETE /auth/mfa/{method}`).
    pub fn parse(name: &str) -> Option<Factor> {
        match name {
            mfa_factors::TOTP => Some(Factor::Totp),
            mfa_factors::EMAIL => Some(Factor::Email),
            _ => None,
        }
    }

    fn method(self) -> MfaMethod {
        match self {
            Factor::Totp => MfaMethod::Totp,
            Factor::Email => MfaMethod::Email,
        }
    }
}

/// One factor that is on.
#[derive(Debug, Clone, Object)]
pub struct FactorView {
    /// `totp` or `email`.
    #[oai(rename = "type")]
    pub kind: String,
    pub enabled_at: chrono::DateTime<chrono::Utc>,
}

/// The second factors of an account.
#[derive(Debug, Clone, Object)]
pub struct MfaStatus {
    pub enabled: bool,
    pub methods: Vec<FactorView>,
    /// Recovery codes not used yet.
    pub recovery_codes_left: u64,
}

/// A new TOTP secret waiting for its first code.
#[derive(Object)]
pub struct TotpEnrolment {
    /// The secret in base32, for typing it into an app by hand.
    pub secret: String,
    /// `otpauth://totp/…` with issuer and account: what the QR code holds.
    pub otpauth_uri: String,
    /// The QR code, as a `data:image/svg+xml;base64,…` URL for an `<img>`.
    pub qr_code: String,
    /// Seconds the setup waits for its first code.
    pub expires_in: u64,
}

/// A factor just turned on.
#[derive(Object)]
pub struct Enabled {
    /// The account's factors now.
    pub methods: Vec<String>,
    /// Ten single-use codes for a lost factor, shown once: only when this is the first
    /// factor turned on.
    #[oai(skip_serializing_if_is_none)]
    pub recovery_codes: Option<Vec<String>>,
}

/// Why a challenge exists: what a right code completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengePurpose {
    Login,
    Restore,
}

impl ChallengePurpose {
    fn as_str(self) -> &'static str {
        match self {
            ChallengePurpose::Login => "login",
            ChallengePurpose::Restore => "restore",
        }
    }
}

/// A waiting sign-in whose token was just used up by a right code.
pub struct PassedChallenge {
    /// The account, its row locked in the transaction the challenge was passed in.
    pub user: users::Model,
    pub profile: Option<profiles::Model>,
    pub purpose: ChallengePurpose,
}

pub struct SecondFactors {
    db: DatabaseConnection,
    config: Arc<Config>,
    clock: Arc<dyn Clock>,
    vault: Arc<Vault>,
    codes: Arc<Codes>,
    passwords: Arc<Passwords>,
    limiter: Arc<Limiter>,
    audit: Arc<AuditTrail>,
    outbox: Arc<Outbox>,
    devices: Arc<TrustedDevices>,
}

impl SecondFactors {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: DatabaseConnection,
        config: Arc<Config>,
        clock: Arc<dyn Clock>,
        vault: Arc<Vault>,
        codes: Arc<Codes>,
        passwords: Arc<Passwords>,
        limiter: Arc<Limiter>,
        audit: Arc<AuditTrail>,
        outbox: Arc<Outbox>,
        devices: Arc<TrustedDevices>,
    ) -> SecondFactors {
        SecondFactors {
            db,
            config,
            clock,
            vault,
            codes,
            passwords,
            limiter,
            audit,
            outbox,
            devices,
        }
    }

    /// The methods a sign-in of this account can use: its factors plus recovery codes.
    pub fn sign_in_methods(user: &users::Model) -> Vec<String> {
        let mut methods: Vec<String> = serde_json::from_str(&user.mfa_methods).unwrap_or_default();
        if !methods.is_empty() {
            methods.push("recovery_code".into());
        }
        methods
    }

    pub async fn status(&self, user_id: Uuid) -> Result<MfaStatus, AuthError> {
        let factors = mfa_factors::of_user(&self.db, user_id).await?;
        let methods: Vec<FactorView> = factors
            .into_iter()
            .filter_map(|factor| {
                factor.confirmed_at.map(|enabled_at| FactorView {
                    kind: factor.kind,
                    enabled_at,
                })
            })
            .collect();
        let left = stored_codes::unused_of(&self.db, user_id).await?.len();
        Ok(MfaStatus {
            enabled: !methods.is_empty(),
            methods,
            recovery_codes_left: left as u64,
        })
    }

    /// Starts a TOTP setup: a new secret, waiting for its first code.
    pub async fn start_totp(
        &self,
        user_id: Uuid,
        password: &str,
    ) -> Result<TotpEnrolment, AuthError> {
        self.ensure_offered(Factor::Totp)?;
        let user = self.confirm_password(user_id, password).await?;
        if mfa_factors::find(&self.db, user.id, mfa_factors::TOTP)
            .await?
            .is_some_and(|factor| factor.confirmed_at.is_some())
        {
            return Err(AuthError::AlreadyEnabled);
        }
        let setup = totp::setup(ISSUER, &user.email)
            .map_err(|err| AuthError::internal_from("a TOTP setup could not be made", err))?;
        let secret = setup.secret.to_base32();
        let sealed = self.seal_secret(user.id, &secret)?;
        let now = self.clock.now();
        mfa_factors::replace(
            &self.db,
            user.id,
            mfa_factors::TOTP,
            Some(sealed),
            None,
            now,
        )
        .await?;
        Ok(TotpEnrolment {
            secret,
            otpauth_uri: setup.otpauth_uri,
            qr_code: setup.qr_code_data_url,
            expires_in: SETUP_TTL_SECONDS as u64,
        })
    }

    /// Turns TOTP on with the first code from the app.
    pub async fn confirm_totp(
        &self,
        user_id: Uuid,
        code: &str,
        client: &ClientInfo,
    ) -> Result<Enabled, AuthError> {
        let now = self.clock.now();
        let pending = mfa_factors::find(&self.db, user_id, mfa_factors::TOTP)
            .await?
            .filter(|factor| {
                factor.confirmed_at.is_none()
                    && now < factor.created_at + TimeDelta::seconds(SETUP_TTL_SECONDS)
            })
            .ok_or(AuthError::NoPendingSetup)?;
        let step = self.totp_step(&pending, code)?;
        let txn = store::begin(&self.db).await?;
        if !mfa_factors::use_step(&txn, pending.id, step).await? {
            return Err(AuthError::InvalidMfaCode);
        }
        mfa_factors::confirm(&txn, pending.id, now).await?;
        let enabled = self
            .after_enabling(&txn, user_id, Factor::Totp, client)
            .await?;
        txn.commit().await?;
        Ok(enabled)
    }

    /// Mails a code to the account's address; the code turns email codes on.
    pub async fn start_email(&self, user_id: Uuid, password: &str) -> Result<u64, AuthError> {
        self.ensure_offered(Factor::Email)?;
        let user = self.confirm_password(user_id, password).await?;
        self.mail_code(&user).await
    }

    /// Turns email codes on with the mailed code.
    pub async fn confirm_email(
        &self,
        user_id: Uuid,
        code: &str,
        client: &ClientInfo,
    ) -> Result<Enabled, AuthError> {
        let user = users::find(&self.db, user_id)
            .await?
            .ok_or(AuthError::Unauthorized)?;
        let txn = store::begin(&self.db).await?;
        // A miss is counted in the transaction; it must stay counted when the request fails.
        if let Err(err) = self.check_mailed_code(&txn, &user, code).await {
            txn.commit().await?;
            return Err(err);
        }
        let now = self.clock.now();
        mfa_factors::replace(&txn, user_id, mfa_factors::EMAIL, None, Some(now), now).await?;
        let enabled = self
            .after_enabling(&txn, user_id, Factor::Email, client)
            .await?;
        txn.commit().await?;
        Ok(enabled)
    }

    /// Turns a factor off, with the password and a code. With no factor left, the recovery
    /// codes and trusted devices go too. Returns the factors still on.
    pub async fn disable(
        &self,
        user_id: Uuid,
        factor: Factor,
        password: &str,
        code: &str,
        client: &ClientInfo,
    ) -> Result<Vec<String>, AuthError> {
        let user = self.confirm_password(user_id, password).await?;
        self.accept_alone(&user, code, client).await?;
        let txn = store::begin(&self.db).await?;
        mfa_factors::delete(&txn, user_id, factor.as_str()).await?;
        let methods = self.record_methods(&txn, user_id).await?;
        if methods.is_empty() {
            stored_codes::delete_all_of(&txn, user_id).await?;
            self.devices.revoke_all(&txn, user_id, client).await?;
        }
        let event = Event::new(Action::MfaDisabled, Some(user_id), client)
            .with(json!({"method": factor.as_str()}));
        self.audit.record(&txn, event).await?;
        txn.commit().await?;
        Ok(methods)
    }

    /// A new set of recovery codes; the old set stops working.
    pub async fn new_recovery_codes(
        &self,
        user_id: Uuid,
        password: &str,
        code: &str,
        client: &ClientInfo,
    ) -> Result<Vec<String>, AuthError> {
        let user = self.confirm_password(user_id, password).await?;
        if Self::sign_in_methods(&user).is_empty() {
            return Err(AuthError::InvalidMfaCode);
        }
        self.accept_alone(&user, code, client).await?;
        let txn = store::begin(&self.db).await?;
        let codes = self.replace_recovery_codes(&txn, user_id).await?;
        txn.commit().await?;
        Ok(codes)
    }

    /// Removes every second factor, recovery code, trusted device and pending two-factor
    /// sign-in of an account (an admin's reset), inside the caller's transaction, and tells
    /// the owner.
    pub async fn reset(
        &self,
        conn: &impl ConnectionTrait,
        user: &users::Model,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        mfa_factors::delete_all_of(conn, user.id).await?;
        stored_codes::delete_all_of(conn, user.id).await?;
        mfa_challenges::delete_all_of(conn, user.id).await?;
        self.devices.revoke_all(conn, user.id, client).await?;
        users::set_mfa_methods(conn, user.id, &[]).await?;
        let notice = Letter {
            to: &user.email,
            mail: templates::mfa_reset(),
            user_id: Some(user.id),
            code: None,
        };
        self.outbox.enqueue(conn, notice).await
    }

    /// The second factor a sensitive change asks for when the account has one: without
    /// `code`, `MfaRequired` with the account's methods; a wrong code, `InvalidMfaCode`.
    pub async fn step_up(
        &self,
        user: &users::Model,
        code: Option<&str>,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let methods = Self::sign_in_methods(user);
        if methods.is_empty() {
            return Ok(());
        }
        match code.map(str::trim).filter(|code| !code.is_empty()) {
            None => Err(AuthError::MfaRequired {
                challenge: None,
                methods,
            }),
            Some(code) => self.accept_alone(user, code, client).await,
        }
    }

    /// Mails a sign-in code to the account's address (for a waiting sign-in or a step-up).
    /// Returns the code's lifetime in seconds.
    pub async fn mail_code(&self, user: &users::Model) -> Result<u64, AuthError> {
        let email = Email::parse(&user.email)
            .map_err(|_| AuthError::internal("a stored email no longer parses"))?;
        self.codes.send(&email, Purpose::SecondFactor).await?;
        Ok(self.codes.ttl_seconds())
    }

    /// A sign-in whose password was right waits for its second factor: a single-use token,
    /// stored hashed.
    pub async fn open_challenge(
        &self,
        user: &users::Model,
        purpose: ChallengePurpose,
    ) -> Result<MfaChallenge, AuthError> {
        let now = self.clock.now();
        let ttl = self.config.mfa_token_ttl;
        let minted = refresh::mint();
        let challenge = mfa_challenges::NewChallenge {
            user_id: user.id,
            token_hash: minted.hash,
            purpose: purpose.as_str(),
            expires_at: now + delta(ttl),
        };
        mfa_challenges::insert(&self.db, challenge, now).await?;
        Ok(MfaChallenge {
            token: minted.token,
            expires_in: ttl.as_secs(),
        })
    }

    /// The account of a live waiting sign-in.
    pub async fn waiting_user(&self, token: &str) -> Result<users::Model, AuthError> {
        let challenge = self.live_challenge(token).await?;
        users::find(&self.db, challenge.user_id)
            .await?
            .ok_or(AuthError::InvalidMfaToken)
    }

    /// Checks the second factor of a waiting sign-in inside `txn`, which the caller goes on
    /// to sign in with (one commit for the whole second step) and commits even when this
    /// fails: a wrong code counts against the challenge (burned after five) and against the
    /// account's login allowance. A right one uses the token up, once however many requests
    /// race with it. Answers the account, locked.
    pub async fn pass_challenge(
        &self,
        txn: &DatabaseTransaction,
        token: &str,
        method: Method,
        code: &str,
        client: &ClientInfo,
    ) -> Result<PassedChallenge, AuthError> {
        let now = self.clock.now();
        let (challenge, user, profile) =
            mfa_challenges::find_with_locked_account(txn, &refresh::hash(token))
                .await?
                .filter(|(challenge, ..)| challenge.used_at.is_none() && now < challenge.expires_at)
                .ok_or(AuthError::InvalidMfaToken)?;
        let checked = self
            .accept_counted(txn, &user, Some(method), code, client)
            .await;
        if let Err(err) = checked {
            if matches!(err, AuthError::InvalidMfaCode) {
                mfa_challenges::count_failure(txn, challenge.id, CHALLENGE_ATTEMPTS, now).await?;
            }
            return Err(err);
        }
        if !mfa_challenges::use_up(txn, challenge.id, now).await? {
            return Err(AuthError::InvalidMfaToken);
        }
        let purpose = match challenge.purpose.as_str() {
            "restore" => ChallengePurpose::Restore,
            _ => ChallengePurpose::Login,
        };
        Ok(PassedChallenge {
            user,
            profile,
            purpose,
        })
    }

    async fn live_challenge(&self, token: &str) -> Result<mfa_challenges::Model, AuthError> {
        let now = self.clock.now();
        mfa_challenges::find_by_hash(&self.db, &refresh::hash(token))
            .await?
            .filter(|challenge| challenge.used_at.is_none() && now < challenge.expires_at)
            .ok_or(AuthError::InvalidMfaToken)
    }

    /// [`Self::accept_counted`] for a step-up, in a transaction of its own that is committed
    /// whatever the answer, so a wrong code stays counted.
    async fn accept_alone(
        &self,
        user: &users::Model,
        code: &str,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let txn = store::begin(&self.db).await?;
        let checked = self.accept_counted(&txn, user, None, code, client).await;
        txn.commit().await?;
        checked
    }

    /// Checks a code as [`Self::accept`] does, counted against the account's login allowance
    /// like a password (§11): whoever holds the password, or a stolen session, cannot guess
    /// codes faster than a password guesser, and a right code gives its attempt back. A wrong
    /// one is recorded as `mfa_challenge_failed`.
    async fn accept_counted(
        &self,
        txn: &DatabaseTransaction,
        user: &users::Model,
        method: Option<Method>,
        code: &str,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        self.limiter
            .hit(txn, LimitKind::LoginAccount, &user.email)
            .await?;
        match self.accept(txn, user, method, code, client).await {
            Ok(()) => {
                self.limiter
                    .refund(txn, LimitKind::LoginAccount, &user.email)
                    .await
            }
            Err(AuthError::InvalidMfaCode) => {
                let method = method.map_or("any", method_name);
                let event = Event::new(Action::MfaChallengeFailed, Some(user.id), client)
                    .with(json!({"method": method}));
                self.audit.record(txn, event).await?;
                Err(AuthError::InvalidMfaCode)
            }
            Err(err) => Err(err),
        }
    }

    /// Checks a code of `method`, or, for a step-up (which names none), of whichever method it
    /// can be: a recovery code shows by its shape, six digits may come from the app or the
    /// mail. Each check uses the code up atomically: a TOTP step, a mailed code and a recovery
    /// code all work once, however many requests race with them.
    async fn accept(
        &self,
        txn: &DatabaseTransaction,
        user: &users::Model,
        method: Option<Method>,
        code: &str,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let factors: Vec<String> = serde_json::from_str(&user.mfa_methods).unwrap_or_default();
        let has = |factor: Factor| factors.iter().any(|kind| kind == factor.as_str());
        match method {
            Some(Method::Totp) if has(Factor::Totp) => self.use_totp_step(txn, user, code).await,
            Some(Method::Email) if has(Factor::Email) => {
                self.check_mailed_code(txn, user, code).await
            }
            Some(Method::RecoveryCode) => self.use_recovery_code(txn, user, code, client).await,
            Some(Method::Totp | Method::Email) => Err(AuthError::InvalidMfaCode),
            None if recovery_codes::canonicalize(code).is_some() && code.trim().len() > 6 => {
                self.use_recovery_code(txn, user, code, client).await
            }
            None => {
                // The app's code first: trying it leaves nothing behind, while a wrong mailed
                // code costs that code an attempt.
                let mut checked = Err(AuthError::InvalidMfaCode);
                if has(Factor::Totp) {
                    checked = self.use_totp_step(txn, user, code).await;
                }
                if matches!(checked, Err(AuthError::InvalidMfaCode)) && has(Factor::Email) {
                    checked = self.check_mailed_code(txn, user, code).await;
                }
                checked
            }
        }
    }

    /// Checks a code of the account's authenticator app and uses its step up.
    async fn use_totp_step(
        &self,
        txn: &DatabaseTransaction,
        user: &users::Model,
        code: &str,
    ) -> Result<(), AuthError> {
        let factor = mfa_factors::find(txn, user.id, mfa_factors::TOTP)
            .await?
            .ok_or(AuthError::InvalidMfaCode)?;
        let step = self.totp_step(&factor, code)?;
        if mfa_factors::use_step(txn, factor.id, step).await? {
            Ok(())
        } else {
            Err(AuthError::InvalidMfaCode)
        }
    }

    /// The TOTP step a code matches, now, for this factor.
    fn totp_step(&self, factor: &mfa_factors::Model, code: &str) -> Result<i64, AuthError> {
        let sealed = factor.secret.as_ref().ok_or(AuthError::InvalidMfaCode)?;
        let secret = self
            .vault
            .open(&secret_context(factor.user_id), sealed.expose())
            .map_err(|err| AuthError::internal_from("a TOTP secret cannot be opened", err))?;
        let secret = totp::TotpSecret::from_base32(&secret)
            .ok_or_else(|| AuthError::internal("a stored TOTP secret is malformed"))?;
        totp::verify(
            &secret,
            code,
            self.clock.now().timestamp(),
            factor.last_used_step,
        )
        .ok_or(AuthError::InvalidMfaCode)
    }

    /// Checks and uses a mailed code inside `txn`, in a nested transaction (a savepoint)
    /// that the code machinery commits itself when it counts a miss.
    async fn check_mailed_code(
        &self,
        txn: &DatabaseTransaction,
        user: &users::Model,
        code: &str,
    ) -> Result<(), AuthError> {
        let email = Email::parse(&user.email)
            .map_err(|_| AuthError::internal("a stored email no longer parses"))?;
        match self
            .codes
            .check_in(
                txn.begin().await?,
                &email,
                Purpose::SecondFactor,
                Some(code.trim()),
                true,
            )
            .await
        {
            Ok((savepoint, _)) => Ok(savepoint.commit().await?),
            Err(AuthError::InvalidOtp | AuthError::OtpLocked) => Err(AuthError::InvalidMfaCode),
            Err(err) => Err(err),
        }
    }

    async fn use_recovery_code(
        &self,
        txn: &DatabaseTransaction,
        user: &users::Model,
        code: &str,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let canonical = recovery_codes::canonicalize(code).ok_or(AuthError::InvalidMfaCode)?;
        let unused = stored_codes::unused_of(txn, user.id).await?;
        // Every stored code is compared (in constant time each), whichever matches.
        let matched = unused.iter().fold(None, |found, stored| {
            let matches =
                self.vault
                    .mac_matches(user.id.as_bytes(), &canonical, stored.code_hash.expose());
            if matches { Some(stored.id) } else { found }
        });
        let id = matched.ok_or(AuthError::InvalidMfaCode)?;
        if !stored_codes::use_code(txn, id, self.clock.now()).await? {
            return Err(AuthError::InvalidMfaCode);
        }
        self.audit
            .record(
                txn,
                Event::new(Action::RecoveryCodeUsed, Some(user.id), client),
            )
            .await?;
        let notice = Letter {
            to: &user.email,
            mail: templates::recovery_code_used(unused.len().saturating_sub(1)),
            user_id: Some(user.id),
            code: None,
        };
        self.outbox.enqueue(txn, notice).await
    }

    /// After a factor is confirmed: the account's method list, recovery codes when this is
    /// the first factor, the audit event.
    async fn after_enabling(
        &self,
        conn: &impl ConnectionTrait,
        user_id: Uuid,
        factor: Factor,
        client: &ClientInfo,
    ) -> Result<Enabled, AuthError> {
        let had_codes = !stored_codes::unused_of(conn, user_id).await?.is_empty();
        let methods = self.record_methods(conn, user_id).await?;
        let recovery_codes = if methods.len() == 1 || !had_codes {
            Some(self.replace_recovery_codes(conn, user_id).await?)
        } else {
            None
        };
        let event = Event::new(Action::MfaEnabled, Some(user_id), client)
            .with(json!({"method": factor.as_str()}));
        self.audit.record(conn, event).await?;
        Ok(Enabled {
            methods,
            recovery_codes,
        })
    }

    /// Writes the confirmed factors' kinds onto the account row; returns them.
    async fn record_methods(
        &self,
        conn: &impl ConnectionTrait,
        user_id: Uuid,
    ) -> Result<Vec<String>, AuthError> {
        let methods: Vec<String> = mfa_factors::of_user(conn, user_id)
            .await?
            .into_iter()
            .filter(|factor| factor.confirmed_at.is_some())
            .map(|factor| factor.kind)
            .collect();
        let names: Vec<&str> = methods.iter().map(String::as_str).collect();
        users::set_mfa_methods(conn, user_id, &names).await?;
        Ok(methods)
    }

    async fn replace_recovery_codes(
        &self,
        conn: &impl ConnectionTrait,
        user_id: Uuid,
    ) -> Result<Vec<String>, AuthError> {
        let codes = recovery_codes::generate_set();
        let hashes = codes
            .iter()
            .map(|code| self.vault.mac(user_id.as_bytes(), code.canonical()))
            .collect();
        stored_codes::replace_set(conn, user_id, hashes, self.clock.now()).await?;
        Ok(codes
            .iter()
            .map(recovery_codes::RecoveryCode::display)
            .collect())
    }

    /// The account row behind a signed-in user.
    pub async fn user(&self, user_id: Uuid) -> Result<users::Model, AuthError> {
        users::find(&self.db, user_id)
            .await?
            .ok_or(AuthError::Unauthorized)
    }

    async fn confirm_password(
        &self,
        user_id: Uuid,
        password: &str,
    ) -> Result<users::Model, AuthError> {
        let user = users::find(&self.db, user_id)
            .await?
            .ok_or(AuthError::Unauthorized)?;
        self.passwords.confirm_current(&user, password).await?;
        Ok(user)
    }

    fn ensure_offered(&self, factor: Factor) -> Result<(), AuthError> {
        if self.config.mfa_methods.contains(&factor.method()) {
            Ok(())
        } else {
            Err(AuthError::Forbidden)
        }
    }

    fn seal_secret(&self, user_id: Uuid, secret: &str) -> Result<String, AuthError> {
        self.vault
            .seal(&secret_context(user_id), secret)
            .map_err(|err| AuthError::internal_from("a TOTP secret could not be sealed", err))
    }
}

/// The sealing context of a TOTP secret: a sealed secret copied to another account does not
/// open.
pub fn secret_context(user_id: Uuid) -> String {
    format!("totp:{user_id}")
}

fn method_name(method: Method) -> &'static str {
    match method {
        Method::Totp => "totp",
        Method::Email => "email",
        Method::RecoveryCode => "recovery_code",
    }
}
