//! The HTTP server: binds, serves the API with the housekeeping running beside it, and shuts
//! down gracefully.

use std::{sync::Arc, time::Duration};

use poem::{
    Server,
    listener::{Acceptor, Listener, TcpListener},
};

use crate::{
    api,
    app::{AppState, StartupError, housekeeping},
};

/// A bound, not yet serving, HTTP server: tests bind port 0 and read the address.
pub struct BoundServer {
    acceptor: poem::listener::TcpAcceptor,
    state: Arc<AppState>,
}

impl BoundServer {
    pub async fn bind(state: Arc<AppState>, address: &str) -> Result<BoundServer, StartupError> {
        let acceptor = TcpListener::bind(address.to_string())
            .into_acceptor()
            .await
            .map_err(|source| StartupError::Listen {
                address: address.into(),
                source,
            })?;
        Ok(BoundServer { acceptor, state })
    }

    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.acceptor
            .local_addr()
            .first()
            .and_then(|addr| addr.as_socket_addr().copied())
    }

    /// Serves until `shutdown` resolves, then lets requests in flight finish for at most
    /// `grace`.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send,
        grace: Duration,
    ) -> std::io::Result<()> {
        let _background = housekeeping::start(Arc::clone(&self.state));
        Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(api::endpoint(self.state), shutdown, Some(grace))
            .await
    }
}
