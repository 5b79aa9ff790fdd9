//! Reading a JSON value into a typed document, naming where it first differs: the
//! path of the value at fault (`variants[0].template`), or a missing field's own path
//! (`audience`, `test.metric`), not serde's guess from its message.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Where a document's shape differs from its type, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeError {
    /// `variants[0].template`; empty for the document itself.
    pub path: String,
    pub message: String,
}

/// Reads `value` as a `T`, or says where it first differs.
pub fn read_shape<T: DeserializeOwned>(value: &Value) -> Result<T, ShapeError> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let message = e.inner().to_string();
        let mut path = e.path().to_string();
        if path == "." {
            path.clear();
        }
        // serde names a missing field in backquotes; the path is its parent's.
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            path = if path.is_empty() {
                field.to_owned()
            } else {
                format!("{path}.{field}")
            };
        }
        ShapeError { path, message }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        name: String,
        size: Option<u8>,
    }

    #[test]
    fn the_path_names_the_value_at_fault() {
        let path = |v| read_shape::<Doc>(&v).unwrap_err().path;
        assert_eq!(path(json!({"items": [{"name": "a"}, {"name": 1}]})), "items[1].name");
        assert_eq!(
            path(json!({"items": [{"size": 1}]})),
            "items[0].name",
            "a missing field's own path"
        );
        assert_eq!(path(json!({})), "items");
        assert_eq!(path(json!({"items": 1})), "items");
        assert_eq!(path(json!({"items": [], "colour": 1})), "colour");
        assert!(read_shape::<Doc>(&json!({"items": [{"name": "a", "size": 2}]})).is_ok());
    }
}
