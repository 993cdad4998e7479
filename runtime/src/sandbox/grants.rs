//! What an operator grants a strategy when registering it, beyond its code, config and limits:
//! the origins it may reach (`outbound`) and whether it may provision users, with which
//! profiles (`provision`). Neither is the strategy's to choose; both are kept with it across
//! restarts and hot swaps, and shown by `GET /strategies/:name`.

use super::errors::UploadError;
use super::host::http::allow::AllowList;
use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    pub outbound: AllowList,
    /// The `profileIds` of the users it may provision; `None`: it may not.
    pub provision: Option<Vec<String>>,
}

impl Grants {
    /// From the registration's `outbound` (JSON array text) and `provision` (JSON object text,
    /// `{"profileIds": [...]}`); empty texts grant nothing.
    pub fn parse(outbound: &str, provision: &str) -> Result<Grants, UploadError> {
        let outbound = AllowList::parse(outbound).map_err(UploadError)?;
        let provision = provision_of(provision).map_err(|e| UploadError(format!("invalid provision: {e}")))?;
        Ok(Grants { outbound, provision })
    }

    pub fn outbound_json(&self) -> String {
        self.outbound.to_json()
    }

    /// `{}` when it may not provision.
    pub fn provision_json(&self) -> String {
        match &self.provision {
            None => "{}".into(),
            Some(ids) => serde_json::json!({ "profileIds": ids }).to_string(),
        }
    }
}

fn provision_of(text: &str) -> Result<Option<Vec<String>>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let Some(map) = value.as_object() else { return Err("it must be a JSON object".into()) };
    if map.is_empty() {
        return Ok(None);
    }
    if let Some(other) = map.keys().find(|k| *k != "profileIds") {
        return Err(format!("unknown key {other:?} (only profileIds)"));
    }
    let ids: Vec<String> = match map.get("profileIds") {
        Some(Value::Array(ids)) => ids
            .iter()
            .map(|v| v.as_str().filter(|s| !s.is_empty()).map(str::to_string))
            .collect::<Option<_>>()
            .ok_or("profileIds must be non-empty strings")?,
        _ => return Err("profileIds must be an array of profile ids".into()),
    };
    if ids.is_empty() {
        return Err("profileIds must name at least one profile".into());
    }
    Ok(Some(ids))
}

#[cfg(test)]
mod tests {
    use super::Grants;

    #[test]
    fn provision() {
        assert_eq!(Grants::parse("", "").unwrap().provision, None);
        assert_eq!(Grants::parse("", "{}").unwrap().provision, None);
        let g = Grants::parse("", r#"{"profileIds":["default"]}"#).unwrap();
        assert_eq!(g.provision, Some(vec!["default".to_string()]));
        assert_eq!(g.provision_json(), r#"{"profileIds":["default"]}"#);
        for bad in [
            r#"{"profileIds":[]}"#,
            r#"{"profileIds":"default"}"#,
            r#"{"profileIds":[1]}"#,
            r#"{"admin":true}"#,
            "[]",
            "x",
        ] {
            assert!(Grants::parse("", bad).is_err(), "{bad}");
        }
    }
}
