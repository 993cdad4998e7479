//! The API surface: the route table, the request/response envelope, Kuzzle's errors, the
//! dispatcher every transport shares, and the transports themselves.

pub mod dispatch;
pub mod errors;
pub mod http;
pub mod request;
pub mod routes;

use crate::app::App;
use std::net::SocketAddr;
use std::sync::Arc;
use warp::Filter;

/// Serves HTTP on `listener` until `shutdown` resolves.
pub async fn serve(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let routes = http::filter(app);
    warp::serve(routes).incoming(listener).graceful(shutdown).run().await;
}

/// Binds `addr`; an error names the address.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))
}

#[allow(unused_imports)]
use Filter as _;
