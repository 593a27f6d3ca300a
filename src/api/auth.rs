//! The bearer security scheme: access tokens checked offline against the key set in memory,
//! then the account behind them (a user disabled or deleted since the token was minted is
//! refused).

use std::sync::Arc;

use poem::Request;
use poem_openapi::{SecurityScheme, auth::Bearer};

use super::error::{ApiError, ErrorCode};
use crate::{
    app::AppState,
    domain::{Account, accounts::ADMIN_ROLE},
    tokens::AccessClaims,
};

/// An access token from `POST /auth/login` (or verify-otp / refresh), sent as
/// `Authorization: Bearer <token>`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_access_token")]
pub struct BearerAuth(pub Caller);

/// Who is calling: the token's claims and the account, loaded once per request.
pub struct Caller {
    pub claims: AccessClaims,
    pub account: Account,
}

impl Caller {
    /// The caller, if their account holds `admin` (read from the account, not the token, so a
    /// demotion counts at once); any other role gets 403 `forbidden`.
    pub fn admin(&self) -> Result<&Account, ApiError> {
        if self.account.role == ADMIN_ROLE {
            Ok(&self.account)
        } else {
            Err(ApiError::new(ErrorCode::Forbidden))
        }
    }
}

async fn check_access_token(request: &Request, bearer: Bearer) -> poem::Result<Caller> {
    let state = request
        .data::<Arc<AppState>>()
        .ok_or_else(|| ApiError::new(ErrorCode::InternalError))?;
    let claims = state
        .access_tokens
        .verify(&bearer.token)
        .await
        .map_err(|reason| {
            tracing::debug!(%reason, "access token refused");
            ApiError::new(ErrorCode::Unauthorized)
        })?;
    let account = state
        .accounts
        .current(claims.sub)
        .await
        .map_err(ApiError::from)?;
    Ok(Caller { claims, account })
}
