//! The signed-in user: their record and profile.

use std::{collections::BTreeMap, sync::Arc};

use poem::web::Data;
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    payload::Json,
    types::{Example, MaybeUndefined},
};
use serde::Deserialize;
use serde_json::Value;

use super::{
    ApiTags,
    auth::BearerAuth,
    error::{ApiError, ApiErrors, ErrorCode, error_set},
    json::JsonBody,
    models::{Tokens, User},
};
use crate::{
    app::AppState,
    domain::{ClientInfo, error::FieldErrors, profile::ProfileChanges, sessions::PasswordChange},
};

pub struct MeApi;

/// Fields of the user object a user may change. Send only what changes; `null` clears a
/// field. Sending a read-only field (`email`, `role`, `is_verified`, …) is an error.
#[derive(Debug, Default, Object, Deserialize)]
#[oai(example)]
#[serde(default)]
pub struct UpdateMeRequest {
    pub first_name: MaybeUndefined<String>,
    pub last_name: MaybeUndefined<String>,
    /// International form, e.g. `+15551234567`.
    pub phone_number: MaybeUndefined<String>,
    pub profile: MaybeUndefined<UpdateProfile>,
    /// Everything else that was sent, to be refused by name.
    #[oai(skip)]
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Clone, Object, Deserialize)]
#[serde(default)]
pub struct UpdateProfile {
    /// Up to 1000 characters.
    pub bio: MaybeUndefined<String>,
    /// An http(s) URL.
    pub avatar_url: MaybeUndefined<String>,
    /// `YYYY-MM-DD`, between 1900-01-01 and today.
    pub date_of_birth: MaybeUndefined<String>,
    #[oai(skip)]
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

impl Example for UpdateMeRequest {
    fn example() -> Self {
        Self {
            first_name: MaybeUndefined::Value("Jane".into()),
            last_name: MaybeUndefined::Value("Doe".into()),
            phone_number: MaybeUndefined::Undefined,
            profile: MaybeUndefined::Value(UpdateProfile {
                bio: MaybeUndefined::Value("Rust and mountains.".into()),
                avatar_url: MaybeUndefined::Null,
                date_of_birth: MaybeUndefined::Value("1990-04-01".into()),
                other: BTreeMap::new(),
            }),
            other: BTreeMap::new(),
        }
    }
}

/// No `Debug`: it carries a secret.
#[derive(Default, Object, Deserialize)]
#[oai(example)]
#[serde(default)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    /// The same rules as at registration.
    pub new_password: String,
    pub confirm_password: String,
}

impl Example for ChangePasswordRequest {
    fn example() -> Self {
        Self {
            current_password: "correct horse battery staple".into(),
            new_password: "a new battery staple".into(),
            confirm_password: "a new battery staple".into(),
        }
    }
}

#[derive(Debug, Object)]
pub struct PasswordChanged {
    pub message: String,
    #[oai(flatten)]
    pub tokens: Tokens,
}

#[derive(ApiResponse)]
pub enum ChangePasswordResponse {
    /// The password is changed; every session is revoked and this device gets a new one.
    #[oai(status = 200)]
    Ok(Json<PasswordChanged>),
}

#[derive(ApiResponse)]
pub enum MeResponse {
    /// The signed-in user.
    #[oai(status = 200)]
    Ok(Json<User>),
}

error_set!(MeErrors: Unauthorized);
error_set!(ChangePasswordErrors: ValidationFailed, InvalidJson, UnsupportedMediaType, PayloadTooLarge,
    Unauthorized, InvalidCredentials, Overloaded, RateLimited);
error_set!(UpdateMeErrors: ValidationFailed, InvalidJson, UnsupportedMediaType, PayloadTooLarge, Unauthorized);

/// Fields of the user object that only the service sets.
const READ_ONLY: &[&str] = &[
    "id",
    "email",
    "role",
    "is_verified",
    "is_active",
    "profile_complete",
    "created_at",
    "updated_at",
    "last_login_at",
    "password",
    "password_hash",
];

