//! Authentication of a request: its token, checked, becomes a [`Caller`].

use super::context::Caller;
use crate::core::errors::{KError, defs};
use crate::service::app::App;
use crate::store::StoreError;
use crate::tokens::{Kind, Session, Tokens, VerifyError, now_ms};

/// No token: anonymous. A token that fails (bad, revoked, expired, or whose user is gone)
/// fails the request, even for login and checkToken, as Kuzzle does. A single-use token is
/// used up here: the request that carries it is its one use.
pub async fn authenticate(app: &App, token: Option<&str>) -> Result<Caller, KError> {
    let caller = identify(app, token).await?;
    if let Some(session) = &caller.session {
        use_once(app, session).await?;
    }
    Ok(caller)
}

/// The caller a token names, without using a single-use token up (to decide, before reading
/// an upload's body, whether to read it).
pub async fn identify(app: &App, token: Option<&str>) -> Result<Caller, KError> {
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

/// A single-use token's one use: recorded (durably, and once across every node sharing the
/// database) before the request runs; a second use is an invalid token.
pub async fn use_once(app: &App, session: &Session) -> Result<(), KError> {
    if session.kind != Kind::SingleUse {
        return Ok(());
    }
    let change = Tokens::refresh_change(session, now_ms());
    match app.store.commit(vec![change.clone()]).await {
        Ok(()) => {
            app.tokens.apply(&[change]);
            Ok(())
        }
        Err(StoreError::Refreshed) => Err(VerifyError::Invalid.into()),
        Err(e) => Err(KError::new(defs::SECURITY_TOKEN_VERIFICATION_ERROR, &[&e.to_string()])),
    }
}
