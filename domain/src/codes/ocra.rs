//! OCRA (RFC 6287): a response computed over a suite's inputs, as the reference algorithm of
//! RFC 6287 Appendix A lays them out.

use super::{decimal, hmac, truncate, CodeError, OcraSuite, QuestionFormat};

/// The length of the question field of every OCRA message, in bytes.
const QUESTION_BYTES: usize = 128;

/// The inputs of an OCRA computation; the suite says which are used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OcraInput<'a> {
    /// The counter, for a suite with `C`.
    pub counter: Option<u64>,
    /// The question (challenge), written as the suite's `Q` format says.
    pub question: &'a str,
    /// The hash of the PIN, for a suite with `P`: exactly as long as that hash's output.
    pub pin_hash: Option<Vec<u8>>,
    /// The session information, for a suite with `S`: at most its declared length.
    pub session: Option<&'a [u8]>,
    /// The number of time steps since the Unix epoch, for a suite with `T`.
    pub timestamp: Option<u64>,
}

/// The OCRA response of `suite` under `key`: HMAC over the suite's text, a zero byte, then
/// the counter (8 bytes big-endian), the question (128 bytes), the PIN hash, the session
/// information (left-padded with zeros to its declared length) and the timestamp (8 bytes
/// big-endian), each only when the suite names it; dynamically truncated to the suite's
/// digits, or the whole HMAC in uppercase hexadecimal for a suite with 0 digits.
///
/// Inputs the suite does not name are ignored.
pub fn ocra(suite: &OcraSuite, key: &[u8], input: &OcraInput<'_>) -> Result<String, CodeError> {
    let mut message = suite.as_str().as_bytes().to_vec();
    message.push(0);
    if suite.uses_counter() {
        let counter = input.counter.ok_or(CodeError::MissingInput("counter"))?;
        message.extend_from_slice(&counter.to_be_bytes());
    }
    message.extend_from_slice(&question_field(suite.question().0, input.question)?);
    if let Some(hash) = suite.pin_hash() {
        let pin = input
            .pin_hash
            .as_deref()
            .ok_or(CodeError::MissingInput("pin"))?;
        if pin.len() != hash.output_len() {
            return Err(CodeError::InvalidPinHash);
        }
        message.extend_from_slice(pin);
    }
    if let Some(len) = suite.session_len() {
        let session = input.session.ok_or(CodeError::MissingInput("session"))?;
        let padding = len
            .checked_sub(session.len())
            .ok_or(CodeError::SessionTooLong)?;
        message.resize(message.len() + padding, 0);
        message.extend_from_slice(session);
    }
    if suite.time_step_seconds().is_some() {
        let timestamp = input
            .timestamp
            .ok_or(CodeError::MissingInput("timestamp"))?;
        message.extend_from_slice(&timestamp.to_be_bytes());
    }
    let mac = hmac(suite.hash(), key, &message);
    Ok(match suite.digits() {
        0 => hex::encode_upper(mac),
        digits => decimal(u64::from(truncate(&mac)), digits),
    })
}

/// The 128-byte question field: the question as hexadecimal digits (a numeric question's
/// value, an alphanumeric question's bytes, a hexadecimal question as it is), left-aligned and
/// followed by zeros.
fn question_field(format: QuestionFormat, question: &str) -> Result<Vec<u8>, CodeError> {
    let digits = match format {
        QuestionFormat::Numeric if question.bytes().all(|b| b.is_ascii_digit()) => {
            decimal_to_hex(question)
        }
        QuestionFormat::Hex if question.bytes().all(|b| b.is_ascii_hexdigit()) => {
            question.to_owned()
        }
        QuestionFormat::Alphanumeric => hex::encode(question.as_bytes()),
        QuestionFormat::Numeric | QuestionFormat::Hex => return Err(CodeError::InvalidQuestion),
    };
    if question.is_empty() || digits.len() > 2 * QUESTION_BYTES {
        return Err(CodeError::InvalidQuestion);
    }
    let padded = format!("{digits:0<width$}", width = 2 * QUESTION_BYTES);
    Ok(hex::decode(padded).expect("the question field is hexadecimal digits"))
}

