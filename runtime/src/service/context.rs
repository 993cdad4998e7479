//! What every handler is given: the server, the request, who is calling, and what the
//! dispatcher already decided about this request (cookie mode, strategy admissions).

use crate::core::errors::KError;
use crate::protocol::{Reply, Request};
use crate::sandbox::{Permit, Strategy};
use crate::service::app::App;
use crate::store::User;
use crate::tokens::Session;
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

/// What an action asks of its caller besides its rights (see `service::rights`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Whoever the rights allow, logged in or not.
    Anyone,
    /// A logged-in user the rights allow (it acts on its own account): an anonymous caller
    /// gets 401 even if the anonymous role allows the action.
    User,
    /// Outside the rights: the action guards itself (`createFirstAdmin` works once, ever).
    Open,
}

/// The caller of a request, once its token has been checked.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// `None`: anonymous.
    pub user: Option<User>,
    pub session: Option<Session>,
}

impl Caller {
    pub fn anonymous() -> Self {
        Caller::default()
    }
    pub fn kuid(&self) -> &str {
        self.user.as_ref().map_or("-1", |u| u.kuid.as_str())
    }
}

/// What an action's code returns: its answer, to be awaited.
pub type Handled<'a> = Pin<Box<dyn Future<Output = Result<Reply, KError>> + Send + 'a>>;

/// An action's code: an `async fn(&Ctx) -> Result<Reply, KError>`, boxed (`api::table` wraps
/// each with its `handler!`).
pub type Handler = for<'a> fn(&'a Ctx<'a>) -> Handled<'a>;

/// The API's description of itself, for the actions that report it. Implemented by the
/// action table (`api::table`), which the service layer cannot name.
pub trait Catalog: Sync {
    /// `GET /_publicApi`: every action with its HTTP routes.
    fn public_api(&self) -> Value;
    /// Every `(controller, action)` and who may call it.
    fn actions(&self) -> Vec<(&'static str, &'static str, Access)>;
}

/// The strategies a request was admitted to, each with its permit. Dropped with the request;
/// a call's aftercare keeps its own reference until it is done (see `sandbox::warm`).
#[derive(Default)]
pub struct Admitted(Mutex<Vec<(Arc<Strategy>, Arc<Permit>)>>);

impl Admitted {
    fn list(&self) -> MutexGuard<'_, Vec<(Arc<Strategy>, Arc<Permit>)>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add(&self, strategy: Arc<Strategy>, permit: Permit) {
        self.list().push((strategy, Arc::new(permit)));
    }

    /// This request's permit for `strategy`: the one the dispatcher took, or one waited for
    /// now (up to `limits.queue_ms`, without a thread). One per strategy, whatever its calls;
    /// a strategy replaced since the admission is the new version, with a permit of its own.
    pub async fn permit(&self, strategy: &Arc<Strategy>) -> Result<Arc<Permit>, crate::sandbox::CallError> {
        if let Some(p) = self.find(strategy) {
            return Ok(p);
        }
        let permit = Arc::new(strategy.admit().await?);
        self.list().push((strategy.clone(), permit.clone()));
        Ok(permit)
    }

    fn find(&self, strategy: &Arc<Strategy>) -> Option<Arc<Permit>> {
        self.list().iter().find(|(_, p)| strategy.admits(p)).map(|(_, p)| p.clone())
    }
}

impl Ctx<'_> {
    /// The logged-in caller, for an action on one's own account; 401 for an anonymous one.
    pub fn user(&self) -> Result<&User, KError> {
        self.caller.user.as_ref().ok_or_else(|| {
            KError::new(
                crate::core::errors::defs::SECURITY_RIGHTS_UNAUTHORIZED,
                &[&self.req.controller, &self.req.action],
            )
        })
    }

    /// Who wrote a document now and when (`_kuzzle_info`): created by the caller, or, given
    /// the document's previous one, updated by it. An anonymous caller is `null`.
    pub fn kuzzle_info(&self, previous: Option<&Value>) -> Value {
        let me = self.caller.user.as_ref().map_or(Value::Null, |u| Value::String(u.kuid.clone()));
        let now = crate::core::time::now_ms();
        match previous {
            Some(Value::Object(old)) => {
                let mut info = old.clone();
                info.insert("updatedAt".into(), now.into());
                info.insert("updater".into(), me);
                Value::Object(info)
            }
            _ => serde_json::json!({ "author": me, "createdAt": now, "updatedAt": null, "updater": null }),
        }
    }
}

pub struct Ctx<'a> {
    pub app: &'a App,
    pub req: &'a Request,
    pub caller: Caller,
    /// This request is in cookie mode (`cookieAuth`): decided once, by the dispatcher.
    pub cookie: bool,
    /// The strategy the request names, as the dispatcher read it to admit the request (the
    /// row's `admission`); `None` for actions without one.
    pub target: Option<Result<String, KError>>,
    pub admitted: &'a Admitted,
    pub api: &'a dyn Catalog,
}
