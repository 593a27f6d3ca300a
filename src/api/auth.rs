//! The bearer security scheme: access tokens checked offline, against the key set in memory.

use std::sync::Arc;

use poem::Request;
use poem_openapi::{SecurityScheme, auth::Bearer};

use super::error::{ApiError, ErrorCode};
use crate::{app::AppState, tokens::AccessClaims};

/// An access token from `POST /auth/login` (or verify-otp / refresh), sent as
/// `Authorization: Bearer <token>`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_access_token")]
pub struct BearerAuth(pub AccessClaims);

async fn check_access_token(request: &Request, bearer: Bearer) -> poem::Result<AccessClaims> {
    let state = request
        .data::<Arc<AppState>>()
        .ok_or_else(|| ApiError::new(ErrorCode::InternalError))?;
    state
        .access_tokens
        .verify(&bearer.token)
        .await
        .map_err(|reason| {
            tracing::debug!(%reason, "access token refused");
            ApiError::new(ErrorCode::Unauthorized).into()
        })
}
