//! Registration, email verification and code resends.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, QuerySelect,
};
use serde_json::json;
use uuid::Uuid;

use super::{
    Account, AuthService, ClientInfo, SignedIn,
    audit::{Action, Outcome},
    codes::Purpose,
    email::Email,
    error::{AuthError, FieldErrors},
    limits::LimitKind,
    password::{Password, check_confirmation},
    profile::{empty_profile, load_account, parse_name, parse_phone},
};
use crate::{
    mail::templates,
    store::{self, profiles, users},
};

/// What a registrant sends, unparsed. No `Debug`: it carries the password.
#[derive(Default)]
pub struct RegistrationForm {
    pub email: String,
    pub password: String,
    pub password2: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone_number: Option<String>,
    pub role: Option<String>,
}

pub struct Registered {
    pub account: Account,
    pub otp_expires_in: u64,
}

/// A registration that passed every check.
struct NewAccount {
    email: Email,
    password: Password,
    first_name: String,
    last_name: String,
    phone_number: Option<String>,
    role: String,
}

impl AuthService {
    /// Creates an unverified account and mails a verification code. Registering again with
    /// the address of an unverified account replaces its password and names: an address
    /// nobody has proven cannot be squatted.
    pub async fn register(
        &self,
        form: RegistrationForm,
        client: &ClientInfo,
    ) -> Result<Registered, AuthError> {
        self.hit(&self.db, LimitKind::RegisterIp, &client.limit_subject())
            .await?;
        let new = self.check_registration(form)?;
        // Cheap refusals first, so a taken address costs no password hash.
        if let Some(existing) = find_user(&self.db, &new.email).await?
            && existing.is_verified
        {
            return Err(AuthError::EmailTaken);
        }
        let password_hash = self.hashing.hash(&new.password).await?;

        let txn = self.begin().await?;
        let now = self.clock.now();
        let existing = users::Entity::find()
            .filter(users::Column::Email.eq(new.email.as_str()))
            .lock_exclusive()
            .one(&txn)
            .await?;
        let user = match existing {
            Some(user) if user.is_verified => return Err(AuthError::EmailTaken),
            Some(user) => {
                let mut user = user.into_active_model();
                user.password_hash = Set(password_hash);
                user.first_name = Set(new.first_name);
                user.last_name = Set(new.last_name);
                user.phone_number = Set(new.phone_number);
                user.role = Set(new.role);
                user.updated_at = Set(now);
                user.update(&txn).await?
            }
            None => {
                let user = users::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    email: Set(new.email.to_string()),
                    password_hash: Set(password_hash),
                    first_name: Set(new.first_name),
                    last_name: Set(new.last_name),
                    phone_number: Set(new.phone_number),
                    role: Set(new.role),
                    is_verified: Set(false),
                    is_active: Set(true),
                    created_at: Set(now),
                    updated_at: Set(now),
                    last_login_at: Set(None),
                };
                let user = match user.insert(&txn).await {
                    Ok(user) => user,
                    Err(err) if store::is_unique_violation(&err) => {
                        // Another registration for this address committed first.
                        return Err(AuthError::ResendTooSoon {
                            retry_after_seconds: self.config.otp_resend_cooldown.as_secs().max(1),
                        });
                    }
                    Err(err) => return Err(err.into()),
                };
                profiles::Entity::insert(profiles::ActiveModel::from(empty_profile(user.id)))
                    .exec(&txn)
                    .await?;
                user
            }
        };
        // Inside the cooldown this fails and the dropped transaction undoes the changes above:
        // a refused re-registration changes nothing.
        let issued = self
            .issue_code(&txn, &new.email, Purpose::Registration, Some(user.id))
            .await?;
        self.audit(
            &txn,
            Action::Registration,
            Outcome::Success,
            Some(user.id),
            client,
            json!({}),
        )
        .await?;
        txn.commit().await?;

