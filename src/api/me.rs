//! The signed-in user: their record and profile.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use super::{
    ApiTags,
    auth::BearerAuth,
    error::{ApiErrors, error_set},
    json::JsonBody,
};
use crate::{
    app::AppState,
    domain::{Account, ClientInfo, TokenPair},
    flows::me::{ChangePasswordRequest, UpdateMeRequest},
};

#[derive(Default)]
pub struct MeApi;

#[derive(Debug, Object)]
pub struct PasswordChanged {
    pub message: String,
    #[oai(flatten)]
    pub tokens: TokenPair,
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
    Ok(Json<Arc<Account>>),
}

error_set!(MeErrors[BEARER]);
error_set!(ChangePasswordErrors[JSON_BODY, BEARER]: InvalidCredentials, MfaRequired, InvalidMfaCode, Overloaded, RateLimited);
error_set!(UpdateMeErrors[JSON_BODY, BEARER]: UsernameTaken);

#[OpenApi(tag = "ApiTags::Me")]
impl MeApi {
    /// The signed-in user
    ///
    /// A user deleted or disabled after the token was issued gets 401.
    #[oai(path = "/auth/me", method = "get")]
    async fn me(&self, auth: BearerAuth) -> Result<MeResponse, ApiErrors<MeErrors>> {
        Ok(MeResponse::Ok(Json(auth.0.account)))
    }

    /// Change your name, phone number or profile
    ///
    /// A partial update: fields not sent are left alone, `null` clears one.
    #[oai(path = "/auth/me", method = "patch")]
    async fn update_me(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        auth: BearerAuth,
        body: JsonBody<UpdateMeRequest>,
    ) -> Result<MeResponse, ApiErrors<UpdateMeErrors>> {
        let account = state.me.update(&auth.0.account, body.0, client.0).await?;
        Ok(MeResponse::Ok(Json(Arc::new(account))))
    }

    /// Change your name, phone number or profile (same as PATCH)
    ///
    /// Has the partial meaning of PATCH: fields not sent are left alone.
    #[oai(path = "/auth/me", method = "put")]
    async fn replace_me(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        auth: BearerAuth,
        body: JsonBody<UpdateMeRequest>,
    ) -> Result<MeResponse, ApiErrors<UpdateMeErrors>> {
        self.update_me(state, client, auth, body).await
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
        let tokens = state
            .me
            .change_password(&auth.0.account, body.0, client.0)
            .await?;
        Ok(ChangePasswordResponse::Ok(Json(PasswordChanged {
            message: "Your password was changed.".into(),
            tokens,
        })))
    }
}
