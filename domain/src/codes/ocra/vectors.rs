//! RFC 6287 Appendix C: every test vector of the one-way (C.1), mutual (C.2) and plain
//! signature (C.3) modes.

use sha1::{Digest, Sha1};

use super::*;

/// The RFC's seeds: "1234567890" repeated to 20, 32 and 64 bytes.
fn seed(len: usize) -> Vec<u8> {
    b"1234567890".iter().copied().cycle().take(len).collect()
}

/// The PIN "1234" hashed with SHA-1, as the RFC's vectors use it.
fn pin() -> Vec<u8> {
    Sha1::digest(b"1234").to_vec()
}

/// The RFC's timestamp: minutes since the epoch on 25 March 2008, 12:06:30 GMT.
const TIMESTAMP: u64 = 0x132_d0b6;

/// "00000000", "11111111", … "99999999".
fn repeated(digit: usize) -> String {
    digit.to_string().repeat(8)
}

fn check(suite: &str, key_len: usize, cases: &[(OcraInput<'_>, &str)]) {
    let parsed = OcraSuite::parse(suite).unwrap();
    for (input, expected) in cases {
        assert_eq!(
            ocra(&parsed, &seed(key_len), input).as_deref(),
            Ok(*expected),
            "{suite} {input:?}"
        );
    }
}

fn questions<'a>(questions: &'a [String], expected: &[&'a str]) -> Vec<(OcraInput<'a>, &'a str)> {
    questions
        .iter()
        .zip(expected)
        .map(|(q, code)| {
            let input = OcraInput {
                question: q,
                ..OcraInput::default()
            };
            (input, *code)
        })
        .collect()
}

#[test]
fn the_pin_hash_is_the_one_the_rfc_lists() {
    assert_eq!(
        hex::encode(pin()),
        "7110eda4d09e062aa5e4a390b0a572ac0d2c0220"
    );
    assert_eq!(TIMESTAMP, 20_107_446);
}

/// C.1, OCRA-1:HOTP-SHA1-6:QN08 with the 20-byte key.
#[test]
fn one_way_sha1_six_digits_over_a_numeric_question() {
    let qs: Vec<_> = (0..10).map(repeated).collect();
    let expected = [
        "237653", "243178", "653583", "740991", "608993", "388898", "816933", "224598", "750600",
        "294470",
    ];
    check("OCRA-1:HOTP-SHA1-6:QN08", 20, &questions(&qs, &expected));
}

/// C.1, OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1 with the 32-byte key, Q = 12345678, C = 0..9.
#[test]
fn one_way_sha256_with_a_counter_and_a_pin() {
    let expected = [
        "65347737", "86775851", "78192410", "71565254", "10104329", "65983500", "70069104",
        "91771096", "75011558", "08522129",
    ];
    let cases: Vec<_> = (0..10u64)
        .zip(expected)
        .map(|(counter, code)| {
            let input = OcraInput {
                counter: Some(counter),
                question: "12345678",
                pin_hash: Some(pin()),
                ..OcraInput::default()
            };
            (input, code)
        })
        .collect();
    check("OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1", 32, &cases);
}

/// C.1, OCRA-1:HOTP-SHA256-8:QN08-PSHA1 with the 32-byte key.
#[test]
fn one_way_sha256_with_a_pin() {
    let qs: Vec<_> = (0..5).map(repeated).collect();
    let expected = ["83238735", "01501458", "17957585", "86776967", "86807031"];
    let mut cases = questions(&qs, &expected);
    for (input, _) in &mut cases {
        input.pin_hash = Some(pin());
    }
    check("OCRA-1:HOTP-SHA256-8:QN08-PSHA1", 32, &cases);
}

/// C.1, OCRA-1:HOTP-SHA512-8:C-QN08 with the 64-byte key, C = 0..9 and Q = 00000000…99999999.
#[test]
fn one_way_sha512_with_a_counter() {
    let qs: Vec<_> = (0..10).map(repeated).collect();
    let expected = [
        "07016083", "63947962", "70123924", "25341727", "33203315", "34205738", "44343969",
        "51946085", "20403879", "31409299",
    ];
    let cases: Vec<_> = qs
        .iter()
        .zip(0u64..)
        .zip(expected)
        .map(|((q, counter), code)| {
            let input = OcraInput {
                counter: Some(counter),
                question: q,
                ..OcraInput::default()
            };
            (input, code)
        })
        .collect();
    check("OCRA-1:HOTP-SHA512-8:C-QN08", 64, &cases);
}

/// C.1, OCRA-1:HOTP-SHA512-8:QN08-T1M with the 64-byte key at the RFC's timestamp.
#[test]
fn one_way_sha512_with_a_timestamp() {
    let qs: Vec<_> = (0..5).map(repeated).collect();
    let expected = ["95209754", "55907591", "22048402", "24218844", "36209546"];
    let mut cases = questions(&qs, &expected);
    for (input, _) in &mut cases {
        input.timestamp = Some(TIMESTAMP);
    }
    check("OCRA-1:HOTP-SHA512-8:QN08-T1M", 64, &cases);
}

/// The server's and the client's questions of C.2: CLI2222n + SRV1111n and the reverse.
fn mutual(server_first: bool) -> Vec<String> {
    (0..5)
        .map(|i| {
            let (cli, srv) = (format!("CLI2222{i}"), format!("SRV1111{i}"));
            if server_first {
                srv + &cli
            } else {
                cli + &srv
            }
        })
        .collect()
}

/// C.2, OCRA-1:HOTP-SHA256-8:QA08 with the 32-byte key: server then client responses.
#[test]
fn mutual_sha256_server_and_client_responses() {
    let server = ["28247970", "01984843", "65387857", "03351211", "83412541"];
    let client = ["15510767", "90175646", "33777207", "95285278", "28934924"];
    let (to_server, to_client) = (mutual(false), mutual(true));
    check(
        "OCRA-1:HOTP-SHA256-8:QA08",
        32,
        &questions(&to_server, &server),
    );
    check(
        "OCRA-1:HOTP-SHA256-8:QA08",
        32,
        &questions(&to_client, &client),
    );
}

/// C.2, OCRA-1:HOTP-SHA512-8:QA08 (server) and OCRA-1:HOTP-SHA512-8:QA08-PSHA1 (client).
#[test]
fn mutual_sha512_server_and_client_with_a_pin() {
    let server = ["79496648", "76831980", "12250499", "90856481", "12761449"];
    let client = ["18806276", "70020315", "01600026", "18951020", "32528969"];
    let (to_server, to_client) = (mutual(false), mutual(true));
    check(
        "OCRA-1:HOTP-SHA512-8:QA08",
        64,
        &questions(&to_server, &server),
    );
    let mut cases = questions(&to_client, &client);
    for (input, _) in &mut cases {
        input.pin_hash = Some(pin());
    }
    check("OCRA-1:HOTP-SHA512-8:QA08-PSHA1", 64, &cases);
}

/// C.3, OCRA-1:HOTP-SHA256-8:QA08 with the 32-byte key, Q = SIG10000 … SIG14000.
#[test]
fn plain_signature_sha256() {
    let qs: Vec<_> = (0..5).map(|i| format!("SIG1{i}000")).collect();
    let expected = ["53095496", "04110475", "31331128", "76028668", "46554205"];
    check("OCRA-1:HOTP-SHA256-8:QA08", 32, &questions(&qs, &expected));
}

/// C.3, OCRA-1:HOTP-SHA512-8:QA10-T1M with the 64-byte key at the RFC's timestamp.
#[test]
fn plain_signature_sha512_with_a_timestamp() {
    let qs: Vec<_> = (0..5).map(|i| format!("SIG1{i}00000")).collect();
    let expected = ["77537423", "31970405", "10235557", "95213541", "65360607"];
    let mut cases = questions(&qs, &expected);
    for (input, _) in &mut cases {
        input.timestamp = Some(TIMESTAMP);
    }
    check("OCRA-1:HOTP-SHA512-8:QA10-T1M", 64, &cases);
}
