//! The bearer security scheme: access tokens checked offline against the key set in memory,
//! then the account behind them (a user disabled or deleted since the token was minted is
//! refused).

use std::sync::Arc;

use poem::Request;
use poem_openapi::{SecurityScheme, auth::Bearer};

use super::error::{ApiError, ErrorCode};
use crate::{
    app::AppState,
    domain::{Account, AuthError, accounts::ADMIN_ROLE},
    tokens::{AccessClaims, TokenRejected},
};

/// The `access` token from `POST /auth/login` (or `/auth/verify-otp`, `/auth/mfa/verify`,
/// `/auth/token/refresh`), sent as `Authorization: Bearer <token>`. In Swagger UI's
/// *Authorize* dialog, paste the token alone, without `Bearer `: the UI adds it.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_access_token")]
pub struct BearerAuth(pub Caller);

/// Who is calling: the token's claims and the account, as it is now (from memory or the
/// database, see `Accounts::current`), found once per request.
pub struct Caller {
    pub claims: AccessClaims,
    pub account: Arc<Account>,
    /// The caller's role is in `AUTHGATE_MFA_REQUIRED_ROLES` and the token was not issued
    /// after a second factor.
    lacks_required_second_factor: bool,
}

impl Caller {
    /// The caller, if their account holds `admin` (read from the account, not the token, so a
    /// demotion counts at once); any other role gets 403 `forbidden`.
    /// With the role in `AUTHGATE_MFA_REQUIRED_ROLES`, the token must come from a sign-in
    /// with a second factor (`mfa` in `amr`): else 403 `mfa_required`.
    pub fn admin(&self) -> Result<&Account, ApiError> {
        if self.account.role != ADMIN_ROLE {
            return Err(ApiError::new(ErrorCode::Forbidden));
        }
        if self.lacks_required_second_factor {
            return Err(AuthError::MfaRequired {
                challenge: None,
                methods: self.account.mfa.methods.clone(),
            }
            .into());
        }
        Ok(&self.account)
    }
}

/// The caller of an operation that also works without a token (`POST /auth/mfa/challenge`):
/// `None` without an `Authorization` header, 401 for a bad one.
pub async fn optional_caller(request: &Request) -> Result<Option<Caller>, ApiError> {
    let Some(header) = request.headers().get(poem::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let token = header
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized))?;
    caller(request, token).await.map(Some)
}

/// What was wrong with the header, for the person reading the 401 (the token itself is never
/// echoed).
fn refusal_message(token: &str, reason: &TokenRejected) -> &'static str {
    if token
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("bearer ")
    {
        return "The Authorization header says `Bearer` twice: send `Bearer <token>` (in \
                Swagger UI's Authorize dialog, paste the token alone).";
    }
    match reason {
        TokenRejected::Malformed => {
            "The bearer token is not a JWT: send the `access` token of the sign-in answer, not \
             the refresh token."
        }
        TokenRejected::WrongType => "The bearer token is not an access token.",
        TokenRejected::CriticalExtension => {
            "The access token names critical header extensions this service does not know."
        }
        TokenRejected::UnknownKey => {
            "The access token was signed with a key this service does not know."
        }
        TokenRejected::Invalid => "The access token's signature, issuer or audience is wrong.",
        TokenRejected::OutsideLifetime => {
            "The access token has expired: get a new one at /auth/token/refresh."
        }
    }
}

async fn check_access_token(request: &Request, bearer: Bearer) -> poem::Result<Caller> {
    Ok(caller(request, &bearer.token).await?)
}

async fn caller(request: &Request, token: &str) -> Result<Caller, ApiError> {
    let state = request
        .data::<Arc<AppState>>()
        .ok_or_else(|| ApiError::new(ErrorCode::InternalError))?;
    let claims = state.access_tokens.verify(token).await.map_err(|reason| {
        tracing::debug!(%reason, "access token refused");
        ApiError::new(ErrorCode::Unauthorized).with_message(refusal_message(token, &reason))
    })?;
    let account = state
        .accounts
        .current(claims.sub)
        .await
        .map_err(ApiError::from)?;
    let lacks_required_second_factor = state.config.mfa_required_roles.contains(&account.role)
        && !claims.amr.iter().any(|method| method == "mfa");
    Ok(Caller {
        claims,
        account,
        lacks_required_second_factor,
    })
}
