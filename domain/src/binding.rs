//! Dynamic linking: the hash that ties an approval to exactly one action, display, payload and
//! user, computed over the RFC 8785 (JCS) canonical form so that formatting never matters.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::values::{ActionName, Display, UserId, ValueError};

/// The RFC 8785 canonical bytes of a JSON value: keys sorted, no insignificant whitespace,
/// numbers in their shortest form.
pub fn canonical(value: &Value) -> Vec<u8> {
    serde_jcs::to_vec(value).expect("every serde_json::Value has a canonical form")
}

/// The dynamic-linking hash of a request: 64 lowercase hexadecimal digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Binding(String);

impl Binding {
    /// Parses 64 lowercase hexadecimal digits.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValueError::new(
                "binding",
                "must be 64 lowercase hexadecimal digits",
            ))
        }
    }
}

string_newtype!(Binding);

/// The binding of a request: lowercase hex SHA-256 of the canonical form of
/// `{"action": …, "display": …, "payload": …, "uid": …}`.
pub fn binding(action: &ActionName, display: &Display, payload: &Value, uid: &UserId) -> Binding {
    let linked = json!({
        "action": action.as_str(),
        "display": display.as_map(),
        "payload": payload,
        "uid": uid.as_str(),
    });
    Binding(hex::encode(Sha256::digest(canonical(&linked))))
}

/// The display used when a request names none: the payload's top-level scalar fields in
/// document order (strings as they are, numbers and booleans as their JSON text), skipping
/// nulls, arrays, objects and keys that a display cannot hold (empty or over 64 characters);
/// at most the first 20, each value cut to 256 characters.
pub fn default_display(payload: &Value) -> Display {
    let mut map = Map::new();
    let fields = payload.as_object().into_iter().flatten();
    for (key, value) in fields {
        if map.len() == Display::MAX_ENTRIES {
            break;
        }
        let key_chars = key.chars().count();
        if key_chars == 0 || key_chars > Display::MAX_KEY_CHARS {
            continue;
        }
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null | Value::Array(_) | Value::Object(_) => continue,
        };
        let text: String = text.chars().take(Display::MAX_VALUE_CHARS).collect();
        map.insert(key.clone(), Value::String(text));
    }
    Display::from_valid_map(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transfer(payload: &Value) -> Binding {
        let display =
            Display::parse(json!({"Amount": "234.00 EUR", "Payee": "ACME GmbH"})).unwrap();
        binding(
            &ActionName::parse("bank:transfers:create").unwrap(),
            &display,
            payload,
            &UserId::parse("USER_ID").unwrap(),
        )
    }

    #[test]
    fn canonical_form_sorts_keys_and_drops_whitespace() {
        let value: Value =
            serde_json::from_str(r#"{ "b": [1, 2.50, {"d": true, "c": null}], "a": "x" }"#)
                .unwrap();
        assert_eq!(
            canonical(&value),
            br#"{"a":"x","b":[1,2.5,{"c":null,"d":true}]}"#.to_vec()
        );
    }

    /// The SHA-256 of `{"action":"bank:transfers:create","display":{"Amount":"234.00 EUR",
    /// "Payee":"ACME GmbH"},"payload":{"amount":"234.00","currency":"EUR","uid":"USER_ID"},
    /// "uid":"USER_ID"}` (without the line breaks), as computed by an independent JCS encoder.
    #[test]
    fn the_binding_of_a_fixed_request_is_a_known_vector() {
        let payload = json!({"uid": "USER_ID", "currency": "EUR", "amount": "234.00"});
        assert_eq!(
            transfer(&payload).as_str(),
            "0d56ba4711dac373c1e43a7487bccc65d078d9c857ae70ca91fd62496b788274"
        );
    }

    #[test]
    fn key_order_and_whitespace_do_not_change_the_binding() {
        let a: Value = serde_json::from_str(r#"{"amount":"234.00","currency":"EUR"}"#).unwrap();
        let b: Value =
            serde_json::from_str("{\n  \"currency\" : \"EUR\",\n  \"amount\" : \"234.00\"\n}")
                .unwrap();
        assert_eq!(transfer(&a), transfer(&b));
    }

    #[test]
    fn changing_the_amount_changes_the_binding() {
        let a = transfer(&json!({"amount": "234.00", "currency": "EUR"}));
        let b = transfer(&json!({"amount": "234.01", "currency": "EUR"}));
        assert_ne!(a, b);
    }

    #[test]
    fn a_binding_is_64_lowercase_hex_digits() {
        let b = transfer(&json!({}));
        assert_eq!(Binding::parse(b.as_str()).unwrap(), b);
        assert!(Binding::parse(&b.as_str().to_uppercase()).is_err());
        assert!(Binding::parse("abc").is_err());
        assert_eq!(serde_json::to_value(&b).unwrap(), Value::from(b.as_str()));
    }

    #[test]
    fn the_default_display_shows_top_level_scalars_as_text_in_order() {
        let payload = json!({
            "amount": "234.00", "count": 3, "urgent": true, "note": null,
            "tags": ["a"], "meta": {"x": 1}, "rate": 1.5, "": "empty key",
        });
        let display = default_display(&payload);
        assert_eq!(
            serde_json::to_value(&display).unwrap(),
            json!({"amount": "234.00", "count": "3", "urgent": "true", "rate": "1.5"})
        );
        let keys: Vec<_> = display.as_map().keys().cloned().collect();
        assert_eq!(keys, ["amount", "count", "urgent", "rate"]);
    }

    #[test]
    fn the_default_display_keeps_the_first_twenty_fields_and_cuts_long_values() {
        let mut payload = Map::new();
        payload.insert("long".into(), Value::from("é".repeat(300)));
        for i in 0..25 {
            payload.insert(format!("f{i:02}"), Value::from(i));
        }
        let display = default_display(&Value::Object(payload));
        assert_eq!(display.len(), 20);
        assert_eq!(display.get("long").unwrap().chars().count(), 256);
        assert_eq!(display.get("f18"), Some("18"));
        assert_eq!(display.get("f19"), None);
        assert!(Display::parse(serde_json::to_value(&display).unwrap()).is_ok());
    }
}
