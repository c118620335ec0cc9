//! OCRA suites (RFC 6287 §6): `OCRA-1:HOTP-<hash>-<digits>:<DataInput>`, which names the
//! hash, the length of the response and the inputs it is computed over.

use serde::{Deserialize, Serialize};

use super::{CodeError, Hash};

string_enum! {
    /// How an OCRA question is written: the `A`, `N` or `H` of `QA08`, `QN08`, `QH08`.
    pub enum QuestionFormat as "question" {
        /// Alphanumeric text, taken as its bytes.
        Alphanumeric => "A",
        /// A decimal number, taken as its hexadecimal value.
        Numeric => "N",
        /// Hexadecimal digits.
        Hex => "H",
    }
}

/// A parsed OCRA suite such as `OCRA-1:HOTP-SHA256-8:QN08-T1M`.
///
/// Its data input is `[C-]Q<A|N|H><04..64>[-P<hash>][-S<nnn>][-T<n><S|M|H>]`, in that order:
/// a counter, the question (always), a PIN hash, session information and a time step.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OcraSuite {
    text: String,
    hash: Hash,
    digits: u32,
    counter: bool,
    question: QuestionFormat,
    question_len: u32,
    pin: Option<Hash>,
    session_len: Option<usize>,
    time_step: Option<u64>,
}

impl OcraSuite {
    /// Parses a suite; it is kept exactly as written.
    pub fn parse(text: &str) -> Result<Self, CodeError> {
        let invalid = |message: &str| CodeError::InvalidSuite {
            suite: text.to_owned(),
            message: message.to_owned(),
        };
        let mut parts = text.split(':');
        let (Some(version), Some(function), Some(data), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("expected OCRA-1:<CryptoFunction>:<DataInput>"));
        };
        if version != "OCRA-1" {
            return Err(invalid("the version must be OCRA-1"));
        }
        let (hash, digits) = function
            .strip_prefix("HOTP-")
            .and_then(|f| f.split_once('-'))
            .ok_or_else(|| invalid("the crypto function must be HOTP-<hash>-<digits>"))?;
        let hash =
            Hash::parse(hash).map_err(|_| invalid("the hash must be SHA1, SHA256 or SHA512"))?;
        let digits = number(digits, 2)
            .filter(|d| *d == 0 || (4..=10).contains(d))
            .ok_or_else(|| invalid("the number of digits must be 0 or 4 to 10"))?;

        let mut inputs = data.split('-').peekable();
        let counter = inputs.next_if_eq(&"C").is_some();
        let (question, question_len) = inputs
            .next()
            .and_then(question)
            .ok_or_else(|| invalid("the question must be QA, QN or QH and a length of 04 to 64"))?;
        let pin = match inputs.next_if(|i| i.starts_with('P')) {
            Some(p) => Some(
                Hash::parse(&p[1..])
                    .map_err(|_| invalid("the PIN hash must be PSHA1, PSHA256 or PSHA512"))?,
            ),
            None => None,
        };
        let session_len = match inputs.next_if(|i| i.starts_with('S')) {
            Some(s) => Some(
                session(&s[1..])
                    .ok_or_else(|| invalid("the session length must be S001 to S512"))?,
            ),
            None => None,
        };
        let time_step = match inputs.next_if(|i| i.starts_with('T')) {
            Some(t) => Some(
                time_step(&t[1..])
                    .ok_or_else(|| invalid("the time step must be 1-59S, 1-59M or 1-48H"))?,
            ),
            None => None,
        };
        if inputs.next().is_some() {
            return Err(invalid("the data input must be [C-]Q..[-P..][-S..][-T..]"));
        }
        Ok(Self {
            text: text.to_owned(),
            hash,
            digits,
            counter,
            question,
            question_len,
            pin,
            session_len,
            time_step,
        })
    }

    /// The suite as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The HMAC's hash function.
    pub fn hash(&self) -> Hash {
        self.hash
    }

    /// How many decimal digits a response has; 0: the whole HMAC, in hexadecimal.
    pub fn digits(&self) -> u32 {
        self.digits
    }

    /// Whether a counter (`C`) is part of the input.
    pub fn uses_counter(&self) -> bool {
        self.counter
    }

    /// The question's format and its declared length.
    pub fn question(&self) -> (QuestionFormat, u32) {
        (self.question, self.question_len)
    }

    /// The hash of the PIN, when a PIN (`P`) is part of the input.
    pub fn pin_hash(&self) -> Option<Hash> {
        self.pin
    }

    /// The length of the session information in bytes, when it (`S`) is part of the input.
    pub fn session_len(&self) -> Option<usize> {
        self.session_len
    }

    /// The length of a time step in seconds, when a timestamp (`T`) is part of the input.
    pub fn time_step_seconds(&self) -> Option<u64> {
        self.time_step
    }
}

/// A number of 1 to `max_len` ASCII digits.
fn number(text: &str, max_len: usize) -> Option<u32> {
    let well_formed =
        (1..=max_len).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit());
    well_formed.then(|| text.parse().ok()).flatten()
}

/// `QA08`, `QN10`, `QH64`…: the format and a length of 04 to 64 (two digits).
fn question(input: &str) -> Option<(QuestionFormat, u32)> {
    let rest = input.strip_prefix('Q')?;
    let format = QuestionFormat::parse(rest.get(..1)?).ok()?;
    let len = rest
        .get(1..)
        .filter(|l| l.len() == 2)
        .and_then(|l| number(l, 2))?;
    (4..=64).contains(&len).then_some((format, len))
}

