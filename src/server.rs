//! The HTTP servers: the API on the public address, Prometheus metrics on their own (loopback
//! by default, never the public port, where they would tell anyone which addresses have
//! accounts), with the background work running beside them and a graceful shutdown.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use poem::{
    Server,
    listener::{Acceptor, Listener, TcpAcceptor, TcpListener},
};

use crate::{
    api,
    app::{AppState, StartupError, housekeeping},
};

/// Bound, not yet serving, listeners. They are bound before anything else starts, so a port
/// in use stops start-up before a database or key is created; tests bind port 0 and read the
/// address.
pub struct BoundServer {
    api: TcpAcceptor,
    metrics: Option<TcpAcceptor>,
}

impl BoundServer {
    pub async fn bind(
        address: SocketAddr,
        metrics_address: Option<SocketAddr>,
    ) -> Result<BoundServer, StartupError> {
        let api = bind(address).await?;
        let metrics = match metrics_address {
            Some(address) => Some(bind(address).await?),
            None => None,
        };
        Ok(BoundServer { api, metrics })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        address_of(&self.api)
    }

    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(address_of)
    }

    /// Serves `state` until `shutdown` resolves, then lets requests in flight finish for at
    /// most `grace`.
    pub async fn serve(
        self,
        state: Arc<AppState>,
        shutdown: impl std::future::Future<Output = ()> + Send,
        grace: Duration,
    ) -> std::io::Result<()> {
        let _background = housekeeping::start(Arc::clone(&state));
        let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
        let metrics = self.metrics.map(|acceptor| {
            let endpoint = api::metrics_endpoint(Arc::clone(&state));
            tokio::spawn(
                Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(
                    endpoint,
                    async {
                        let _ = metrics_stopped.await;
                    },
                    Some(Duration::from_secs(1)),
                ),
            )
        });
        let served = Server::new_with_acceptor(self.api)
            .run_with_graceful_shutdown(api::endpoint(state), shutdown, Some(grace))
            .await;
        let _ = stop_metrics.send(());
        if let Some(metrics) = metrics {
            let _ = metrics.await;
        }
        served
    }
}

async fn bind(address: SocketAddr) -> Result<TcpAcceptor, StartupError> {
    TcpListener::bind(address)
        .into_acceptor()
        .await
        .map_err(|source| StartupError::Listen {
            address: address.to_string(),
            source,
        })
}

fn address_of(acceptor: &TcpAcceptor) -> Option<SocketAddr> {
    acceptor
        .local_addr()
        .first()
        .and_then(|addr| addr.as_socket_addr().copied())
}