        self.mail_code(&new.email, &issued, templates::verification_code)
            .await?;
        let account = load_account(&self.db, user.id)
            .await?
            .ok_or_else(|| AuthError::Internal("registered user vanished".into()))?;
        Ok(Registered {
            account,
            otp_expires_in: self.config.otp_ttl.as_secs(),
        })
    }

    /// Checks a verification code; a right one verifies the address and signs the user in.
    pub async fn verify_email(
        &self,
        email: &str,
        code: &str,
        client: &ClientInfo,
    ) -> Result<SignedIn, AuthError> {
        self.hit(&self.db, LimitKind::OtpVerifyIp, &client.limit_subject())
            .await?;
        let (email, code) = parse_email_and_code(email, code)?;
        // The user row is locked before the code row, in the order registration takes them,
        // so the two can never deadlock on PostgreSQL.
        let txn = self.begin().await?;
        let user = users::Entity::find()
            .filter(users::Column::Email.eq(email.as_str()))
            .lock_exclusive()
            .one(&txn)
            .await?;
        // Answered before the code is looked at, whatever code was sent.
        if user.as_ref().is_some_and(|user| user.is_verified) {
            return Err(AuthError::AlreadyVerified);
        }
        // An unknown address goes through the same check (and attempt count) as a real one.
        let (txn, _) = self
            .check_code(txn, &email, Purpose::Registration, &code, true)
            .await?;
        let user = user.ok_or(AuthError::InvalidOtp)?;
        if !user.is_active {
            return Err(AuthError::AccountDisabled);
        }
        let now = self.clock.now();
        let mut user = user.into_active_model();
        user.is_verified = Set(true);
        user.updated_at = Set(now);
        user.last_login_at = Set(Some(now));
        let user = user.update(&txn).await?;
        let tokens = self.start_session(&txn, &user, client).await?;
        self.audit(
            &txn,
            Action::Verification,
            Outcome::Success,
            Some(user.id),
            client,
            json!({}),
        )
        .await?;
        txn.commit().await?;
        let account = load_account(&self.db, user.id)
            .await?
            .ok_or_else(|| AuthError::Internal("verified user vanished".into()))?;
        Ok(SignedIn { account, tokens })
    }

    /// Mails a new code of `purpose` if the address has an account it can serve, and answers
    /// the same either way. Returns the code lifetime in seconds.
    pub async fn resend_code(&self, email: &str, purpose: Purpose) -> Result<u64, AuthError> {
        let email = Email::parse(email).map_err(|problems| {
            let mut errors = FieldErrors::new();
            errors.check::<()>("email", Err(problems));
            AuthError::Validation(errors)
        })?;
        let txn = self.begin().await?;
        let recipient = find_user(&txn, &email).await?.filter(|user| match purpose {
            Purpose::Registration => user.is_active && !user.is_verified,
            Purpose::PasswordReset => user.is_active,
        });
        let issued = self
            .issue_code(&txn, &email, purpose, recipient.map(|user| user.id))
            .await?;
        txn.commit().await?;
        let template = match purpose {
            Purpose::Registration => templates::verification_code,
            Purpose::PasswordReset => templates::password_reset_code,
        };
        self.mail_code(&email, &issued, template).await?;
        Ok(self.config.otp_ttl.as_secs())
    }

    fn check_registration(&self, form: RegistrationForm) -> Result<NewAccount, AuthError> {
        let mut errors = FieldErrors::new();
        let email = errors.check("email", Email::parse(&form.email));
        let password = match &email {
            Some(email) => errors.check(
                "password",
                Password::new_checked(
                    form.password.clone(),
                    self.config.password_min_length,
                    email,
                ),
            ),
            None if form.password.is_empty() => {
                errors.check("password", Err(vec!["This field is required.".into()]))
            }
            None => None,
        };
        check_confirmation(&mut errors, "password2", &form.password, &form.password2);
        let first_name = errors.check(
            "first_name",
            parse_name(form.first_name.as_deref().unwrap_or_default()),
        );
        let last_name = errors.check(
            "last_name",
            parse_name(form.last_name.as_deref().unwrap_or_default()),
        );
        let phone_number = errors.check(
            "phone_number",
            parse_phone(form.phone_number.as_deref().unwrap_or_default()),
        );
        let role = match form.role.as_deref().map(str::trim) {
            None | Some("") => Some(self.config.default_role().to_string()),
            Some("admin") => None,
            Some(role)
                if self
                    .config
                    .self_assignable_roles
                    .iter()
                    .any(|allowed| allowed == role) =>
            {
                Some(role.to_string())
            }
            Some(_) => {
                let choices = self.config.self_assignable_roles.join(", ");
                errors.add("role", format!("Choose one of: {choices}."));
                None
            }
        };
        errors.into_result()?;
        let (Some(email), Some(password), Some(first_name), Some(last_name), Some(phone_number)) =
            (email, password, first_name, last_name, phone_number)
        else {
            return Err(AuthError::Internal(
                "registration check lost a value".into(),
            ));
        };
        if !email.domain_is_allowed(&self.config.allowed_email_domains) {
            return Err(AuthError::EmailDomainNotAllowed);
        }
        let role = role.ok_or(AuthError::RoleNotAllowed)?;
        Ok(NewAccount {
            email,
            password,
            first_name,
            last_name,
            phone_number,
            role,
        })
    }
}

pub(super) async fn find_user(
    db: &impl ConnectionTrait,
    email: &Email,
) -> Result<Option<users::Model>, AuthError> {
    Ok(users::Entity::find()
        .filter(users::Column::Email.eq(email.as_str()))
        .one(db)
        .await?)
}

/// The `email` and `otp` fields every code check takes.
pub(super) fn parse_email_and_code(email: &str, code: &str) -> Result<(Email, String), AuthError> {
    let mut errors = FieldErrors::new();
    let email = errors.check("email", Email::parse(email));
    let code = code.trim();
    if code.is_empty() {
        errors.add("otp", "This field is required.");
    }
    errors.into_result()?;
    let email = email.ok_or_else(|| AuthError::Internal("email check lost its value".into()))?;
    Ok((email, code.to_string()))
}