/// `064`, `128`…: a session length of three digits, 1 to 512 bytes.
fn session(digits: &str) -> Option<usize> {
    let len = number(digits, 3).filter(|_| digits.len() == 3)?;
    (1..=512).contains(&len).then_some(len as usize)
}

/// `30S`, `1M`, `48H`…: a time step in seconds.
fn time_step(text: &str) -> Option<u64> {
    let unit = text.chars().last()?;
    let count = u64::from(number(&text[..text.len() - unit.len_utf8()], 2)?);
    let (max, seconds) = match unit {
        'S' => (59, 1),
        'M' => (59, 60),
        'H' => (48, 3600),
        _ => return None,
    };
    (1..=max).contains(&count).then_some(count * seconds)
}

impl std::fmt::Display for OcraSuite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for OcraSuite {
    type Err = CodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for OcraSuite {
    type Error = CodeError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<OcraSuite> for String {
    fn from(suite: OcraSuite) -> String {
        suite.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_suite_has_an_eight_digit_sha256_response_over_a_question_and_minutes() {
        let suite = OcraSuite::parse("OCRA-1:HOTP-SHA256-8:QN08-T1M").unwrap();
        assert_eq!(suite.as_str(), "OCRA-1:HOTP-SHA256-8:QN08-T1M");
        assert_eq!((suite.hash(), suite.digits()), (Hash::Sha256, 8));
        assert_eq!(suite.question(), (QuestionFormat::Numeric, 8));
        assert_eq!(suite.time_step_seconds(), Some(60));
        assert!(!suite.uses_counter());
        assert_eq!((suite.pin_hash(), suite.session_len()), (None, None));
    }

    #[test]
    fn every_input_is_read_in_its_place() {
        let suite = OcraSuite::parse("OCRA-1:HOTP-SHA512-0:C-QH64-PSHA256-S128-T48H").unwrap();
        assert_eq!((suite.hash(), suite.digits()), (Hash::Sha512, 0));
        assert!(suite.uses_counter());
        assert_eq!(suite.question(), (QuestionFormat::Hex, 64));
        assert_eq!(suite.pin_hash(), Some(Hash::Sha256));
        assert_eq!(suite.session_len(), Some(128));
        assert_eq!(suite.time_step_seconds(), Some(48 * 3600));
        let seconds = OcraSuite::parse("OCRA-1:HOTP-SHA1-10:QA04-T30S").unwrap();
        assert_eq!(seconds.time_step_seconds(), Some(30));
        assert_eq!(seconds.question(), (QuestionFormat::Alphanumeric, 4));
    }

    #[test]
    fn malformed_suites_are_refused() {
        let bad = [
            "",
            "OCRA-1:HOTP-SHA1-6",
            "OCRA-2:HOTP-SHA1-6:QN08",
            "OCRA-1:TOTP-SHA1-6:QN08",
            "OCRA-1:HOTP-SHA384-6:QN08",
            "OCRA-1:HOTP-SHA1-3:QN08",
            "OCRA-1:HOTP-SHA1-11:QN08",
            "OCRA-1:HOTP-SHA1-a0:QN08",
            "OCRA-1:HOTP-SHA1-6:C",
            "OCRA-1:HOTP-SHA1-6:QX08",
            "OCRA-1:HOTP-SHA1-6:QN8",
            "OCRA-1:HOTP-SHA1-6:QN03",
            "OCRA-1:HOTP-SHA1-6:QN65",
            "OCRA-1:HOTP-SHA1-6:QN08-PMD5",
            "OCRA-1:HOTP-SHA1-6:QN08-S64",
            "OCRA-1:HOTP-SHA1-6:QN08-S513",
            "OCRA-1:HOTP-SHA1-6:QN08-T",
            "OCRA-1:HOTP-SHA1-6:QN08-T60S",
            "OCRA-1:HOTP-SHA1-6:QN08-T49H",
            "OCRA-1:HOTP-SHA1-6:QN08-T0M",
            "OCRA-1:HOTP-SHA1-6:QN08-T1X",
            "OCRA-1:HOTP-SHA1-6:QN08-T1M-C",
            "OCRA-1:HOTP-SHA1-6:QN08-T1M-PSHA1",
            "OCRA-1:HOTP-SHA1-6:QN08:",
            "OCRA-1:HOTP-SHA1-6:QN08-",
        ];
        for text in bad {
            assert!(
                matches!(OcraSuite::parse(text), Err(CodeError::InvalidSuite { .. })),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_suite_is_text_on_the_wire_and_is_checked_when_read() {
        let suite = OcraSuite::parse("OCRA-1:HOTP-SHA1-6:QN08").unwrap();
        assert_eq!(
            serde_json::to_value(&suite).unwrap(),
            "OCRA-1:HOTP-SHA1-6:QN08"
        );
        let back: OcraSuite = serde_json::from_str("\"OCRA-1:HOTP-SHA1-6:QN08\"").unwrap();
        assert_eq!(back, suite);
        assert!(serde_json::from_str::<OcraSuite>("\"OCRA-1:HOTP-SHA1-6\"").is_err());
        assert_eq!(suite.to_string(), suite.as_str());
        assert_eq!("OCRA-1:HOTP-SHA1-6:QN08".parse::<OcraSuite>(), Ok(suite));
    }
}
