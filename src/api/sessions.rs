//! The signed-in user's sessions: list them, end one, end all.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{ApiResponse, OpenApi, param::Path, payload::Json};
use uuid::Uuid;

use super::{
    ApiTags,
    auth::BearerAuth,
    error::{ApiErrors, error_set},
};
use crate::{
    app::AppState,
    domain::{AuthError, ClientInfo, sessions::SessionView},
};

#[derive(Default)]
pub struct SessionsApi;

#[derive(ApiResponse)]
pub enum SessionsResponse {
    /// Sessions that can still be refreshed, most recently used first.
    #[oai(status = 200)]
    Ok(Json<Vec<SessionView>>),
}

#[derive(ApiResponse)]
pub enum EndedResponse {
    /// Done. Access tokens already issued stay valid until they expire.
    #[oai(status = 204)]
    Ended,
}

error_set!(SessionsErrors[BEARER]);
error_set!(EndSessionErrors[BEARER]: NotFound);

#[OpenApi(tag = "ApiTags::Sessions")]
impl SessionsApi {
    /// Your sessions
    #[oai(path = "/auth/sessions", method = "get")]
    async fn sessions(
        &self,
        state: Data<&Arc<AppState>>,
        auth: BearerAuth,
    ) -> Result<SessionsResponse, ApiErrors<SessionsErrors>> {
        let caller = auth.0;
        let sessions = state
            .sessions
            .list(caller.account.id, caller.claims.sid)
            .await?;
        Ok(SessionsResponse::Ok(Json(sessions)))
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
            .sessions
            .end(auth.0.account.id, session_id, None, client.0)
            .await?;
        Ok(EndedResponse::Ended)
    }

    /// Sign out everywhere
    ///
    /// Revokes every session of the user, this one included.
    #[oai(path = "/auth/logout-all", method = "post")]
    async fn logout_all(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientInfo>,
        auth: BearerAuth,
    ) -> Result<EndedResponse, ApiErrors<SessionsErrors>> {
        state.sessions.end_all(auth.0.account.id, client.0).await?;
        Ok(EndedResponse::Ended)
    }
}
