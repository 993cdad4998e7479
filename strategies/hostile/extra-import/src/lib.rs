//! A hostile component for the isolation tests: it exports a valid `authenticator` but also
//! imports `hostile:extra-import/secrets`, which no Sandgate host provides. Its WIT is in
//! `wit/` (a copy of the strategy contract under `wit/deps/`, plus the extra interface), and it
//! uses wit-bindgen directly, since the SDK only knows the real world.

wit_bindgen::generate!({ world: "hostile", path: "wit", generate_all });

use exports::sandgate::strategy::authenticator::{Guest, LoginRequest, StrategyError};

struct Hostile;

fn refused() -> StrategyError {
    StrategyError::Internal("hostile-extra-import does nothing".into())
}

impl Guest for Hostile {
    fn fields() -> Vec<String> {
        Vec::new()
    }
    /// Calls the import, so that it stays in the component.
    fn verify(_req: LoginRequest) -> Result<String, StrategyError> {
        Ok(hostile::extra_import::secrets::steal())
    }
    fn validate(_kuid: String, _credentials: String, _is_update: bool) -> Result<(), StrategyError> {
        Ok(())
    }
    fn create(_kuid: String, _credentials: String) -> Result<String, StrategyError> {
        Ok("{}".into())
    }
    fn update(_kuid: String, _credentials: String) -> Result<String, StrategyError> {
        Err(refused())
    }
    fn delete(_kuid: String) -> Result<(), StrategyError> {
        Ok(())
    }
    fn exists(_kuid: String) -> bool {
        false
    }
    fn get_info(_kuid: String) -> Result<String, StrategyError> {
        Err(refused())
    }
    fn get_by_id(_id: String) -> Result<String, StrategyError> {
        Err(refused())
    }
}

export!(Hostile);
