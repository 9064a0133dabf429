//! Reading config.json's fields: the helper both [`crate::config`] and [`crate::host`] (its
//! `hostOrigins` and `cif` sections) use. A leaf: it imports nothing of the crate, so neither
//! side has to import the other for it.

use serde_json::Value;

/// `value` as a list of strings; `None` when absent or null. `Err`: `<field> must be a list
/// of strings`.
pub(crate) fn string_list(
    value: Option<&Value>,
    field: &str,
) -> Result<Option<Vec<String>>, String> {
    let wrong = || [field, " must be a list of strings"].concat();
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|s| s.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(wrong),
        Some(_) => Err(wrong()),
    }
}
