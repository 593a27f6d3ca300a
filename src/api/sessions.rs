//! The signed-in user's sessions: list them, end one, end all.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, payload::Json};
use uuid::Uuid;

use super::{
    ApiTags,
    auth::BearerAuth,
    error::{ApiErrors, error_set},
};
use crate::{
    app::AppState,
    domain::{ClientInfo, error::AuthError},
};

pub struct SessionsApi;

/// One signed-in device.
#[derive(Debug, Object)]
pub struct Session {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    /// When the session ends unless refreshed again (never later than its absolute limit).
    pub expires_at: DateTime<Utc>,
    #[oai(nullable)]
    pub user_agent: Option<String>,
    #[oai(nullable)]
    pub ip: Option<String>,
    /// True for the session of the access token making this request.
    pub current: bool,
}

#[derive(ApiResponse)]
pub enum SessionsResponse {
    /// Sessions that can still be refreshed, most recently used first.
    #[oai(status = 200)]
    Ok(Json<Vec<Session>>),
}

#[derive(ApiResponse)]
pub enum EndedResponse {
    /// Done. Access tokens already issued stay valid until they expire.
    #[oai(status = 204)]
    Ended,
}

error_set!(SessionsErrors: Unauthorized);
error_set!(EndSessionErrors: Unauthorized, NotFound);

#[OpenApi(tag = "ApiTags::Sessions")]
impl SessionsApi {
    /// Your sessions
    #[oai(path = "/auth/sessions", method = "get")]
    async fn sessions(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
    ) -> Result<SessionsResponse, ApiErrors<SessionsErrors>> {
        let sessions = state.auth.sessions_of(auth.0.sub).await?;
        Ok(SessionsResponse::Ok(Json(
            sessions
                .into_iter()
                .map(|session| Session {
                    current: session.id == auth.0.sid,
                    id: session.id,
                    created_at: session.created_at,
                    last_used_at: session.last_used_at,
                    expires_at: session.expires_at,
                    user_agent: session.user_agent,
                    ip: session.ip,
                })
                .collect(),
        )))
    }

    /// End one of your sessions
    ///
    /// Its refresh token stops working at once. A session that is not yours, already ended
    /// or unknown is 404.
    #[oai(path = "/auth/sessions/:id", method = "delete")]
    async fn end_session(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        auth: BearerAuth,
        /// The session id from `GET /auth/sessions`.
        id: Path<String>,
    ) -> Result<EndedResponse, ApiErrors<EndSessionErrors>> {
        let session_id = Uuid::parse_str(&id.0).map_err(|_| AuthError::NotFound)?;
        state
            .auth
            .end_session(auth.0.sub, session_id, client.0)
            .await?;
        Ok(EndedResponse::Ended)
    }

    /// Sign out everywhere
    ///
    /// Revokes every session of the user, this one included.
    #[oai(path = "/auth/logout-all", method = "post", tag = "ApiTags::Tokens")]
    async fn logout_all(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        auth: BearerAuth,
    ) -> Result<EndedResponse, ApiErrors<SessionsErrors>> {
        state.auth.end_all_sessions(auth.0.sub, client.0).await?;
        Ok(EndedResponse::Ended)
    }
}
