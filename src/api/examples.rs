//! Examples for the OpenAPI document, in one place: what Swagger UI pre-fills and shows.

use chrono::{DateTime, Utc};
use poem_openapi::types::{Example, MaybeUndefined};
use serde_json::json;
use uuid::Uuid;

use crate::{
    domain::{
        Account, TokenPair,
        accounts::{AccountStatus, Metadata, MfaSummary, Profile},
        second_factors::Method,
    },
    flows::{
        CodeRequest, EmailRequest,
        account_edit::UpdateProfile,
        admin_lifecycle::DisableRequest,
        admin_users::{AdminUpdateRequest, CreateUserRequest},
        deletion::{CONFIRMATION, DeleteAccountRequest, DeletionScheduled, DeletionState},
        email_change::{EmailChangeConfirmation, EmailChangeRequest},
        me::{ChangePasswordRequest, UpdateMeRequest},
        password_reset::ResetRequest,
        registration::{CodeContext, RegisterRequest, ResendRequest, VerifyRequest},
        sign_in::{LoginRequest, MfaVerifyRequest},
        two_factor::{FactorCode, PasswordAndCode, PasswordConfirmation},
    },
};

const EMAIL: &str = "jane@example.com";
const PASSWORD: &str = "correct horse battery staple";
const NEW_PASSWORD: &str = "a new battery staple";
const CODE: &str = "042917";

/// The time the examples happen at.
fn example_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-22T09:30:00Z").map_or_else(|_| Utc::now(), |t| t.to_utc())
}

impl Example for Account {
    fn example() -> Self {
        let at = example_time();
        Account {
            id: Uuid::from_u128(0x0b6c_4f1e_7a2d_4c3b_9e8f_1a2b_3c4d_5e6f),
            email: EMAIL.into(),
            username: Some("jane.doe".into()),
            first_name: "Jane".into(),
            last_name: "Doe".into(),
            phone_number: Some("+15551234567".into()),
            role: "user".into(),
            is_verified: true,
            is_active: true,
            status: AccountStatus::Active,
            deletion_scheduled_for: None,
            profile: Profile {
                bio: String::new(),
                avatar_url: None,
                date_of_birth: None,
            },
            metadata: Metadata::from([("department".into(), json!("Physics"))]),
            app_metadata: Metadata::new(),
            mfa: MfaSummary::default(),
            profile_complete: true,
            created_at: at,
            updated_at: at,
            last_login_at: Some(at),
            last_seen_at: Some(at),
        }
    }
}

impl Example for TokenPair {
    fn example() -> Self {
        TokenPair {
            access: "eyJhbGciOiJFZERTQSIsInR5cCI6ImF0K2p3dCIsImtpZCI6Ii4uLiJ9.eyJzdWIiOiIuLi4ifQ.c2lnbmF0dXJl".into(),
            refresh: "Xq3v0yJ8kM2pQ7sT1wZ4bN6cR9dF5gH0jL2mA8eU3iO".into(),
            token_type: "Bearer".into(),
            expires_in: 300,
            refresh_expires_in: 86_400,
        }
    }
}

impl Example for RegisterRequest {
    fn example() -> Self {
        Self {
            email: EMAIL.into(),
            password: PASSWORD.into(),
            password2: PASSWORD.into(),
            first_name: Some("Jane".into()),
            last_name: Some("Doe".into()),
            phone_number: Some("+15551234567".into()),
            role: Some("user".into()),
            username: Some("jane.doe".into()),
        }
    }
}

impl Example for CodeRequest {
    fn example() -> Self {
        Self {
            email: EMAIL.into(),
            otp: CODE.into(),
        }
    }
}

impl Example for VerifyRequest {
    fn example() -> Self {
        let CodeRequest { email, otp } = CodeRequest::example();
        Self {
            email,
            otp,
            password: None,
        }
    }
}

impl Example for ResendRequest {
    fn example() -> Self {
        Self {
            email: EMAIL.into(),
            context: Some(CodeContext::Registration),
        }
    }
}