/// A string of decimal digits as its value in hexadecimal, without leading zeros ("0" for
/// zero), however long the number.
fn decimal_to_hex(decimal: &str) -> String {
    let mut value: Vec<u8> = Vec::new();
    for digit in decimal.bytes().map(|b| b - b'0') {
        let mut carry = u32::from(digit);
        for byte in value.iter_mut().rev() {
            let next = u32::from(*byte) * 10 + carry;
            *byte = (next & 0xff) as u8;
            carry = next >> 8;
        }
        while carry > 0 {
            value.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let text = hex::encode_upper(value);
    let significant = text.trim_start_matches('0');
    if significant.is_empty() {
        "0".to_owned()
    } else {
        significant.to_owned()
    }
}

#[cfg(test)]
mod vectors;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::Hash;

    fn seed(len: usize) -> Vec<u8> {
        b"1234567890".iter().copied().cycle().take(len).collect()
    }

    #[test]
    fn numeric_questions_become_their_hexadecimal_value_left_aligned() {
        assert_eq!(decimal_to_hex("00000000"), "0");
        assert_eq!(decimal_to_hex("11111111"), "A98AC7");
        assert_eq!(decimal_to_hex("22222222"), "153158E");
        assert_eq!(decimal_to_hex("18446744073709551616"), "10000000000000000");
        let field = question_field(QuestionFormat::Numeric, "22222222").unwrap();
        assert_eq!(field.len(), QUESTION_BYTES);
        assert_eq!(field[..4], [0x15, 0x31, 0x58, 0xe0]);
        assert!(field[4..].iter().all(|b| *b == 0));
    }

    #[test]
    fn hexadecimal_questions_are_taken_as_digits_and_alphanumeric_ones_as_bytes() {
        let hex_field = question_field(QuestionFormat::Hex, "abc").unwrap();
        assert_eq!(hex_field[..2], [0xab, 0xc0]);
        let text_field = question_field(QuestionFormat::Alphanumeric, "SIG").unwrap();
        assert_eq!(text_field[..4], [b'S', b'I', b'G', 0]);
    }

    #[test]
    fn questions_that_do_not_fit_the_format_are_refused() {
        let cases = [
            (QuestionFormat::Numeric, "1234567a".to_owned()),
            (QuestionFormat::Numeric, String::new()),
            (QuestionFormat::Hex, "12g4".to_owned()),
            (QuestionFormat::Alphanumeric, String::new()),
            (QuestionFormat::Alphanumeric, "x".repeat(129)),
            (QuestionFormat::Hex, "f".repeat(257)),
        ];
        for (format, question) in cases {
            assert_eq!(
                question_field(format, &question),
                Err(CodeError::InvalidQuestion),
                "{format} {question:?}"
            );
        }
        assert!(question_field(QuestionFormat::Alphanumeric, &"x".repeat(128)).is_ok());
    }

    #[test]
    fn inputs_the_suite_names_must_be_given() {
        let missing = [
            ("OCRA-1:HOTP-SHA1-6:C-QN08", "counter"),
            ("OCRA-1:HOTP-SHA1-6:QN08-PSHA1", "pin"),
            ("OCRA-1:HOTP-SHA1-6:QN08-S064", "session"),
            ("OCRA-1:HOTP-SHA1-6:QN08-T1M", "timestamp"),
        ];
        let input = OcraInput {
            question: "12345678",
            ..OcraInput::default()
        };
        for (suite, what) in missing {
            let suite = OcraSuite::parse(suite).unwrap();
            assert_eq!(
                ocra(&suite, &seed(20), &input),
                Err(CodeError::MissingInput(what))
            );
        }
    }

    #[test]
    fn a_pin_hash_of_the_wrong_length_and_an_overlong_session_are_refused() {
        let with_pin = OcraSuite::parse("OCRA-1:HOTP-SHA1-6:QN08-PSHA256").unwrap();
        let input = OcraInput {
            question: "1",
            pin_hash: Some(vec![0; Hash::Sha1.output_len()]),
            ..OcraInput::default()
        };
        assert_eq!(
            ocra(&with_pin, &seed(20), &input),
            Err(CodeError::InvalidPinHash)
        );
        let with_session = OcraSuite::parse("OCRA-1:HOTP-SHA1-6:QN08-S004").unwrap();
        let long = OcraInput {
            question: "1",
            session: Some(b"12345"),
            ..OcraInput::default()
        };
        assert_eq!(
            ocra(&with_session, &seed(20), &long),
            Err(CodeError::SessionTooLong)
        );
    }

    #[test]
    fn short_session_information_is_left_padded_with_zeros() {
        let suite = OcraSuite::parse("OCRA-1:HOTP-SHA1-6:QN08-S004").unwrap();
        let code = |session: &[u8]| {
            let input = OcraInput {
                question: "1",
                session: Some(session),
                ..OcraInput::default()
            };
            ocra(&suite, &seed(20), &input).unwrap()
        };
        assert_eq!(code(b"\x01\x02"), code(b"\x00\x00\x01\x02"));
        assert_ne!(code(b"\x01\x02"), code(b"\x01\x02\x00\x00"));
    }

    #[test]
    fn a_suite_with_no_truncation_answers_the_whole_hmac_in_hexadecimal() {
        let suite = OcraSuite::parse("OCRA-1:HOTP-SHA256-0:QN08").unwrap();
        let input = OcraInput {
            question: "12345678",
            ..OcraInput::default()
        };
        let full = ocra(&suite, &seed(32), &input).unwrap();
        assert_eq!(full.len(), 2 * Hash::Sha256.output_len());
        assert!(full
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()));
    }
}