#[OpenApi(tag = "ApiTags::Me")]
impl MeApi {
    /// The signed-in user
    ///
    /// A user deleted or disabled after the token was issued gets 401.
    #[oai(path = "/auth/me", method = "get")]
    async fn me(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
    ) -> Result<MeResponse, ApiErrors<MeErrors>> {
        let account = state.auth.current_account(auth.0.sub).await?;
        Ok(MeResponse::Ok(Json(account.into())))
    }

    /// Change your name, phone number or profile
    ///
    /// A partial update: fields not sent are left alone, `null` clears one.
    #[oai(path = "/auth/me", method = "patch")]
    async fn update_me(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        body: JsonBody<UpdateMeRequest>,
    ) -> Result<MeResponse, ApiErrors<UpdateMeErrors>> {
        update(&state, auth, body.0).await
    }

    /// Change your name, phone number or profile (same as PATCH)
    ///
    /// Has the partial meaning of PATCH: fields not sent are left alone.
    #[oai(path = "/auth/me", method = "put")]
    async fn replace_me(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
        body: JsonBody<UpdateMeRequest>,
    ) -> Result<MeResponse, ApiErrors<UpdateMeErrors>> {
        update(&state, auth, body.0).await
    }

    /// Change your password
    ///
    /// Needs the current password (401 `invalid_credentials` when wrong). Every session of
    /// the account is revoked and this device gets a new token pair, so whoever else knew the
    /// old password is signed out everywhere. A notice is mailed.
    #[oai(path = "/auth/change-password", method = "post")]
    async fn change_password(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        auth: BearerAuth,
        body: JsonBody<ChangePasswordRequest>,
    ) -> Result<ChangePasswordResponse, ApiErrors<ChangePasswordErrors>> {
        let body = body.0;
        let change = PasswordChange {
            current_password: body.current_password,
            new_password: body.new_password,
            confirm_password: body.confirm_password,
        };
        let tokens = state
            .auth
            .change_password(auth.0.sub, change, client.0)
            .await?;
        Ok(ChangePasswordResponse::Ok(Json(PasswordChanged {
            message: "Your password was changed.".into(),
            tokens: tokens.into(),
        })))
    }
}

async fn update(
    state: &AppState,
    auth: BearerAuth,
    request: UpdateMeRequest,
) -> Result<MeResponse, ApiErrors<UpdateMeErrors>> {
    let changes = profile_changes(request)?;
    let account = state.auth.update_profile(auth.0.sub, changes).await?;
    Ok(MeResponse::Ok(Json(account.into())))
}

fn profile_changes(request: UpdateMeRequest) -> Result<ProfileChanges, ApiError> {
    let mut refused = FieldErrors::new();
    for field in request.other.keys() {
        refused.add(field, refusal(field, READ_ONLY.contains(&field.as_str())));
    }
    let profile = match request.profile {
        MaybeUndefined::Value(profile) => profile,
        MaybeUndefined::Null => {
            refused.add("profile", "Send an object with the fields to change.");
            UpdateProfile::default()
        }
        MaybeUndefined::Undefined => UpdateProfile::default(),
    };
    for field in profile.other.keys() {
        refused.add(&format!("profile.{field}"), refusal(field, false));
    }
    if !refused.is_empty() {
        return Err(ApiError::new(ErrorCode::ValidationFailed).with_fields(refused.into_map()));
    }
    Ok(ProfileChanges {
        first_name: change(request.first_name),
        last_name: change(request.last_name),
        phone_number: change(request.phone_number),
        bio: change(profile.bio),
        avatar_url: change(profile.avatar_url),
        date_of_birth: change(profile.date_of_birth),
    })
}

fn refusal(field: &str, read_only: bool) -> String {
    if read_only {
        format!("The field {field} is read-only.")
    } else {
        format!("Unknown field {field}.")
    }
}

fn change(value: MaybeUndefined<String>) -> Option<Option<String>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(value) => Some(Some(value)),
    }
}
