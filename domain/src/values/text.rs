//! Names that arrive as text: action names, user ids and action patterns.

use serde::{Deserialize, Serialize};

use super::ValueError;

/// The longest action name, user id or action pattern accepted, in characters.
pub const MAX_NAME_CHARS: usize = 128;

fn check_length(field: &'static str, s: &str) -> Result<(), ValueError> {
    let chars = s.chars().count();
    if chars == 0 {
        return Err(ValueError::new(field, "must not be empty"));
    }
    if chars > MAX_NAME_CHARS {
        return Err(ValueError::new(
            field,
            format!("must be at most {MAX_NAME_CHARS} characters, got {chars}"),
        ));
    }
    Ok(())
}

fn is_segment_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Checks `:`-separated, non-empty segments whose characters satisfy `allowed`.
fn check_segments(
    field: &'static str,
    s: &str,
    allowed: fn(char) -> bool,
) -> Result<(), ValueError> {
    check_length(field, s)?;
    for segment in s.split(':') {
        if segment.is_empty() {
            return Err(ValueError::new(
                field,
                "segments separated by `:` must not be empty",
            ));
        }
        if let Some(c) = segment.chars().find(|c| !allowed(*c)) {
            return Err(ValueError::new(
                field,
                format!(
                    "character {c:?} is not allowed; use letters, digits, `_`, `.`, `-` and `:`"
                ),
            ));
        }
    }
    Ok(())
}

/// The name of what a relying party wants approved, e.g. `bank:transfers:create`:
/// 1–128 characters, segments of `[A-Za-z0-9_.-]+` separated by `:`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ActionName(String);

impl ActionName {
    /// Parses an action name.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        check_segments("action", s, is_segment_char)?;
        Ok(Self(s.to_owned()))
    }
}

string_newtype!(ActionName);

/// The relying party's identifier for a user: 1–128 characters, no control characters,
/// no `/`, and not only whitespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

impl UserId {
    /// Parses a user id.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        check_length("uid", s)?;
        if s.chars().any(char::is_control) {
            return Err(ValueError::new(
                "uid",
                "must not contain control characters",
            ));
        }
        if s.contains('/') {
            return Err(ValueError::new("uid", "must not contain `/`"));
        }
        if s.trim().is_empty() {
            return Err(ValueError::new("uid", "must not be only whitespace"));
        }
        Ok(Self(s.to_owned()))
    }
}

string_newtype!(UserId);

/// A glob over action names that a client credential may use, e.g. `bank:transfers:*`.
///
/// It is written like an [`ActionName`] whose segments may also contain `*`; a `*` matches any
/// run of characters, `:` included, so `*` alone matches every action.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ActionPattern(String);

impl ActionPattern {
    /// Parses an action pattern.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        check_segments("pattern", s, |c| c == '*' || is_segment_char(c))?;
        Ok(Self(s.to_owned()))
    }

    /// Whether `action` is covered by this pattern.
    pub fn matches(&self, action: &ActionName) -> bool {
        glob(self.0.as_bytes(), action.as_str().as_bytes())
    }
}

string_newtype!(ActionPattern);

/// Matches `text` against `pattern`, where `*` matches any sequence of bytes (both are ASCII).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was seen in the pattern, and the text position it currently covers up to.
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if pattern.get(p) == Some(&b'*') {
            backtrack = Some((p, t));
            p += 1;
        } else if pattern.get(p) == Some(&text[t]) {
            p += 1;
            t += 1;
        } else if let Some((star, covered)) = backtrack {
            p = star + 1;
            t = covered + 1;
            backtrack = Some((star, covered + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(s: &str) -> ActionName {
        ActionName::parse(s).unwrap()
    }

    fn pattern(s: &str) -> ActionPattern {
        ActionPattern::parse(s).unwrap()
    }

    #[test]
    fn action_names_are_colon_separated_segments() {
        assert_eq!(
            action("bank:transfers:create").as_str(),
            "bank:transfers:create"
        );
        assert!(ActionName::parse("a.b-c_d:E9").is_ok());
        assert!(ActionName::parse(&"a".repeat(128)).is_ok());
    }

    #[test]
    fn malformed_action_names_are_refused_naming_the_action_field() {
        for bad in [
            "",
            "bank::create",
            ":bank",
            "bank:",
            "bank transfers",
            "bank/x",
            "bänk",
            "a*",
        ] {
            let error = ActionName::parse(bad).unwrap_err();
            assert_eq!(error.field, "action", "{bad:?}");
        }
        assert!(ActionName::parse(&"a".repeat(129)).is_err());
    }

    #[test]
    fn user_ids_accept_any_printable_text_without_slashes() {
        assert!(UserId::parse("USER_ID").is_ok());
        assert!(UserId::parse("anna müller@example.com").is_ok());
        for bad in ["", "   ", "a/b", "a\nb", "a\u{7f}"] {
            assert_eq!(UserId::parse(bad).unwrap_err().field, "uid", "{bad:?}");
        }
        assert!(UserId::parse(&"é".repeat(128)).is_ok());
        assert!(UserId::parse(&"é".repeat(129)).is_err());
    }

    #[test]
    fn names_serialize_as_plain_strings_and_are_checked_when_deserialized() {
        let name = action("bank:transfers:create");
        let json = serde_json::to_string(&name).unwrap();
        assert_eq!(json, "\"bank:transfers:create\"");
        assert_eq!(serde_json::from_str::<ActionName>(&json).unwrap(), name);
        assert!(serde_json::from_str::<ActionName>("\"bad name\"").is_err());
        assert!(serde_json::from_str::<UserId>("\"a/b\"").is_err());
    }

    #[test]
    fn a_trailing_star_matches_every_action_under_the_prefix() {
        let transfers = pattern("bank:transfers:*");
        assert!(transfers.matches(&action("bank:transfers:create")));
        assert!(transfers.matches(&action("bank:transfers:create:urgent")));
        assert!(!transfers.matches(&action("bank:cards:block")));
        assert!(!transfers.matches(&action("bank:transfers")));
    }

    #[test]
    fn a_lone_star_matches_everything_and_a_plain_pattern_only_itself() {
        assert!(pattern("*").matches(&action("anything:at:all")));
        let exact = pattern("bank:cards:block");
        assert!(exact.matches(&action("bank:cards:block")));
        assert!(!exact.matches(&action("bank:cards:blocked")));
    }

    #[test]
    fn stars_inside_segments_match_any_run_of_characters() {
        let p = pattern("bank:*:create*");
        assert!(p.matches(&action("bank:transfers:create")));
        assert!(p.matches(&action("bank:cards:x:create_now")));
        assert!(!p.matches(&action("bank:transfers:delete")));
        assert!(pattern("*a*b*").matches(&action("xaxxbx")));
        assert!(!pattern("*a*b").matches(&action("xaxxbx")));
    }

    #[test]
    fn malformed_patterns_are_refused_naming_the_pattern_field() {
        for bad in ["", "bank::*", "bank:?", "bank:*:"] {
            assert_eq!(
                ActionPattern::parse(bad).unwrap_err().field,
                "pattern",
                "{bad:?}"
            );
        }
    }
}
