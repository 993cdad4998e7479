//! Which function answers each `(controller, action)`, and who may call it. The HTTP routes
//! for these live in [`crate::api::routes`]; this table is what every transport dispatches on.

use crate::api::errors::KError;
use crate::api::request::{Reply, Request};
use crate::app::App;
use crate::store::User;
use crate::tokens::Session;

/// Who may call an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, logged in or not.
    Anyone,
    /// Any logged-in user, on their own account.
    User,
    /// Users with the `admin` profile.
    Admin,
}

/// The caller of a request, once its token has been checked.
#[derive(Debug, Clone)]
pub struct Caller {
    /// `None`: anonymous.
    pub user: Option<User>,
    pub session: Option<Session>,
}

impl Caller {
    pub fn kuid(&self) -> &str {
        self.user.as_ref().map_or("-1", |u| u.kuid.as_str())
    }
    pub fn is_admin(&self) -> bool {
        self.user.as_ref().is_some_and(User::is_admin)
    }
}

pub struct Ctx<'a> {
    pub app: &'a App,
    pub req: &'a Request,
    pub caller: Caller,
}

pub type Handler = fn(&Ctx) -> Result<Reply, KError>;

pub struct Action {
    pub controller: &'static str,
    pub action: &'static str,
    pub access: Access,
    pub handler: Handler,
}

const fn a(controller: &'static str, action: &'static str, access: Access, handler: Handler) -> Action {
    Action { controller, action, access, handler }
}

use crate::{auth, security, server, strategies};
use Access::*;

pub const ACTIONS: &[Action] = &[
    a("auth", "login", Anyone, auth::login::login),
    a("auth", "checkToken", Anyone, auth::session::check_token),
    a("auth", "getCurrentUser", Anyone, auth::session::get_current_user),
    // logout checks the caller itself: in cookie mode a dead cookie is still cleared.
    a("auth", "logout", Anyone, auth::session::logout),
    a("auth", "refreshToken", User, auth::session::refresh_token),
    a("auth", "getMyRights", User, auth::session::get_my_rights),
    a("auth", "updateSelf", User, auth::session::update_self),
    a("auth", "getStrategies", User, auth::credentials::get_strategies),
    a("auth", "getMyCredentials", User, auth::credentials::get_mine),
    a("auth", "credentialsExist", User, auth::credentials::exist_mine),
    a("auth", "createMyCredentials", User, auth::credentials::create_mine),
    a("auth", "updateMyCredentials", User, auth::credentials::update_mine),
    a("auth", "validateMyCredentials", User, auth::credentials::validate_mine),
    a("auth", "deleteMyCredentials", User, auth::credentials::delete_mine),
    // createFirstAdmin guards itself: it only works while no admin exists.
    a("security", "createFirstAdmin", Anyone, security::users::create_first_admin),
    a("security", "createUser", Admin, security::users::create_user),
    a("security", "getUser", Admin, security::users::get_user),
    a("security", "deleteUser", Admin, security::users::delete_user),
    a("security", "revokeTokens", Admin, security::users::revoke_tokens),
    a("security", "getUserStrategies", Admin, security::users::get_user_strategies),
    a("security", "createCredentials", Admin, security::credentials::create),
    a("security", "updateCredentials", Admin, security::credentials::update),
    a("security", "deleteCredentials", Admin, security::credentials::delete),
    a("security", "getCredentials", Admin, security::credentials::get),
    a("security", "getCredentialsById", Admin, security::credentials::get_by_id),
    a("security", "hasCredentials", Admin, security::credentials::has),
    a("security", "validateCredentials", Admin, security::credentials::validate),
    a("security", "getCredentialFields", Admin, security::credentials::fields),
    a("security", "getAllCredentialFields", Admin, security::credentials::all_fields),
    a("strategies", "register", Admin, strategies::register),
    a("strategies", "info", Admin, strategies::info),
    a("strategies", "unregister", Admin, strategies::unregister),
    a("server", "info", Anyone, server::info),
    a("server", "publicApi", Anyone, server::public_api),
    a("server", "now", User, server::now),
    a("server", "healthCheck", Anyone, server::health_check),
];

pub fn find(controller: &str, action: &str) -> Option<&'static Action> {
    ACTIONS.iter().find(|a| a.controller == controller && a.action == action)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_route_has_an_action_and_back() {
        for route in crate::api::routes::ROUTES {
            assert!(super::find(route.controller, route.action).is_some(), "{}:{}", route.controller, route.action);
        }
        for action in super::ACTIONS {
            assert!(
                crate::api::routes::ROUTES
                    .iter()
                    .any(|r| r.controller == action.controller && r.action == action.action),
                "{}:{} has no HTTP route",
                action.controller,
                action.action
            );
        }
    }
}
