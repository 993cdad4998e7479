//! The caller's own credentials (`/_me/credentials/:strategy/...`) and getStrategies.

use super::strategy_arg;
use crate::actions::Ctx;
use crate::api::errors::KError;
use crate::api::request::Reply;
use crate::security::credentials as ops;
use serde_json::json;

fn me<'a>(ctx: &'a Ctx) -> &'a str {
    ctx.caller.kuid()
}

pub fn get_strategies(ctx: &Ctx) -> Result<Reply, KError> {
    Ok(json!(ctx.app.sandbox.names()).into())
}

pub fn get_mine(ctx: &Ctx) -> Result<Reply, KError> {
    let s = strategy_arg(ctx)?;
    ops::do_get(ctx, &s, me(ctx)).map(Reply::new)
}

pub fn exist_mine(ctx: &Ctx) -> Result<Reply, KError> {
    let s = strategy_arg(ctx)?;
    ops::do_exists(ctx, &s, me(ctx)).map(Reply::new)
}

pub fn create_mine(ctx: &Ctx) -> Result<Reply, KError> {
    let s = strategy_arg(ctx)?;
    ops::do_create(ctx, &s, me(ctx)).map(Reply::new)
}

pub fn update_mine(ctx: &Ctx) -> Result<Reply, KError> {
    let s = strategy_arg(ctx)?;
    ops::do_update(ctx, &s, me(ctx)).map(Reply::new)
}

pub fn validate_mine(ctx: &Ctx) -> Result<Reply, KError> {
    let s = strategy_arg(ctx)?;
    ops::do_validate(ctx, &s, me(ctx)).map(Reply::new)
}

pub fn delete_mine(ctx: &Ctx) -> Result<Reply, KError> {
    let s = strategy_arg(ctx)?;
    ops::do_delete(ctx, &s, me(ctx)).map(Reply::new)
}
