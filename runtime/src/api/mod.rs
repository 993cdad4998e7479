//! The API surface: the action table (and HTTP routing over it), the dispatcher every
//! transport shares, and the transports themselves (HTTP with `/_query`, WebSocket).

pub mod dispatch;
pub mod expiry;
pub mod http;
pub mod table;
pub mod ws;

use crate::service::app::App;
use std::net::SocketAddr;
use std::sync::Arc;
use warp::{Filter, Reply};

/// Serves HTTP on `listener` until `shutdown` resolves.
pub async fn serve(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let ws_app = app.clone();
    let websocket = warp::path::end().and(warp::ws()).and(warp::addr::remote()).map(
        move |ws: warp::ws::Ws, addr: Option<SocketAddr>| {
            let app = ws_app.clone();
            let max = app.config.max_body_bytes;
            ws.max_message_size(max)
                .max_frame_size(max)
                .on_upgrade(move |socket| ws::serve(app, socket, addr.map(|a| a.ip().to_string())))
                .into_response()
        },
    );
    let routes = websocket.or(http::filter(app.clone())).unify();
    let sweeper = tokio::spawn(app.clone().sweep_expired_keys());
    warp::serve(routes).incoming(listener).graceful(shutdown).run().await;
    sweeper.abort();
}

/// Binds `addr`; an error names the address.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))
}
