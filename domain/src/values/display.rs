//! What the user is shown before approving: a small, flat object of strings.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ValueError;

/// The text fields shown to the user, e.g. `{"Amount": "234.00 EUR", "Payee": "ACME GmbH"}`:
/// a flat JSON object of at most 20 string values, keys of 1–64 characters and values of at
/// most 256 characters. Entry order is kept as given.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Map<String, Value>")]
pub struct Display(Map<String, Value>);

impl Display {
    /// The most entries a display may have.
    pub const MAX_ENTRIES: usize = 20;
    /// The longest key, in characters.
    pub const MAX_KEY_CHARS: usize = 64;
    /// The longest value, in characters.
    pub const MAX_VALUE_CHARS: usize = 256;

    /// Parses a JSON value, which must be an object of strings within the limits.
    pub fn parse(value: Value) -> Result<Self, ValueError> {
        let Value::Object(map) = value else {
            return Err(ValueError::new(
                "display",
                "must be a JSON object of strings",
            ));
        };
        if map.len() > Self::MAX_ENTRIES {
            return Err(ValueError::new(
                "display",
                format!(
                    "must have at most {} entries, got {}",
                    Self::MAX_ENTRIES,
                    map.len()
                ),
            ));
        }
        for (key, value) in &map {
            let key_chars = key.chars().count();
            if key_chars == 0 || key_chars > Self::MAX_KEY_CHARS {
                return Err(ValueError::new(
                    "display",
                    format!(
                        "keys must be 1 to {} characters, got {key:?}",
                        Self::MAX_KEY_CHARS
                    ),
                ));
            }
            let Value::String(text) = value else {
                return Err(ValueError::new(
                    "display",
                    format!("the value of {key:?} must be a string"),
                ));
            };
            if text.chars().count() > Self::MAX_VALUE_CHARS {
                return Err(ValueError::new(
                    "display",
                    format!(
                        "the value of {key:?} must be at most {} characters",
                        Self::MAX_VALUE_CHARS
                    ),
                ));
            }
        }
        Ok(Self(map))
    }

    /// Wraps a map its caller has already built within the limits.
    pub(crate) fn from_valid_map(map: Map<String, Value>) -> Self {
        Self(map)
    }

    /// The entries as a JSON object (every value is a string).
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The text shown for `key`, if any.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<Value> for Display {
    type Error = ValueError;

    fn try_from(value: Value) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<Display> for Map<String, Value> {
    fn from(display: Display) -> Self {
        display.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_flat_object_of_strings_is_a_display_and_keeps_its_order() {
        let display =
            Display::parse(json!({"Payee": "ACME GmbH", "Amount": "234.00 EUR"})).unwrap();
        assert_eq!(display.get("Amount"), Some("234.00 EUR"));
        assert_eq!(display.len(), 2);
        let keys: Vec<_> = display.as_map().keys().cloned().collect();
        assert_eq!(keys, ["Payee", "Amount"]);
    }

    #[test]
    fn non_string_values_nested_objects_and_non_objects_are_refused() {
        for bad in [
            json!({"Amount": 234}),
            json!({"a": {"b": "c"}}),
            json!(["x"]),
            json!("x"),
        ] {
            assert_eq!(Display::parse(bad).unwrap_err().field, "display");
        }
    }

    #[test]
    fn limits_on_entries_keys_and_values_are_enforced() {
        let many: Map<String, Value> = (0..21).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert!(Display::parse(Value::Object(many)).is_err());
        let twenty: Map<String, Value> = (0..20).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert!(Display::parse(Value::Object(twenty)).is_ok());
        assert!(Display::parse(json!({"": "v"})).is_err());
        assert!(Display::parse(json!({"k".repeat(65): "v"})).is_err());
        assert!(Display::parse(json!({"k".repeat(64): "v".repeat(256)})).is_ok());
        assert!(Display::parse(json!({"k": "v".repeat(257)})).is_err());
    }

    #[test]
    fn a_display_serializes_as_its_object() {
        let value = json!({"Amount": "1.00 EUR"});
        let display = Display::parse(value.clone()).unwrap();
        assert_eq!(serde_json::to_value(&display).unwrap(), value);
        assert_eq!(serde_json::from_value::<Display>(value).unwrap(), display);
        assert!(serde_json::from_value::<Display>(json!({"a": 1})).is_err());
    }
}
