//! A resource server that trusts authgate: it validates access tokens offline with authgate's
//! JWKS (see `jwks.rs`) and never calls authgate per request.
//!
//! ```sh
//! AUTHGATE_URL=http://127.0.0.1:8080 cargo run --example resource_server
//! curl -H "Authorization: Bearer $ACCESS" http://127.0.0.1:3000/protected
//! ```
//! Variables: `AUTHGATE_URL` (where authgate serves), `AUTHGATE_ISSUER` (its
//! `AUTHGATE_PUBLIC_URL`, default `AUTHGATE_URL`), `AUTHGATE_AUDIENCE` (default `authgate`),
//! `LISTEN` (default `127.0.0.1:3000`).

mod jwks;

use std::sync::Arc;

use poem::{
    EndpointExt, Request, Route, Server, get, handler,
    http::StatusCode,
    listener::{Acceptor, Listener, TcpListener},
    web::{Data, Json},
};
use serde_json::{Value, json};

use jwks::JwksVerifier;

#[handler]
async fn protected(
    request: &Request,
    verifier: Data<&Arc<JwksVerifier>>,
) -> (StatusCode, Json<Value>) {
    let token = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let Some(token) = token else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "unauthorized"})),
        );
    };
    match verifier.verify(token).await {
        Ok(claims) => (
            StatusCode::OK,
            Json(json!({
                "sub": claims.sub, "email": claims.email, "email_verified": claims.email_verified,
                "role": claims.role, "sid": claims.sid, "expires_at": claims.exp,
            })),
        ),
        Err(reason) => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "unauthorized", "reason": format!("{reason:?}")})),
        ),
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let variable =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_string());
    let authgate_url = variable("AUTHGATE_URL", "http://127.0.0.1:8080");
    let issuer = variable("AUTHGATE_ISSUER", &authgate_url);
    let audience = variable("AUTHGATE_AUDIENCE", "authgate");
    let verifier = Arc::new(JwksVerifier::new(&authgate_url, &issuer, &audience));

    let acceptor = TcpListener::bind(variable("LISTEN", "127.0.0.1:3000"))
        .into_acceptor()
        .await?;
    if let Some(address) = acceptor
        .local_addr()
        .first()
        .and_then(|addr| addr.as_socket_addr().copied())
    {
        // Tests start this example on port 0 and read the address from here.
        println!("listening on http://{address}");
    }
    let app = Route::new().at("/protected", get(protected)).data(verifier);
    Server::new_with_acceptor(acceptor).run(app).await
}