impl Example for EmailRequest {
    fn example() -> Self {
        Self {
            email: EMAIL.into(),
        }
    }
}

impl Example for MfaVerifyRequest {
    fn example() -> Self {
        Self {
            mfa_token: "kV3cUu2sPj0l8zG6bQx1yN4tR7wA9eH5mD2fK8oJ3iL".into(),
            method: Some(Method::Totp),
            code: "123456".into(),
            remember_device: true,
            device_name: Some("Jane's laptop".into()),
        }
    }
}

impl Example for LoginRequest {
    fn example() -> Self {
        Self {
            device_token: None,
            login: EMAIL.into(),
            email: String::new(),
            password: PASSWORD.into(),
        }
    }
}

impl Example for ResetRequest {
    fn example() -> Self {
        Self {
            email: EMAIL.into(),
            otp: CODE.into(),
            new_password: NEW_PASSWORD.into(),
            confirm_password: NEW_PASSWORD.into(),
        }
    }
}

impl Example for UpdateMeRequest {
    fn example() -> Self {
        Self {
            first_name: MaybeUndefined::Value("Jane".into()),
            last_name: MaybeUndefined::Value("Doe".into()),
            phone_number: MaybeUndefined::Undefined,
            username: MaybeUndefined::Value("jane.doe".into()),
            metadata: MaybeUndefined::Value(Metadata::from([
                ("department".into(), json!("Physics")),
                ("year".into(), json!(2)),
            ])),
            profile: MaybeUndefined::Value(UpdateProfile {
                bio: MaybeUndefined::Value("Rust and mountains.".into()),
                avatar_url: MaybeUndefined::Null,
                date_of_birth: MaybeUndefined::Value("1990-04-01".into()),
                other: Default::default(),
            }),
            other: Default::default(),
        }
    }
}

impl Example for CreateUserRequest {
    fn example() -> Self {
        Self {
            email: EMAIL.into(),
            role: Some("user".into()),
            username: Some("jane.doe".into()),
            first_name: Some("Jane".into()),
            last_name: Some("Doe".into()),
            password: None,
            other: Default::default(),
        }
    }
}

impl Example for AdminUpdateRequest {
    fn example() -> Self {
        Self {
            role: MaybeUndefined::Value("admin".into()),
            app_metadata: MaybeUndefined::Value(Metadata::from([
                ("plan".into(), json!("pro")),
                ("trial".into(), json!(null)),
            ])),
            ..Default::default()
        }
    }
}

impl Example for ChangePasswordRequest {
    fn example() -> Self {
        Self {
            current_password: PASSWORD.into(),
            new_password: NEW_PASSWORD.into(),
            confirm_password: NEW_PASSWORD.into(),
            mfa_code: None,
        }
    }
}

impl Example for PasswordConfirmation {
    fn example() -> Self {
        Self {
            password: PASSWORD.into(),
        }
    }
}

impl Example for FactorCode {
    fn example() -> Self {
        Self {
            code: "123456".into(),
        }
    }
}

impl Example for PasswordAndCode {
    fn example() -> Self {
        Self {
            password: PASSWORD.into(),
            code: "123456".into(),
        }
    }
}

impl Example for EmailChangeRequest {
    fn example() -> Self {
        Self {
            new_email: "jane.doe@example.org".into(),
            password: PASSWORD.into(),
            mfa_code: None,
        }
    }
}

impl Example for EmailChangeConfirmation {
    fn example() -> Self {
        Self { otp: CODE.into() }
    }
}

impl Example for DeleteAccountRequest {
    fn example() -> Self {
        Self {
            password: PASSWORD.into(),
            confirmation: CONFIRMATION.into(),
            mfa_code: None,
        }
    }
}

impl Example for DeletionScheduled {
    fn example() -> Self {
        Self {
            status: DeletionState::PendingDeletion,
            deletion_scheduled_for: example_time() + chrono::TimeDelta::days(7),
        }
    }
}

impl Example for DisableRequest {
    fn example() -> Self {
        Self {
            reason: Some("Chargeback fraud, ticket 4711".into()),
        }
    }
}
