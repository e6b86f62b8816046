//! The history's `f` and `value` of an adjacently tagged op type
//! (`{"f": ..., "value": ...}`): [`crate::Action`] and [`crate::FaultOp`].

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

/// The `value` half of `op`'s serialized form (`null` when it has none).
pub(crate) fn value_of<T: Serialize>(op: &T) -> Value {
    match serde_json::to_value(op) {
        Ok(Value::Object(mut fields)) => fields.remove("value").unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

/// The op whose serialized form is `{"f": f, "value": value}`.
pub(crate) fn from_parts<T: DeserializeOwned>(f: &str, value: &Value) -> serde_json::Result<T> {
    let mut fields = Map::new();
    fields.insert("f".into(), Value::from(f));
    if !value.is_null() {
        fields.insert("value".into(), value.clone());
    }
    serde_json::from_value(Value::Object(fields))
}
