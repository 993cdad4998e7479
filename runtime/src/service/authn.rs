//! Authentication of a request: its token, checked, becomes a [`Caller`].

use super::context::Caller;
use crate::core::errors::{KError, defs};
use crate::service::app::App;

/// No token: anonymous. A token that fails (bad, revoked, expired, or whose user is gone)
/// fails the request, even for login and checkToken, as Kuzzle does.
pub async fn authenticate(app: &App, token: Option<&str>) -> Result<Caller, KError> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Ok(Caller::anonymous());
    };
    let session = app.tokens.check(token)?;
    let user = app
        .store
        .get_user(&session.kuid)
        .await
        .map_err(|e| KError::new(defs::SECURITY_TOKEN_VERIFICATION_ERROR, &[&e.to_string()]))?
        .ok_or_else(|| KError::new(defs::SECURITY_TOKEN_INVALID, &[]))?;
    Ok(Caller { user: Some(user), session: Some(session) })
}
