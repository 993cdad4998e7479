//! The `server` controller: what a client asks before logging in.

use crate::core::errors::KError;
use crate::protocol::Reply;
use crate::service::context::Ctx;
use serde_json::json;

pub async fn info(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    Ok(json!({
        "serverInfo": {
            "kuzzle": {
                "name": "sandgate",
                "version": env!("CARGO_PKG_VERSION"),
                "nodeId": ctx.app.node,
                "api": { "routes": ctx.api.public_api() },
                "strategies": ctx.app.sandbox.names(),
            }
        }
    })
    .into())
}

pub async fn public_api(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    Ok(ctx.api.public_api().into())
}

pub async fn now(_ctx: &Ctx<'_>) -> Result<Reply, KError> {
    Ok(json!({ "now": crate::tokens::now_ms() }).into())
}

/// Answers once the server serves: the store and the sandbox are up by then.
pub async fn health_check(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    Ok(json!({ "status": "green", "strategies": ctx.app.sandbox.count() }).into())
}
