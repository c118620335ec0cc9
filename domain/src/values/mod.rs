//! Value types parsed at the edge: once a handler holds one of these, it is known to be valid.
//!
//! Each type has private fields and a `parse` constructor returning [`ValueError`], and
//! serializes as its plain wire form (a string, a number or a flat object).

mod choice;
mod display;
mod public_key;
mod text;

pub use choice::{DeviceSelection, Method, RejectReason, TtlSeconds};
pub use display::Display;
pub use public_key::PublicKey;
pub use text::{ActionName, ActionPattern, UserId};

/// Why a value was refused, naming the request field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValueError {
    /// The request field the value came from, e.g. `action` or `public_key`.
    pub field: &'static str,
    /// What is wrong with it, as one sentence fragment.
    pub message: String,
}

impl ValueError {
    /// Creates an error for `field`.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_error_displays_its_field_then_its_message() {
        let error = ValueError::new("uid", "must not be empty");
        assert_eq!(error.to_string(), "uid: must not be empty");
    }
}
