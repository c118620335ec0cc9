//! What can be asked of an action request, and what a decision needs to know besides.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::codes::OcraSuite;
use crate::values::{ActionName, Display, Method, PublicKey, TtlSeconds, UserId};

/// The request to make a new action request.
#[derive(Debug, Clone, PartialEq)]
pub struct Create {
    /// The new request's id.
    pub id: Uuid,
    /// The client making it.
    pub client_id: Uuid,
    /// What is to be approved.
    pub action: ActionName,
    /// Whose approval is asked for.
    pub uid: UserId,
    /// What will be executed; must be a JSON object.
    pub payload: Value,
    /// What the user is shown; defaults to the payload's top-level scalar fields.
    pub display: Option<Display>,
    /// How the user is asked.
    pub method: Method,
    /// The user's devices to address; must not be empty for a push or an OCRA request.
    pub devices: Vec<Uuid>,
    /// The OCRA challenge (see [`crate::codes::challenge`]): required for `ocra`, and with
    /// `push` it opens the OCRA fallback.
    pub challenge: Option<String>,
    /// The devices to notify through the push gateway (each must be among `devices`); empty
    /// when no gateway is configured.
    pub notify: Vec<Uuid>,
    /// For `sms`, `email` and `voice`: the keyed hash of the code to send, bound to the binding.
    pub code_hash: Option<String>,
    /// For `sms`, `email` and `voice`: where the client asked the code to be sent.
    pub destination: Option<String>,
    /// How long the request stays `PENDING`.
    pub ttl: TtlSeconds,
    /// A fresh random nonce for the approval message.
    pub nonce: String,
    /// The client's `Idempotency-Key`, if any.
    pub idempotency_key: Option<String>,
    /// The hash of the creating request body, if any.
    pub request_hash: Option<String>,
    /// Where final statuses are reported, if anywhere.
    pub callback_url: Option<String>,
}

/// A request to change an action request.
///
/// A command lives only for one decision, so `Create` is held inline rather than boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Make the request.
    Create(Create),
    /// A device approves, signing the approval message with its enrolled key.
    Confirm {
        /// The device.
        device_id: Uuid,
        /// The device's enrolled public key.
        public_key: PublicKey,
        /// The signature over the `confirm` approval message, raw `r ‖ s` or DER.
        signature: Vec<u8>,
    },
    /// A device declines, signing the approval message with its enrolled key.
    Reject {
        /// The device.
        device_id: Uuid,
        /// The device's enrolled public key.
        public_key: PublicKey,
        /// The signature over the `reject` approval message, raw `r ‖ s` or DER.
        signature: Vec<u8>,
    },
    /// A one-time code the user typed in, checked against the request's challenge.
    VerifyCode {
        /// The device that produced the code, when known; otherwise the request's first device.
        device_id: Option<Uuid>,
        /// The code as typed.
        code: String,
        /// How to compute the expected code.
        check: CodeCheck,
    },
    /// The client withdraws the request.
    Cancel,
    /// Time has run out (sent by the expiry task).
    Expire,
    /// The client spends the consumption token to execute `action` with `payload`.
    ConsumeToken {
        /// The action about to be executed.
        action: ActionName,
        /// The payload about to be executed; compared by canonical form.
        payload: Value,
    },
}

/// How the code of a [`Command::VerifyCode`] is checked.
#[derive(Clone, PartialEq, Eq)]
pub enum CodeCheck {
    /// An OCRA response over the request's challenge, within one time step of now.
    Ocra {
        /// The device's suite.
        suite: OcraSuite,
        /// The device's secret, decrypted by the caller.
        key: Vec<u8>,
    },
    /// A code sent by SMS, email or voice: its keyed hash must equal the recorded one.
    Sent {
        /// The key the code's hash is keyed with.
        key: Vec<u8>,
    },
}

impl std::fmt::Debug for CodeCheck {
    /// Names the suite but never shows the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CodeCheck::Ocra { suite, .. } => f
                .debug_struct("Ocra")
                .field("suite", &suite.as_str())
                .field("key", &"<redacted>")
                .finish(),
            CodeCheck::Sent { .. } => f.debug_struct("Sent").field("key", &"<redacted>").finish(),
        }
    }
}

/// What a decision needs besides the state and the command.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The current time.
    pub now: DateTime<Utc>,
    /// The server key consumption tokens are derived with.
    pub token_key: &'a [u8],
    /// How long a consumption token stays valid.
    pub token_ttl: Duration,
    /// How many wrong signatures or codes a new request allows.
    pub max_attempts: u8,
}

impl<'a> Context<'a> {
    /// The default lifetime of a consumption token, in seconds.
    pub const DEFAULT_TOKEN_TTL_SECONDS: i64 = 60;
    /// The default number of attempts.
    pub const DEFAULT_MAX_ATTEMPTS: u8 = 5;

    /// A context at `now` with the default token lifetime (60 s) and attempts (5).
    pub fn new(now: DateTime<Utc>, token_key: &'a [u8]) -> Self {
        Self {
            now,
            token_key,
            token_ttl: Duration::seconds(Self::DEFAULT_TOKEN_TTL_SECONDS),
            max_attempts: Self::DEFAULT_MAX_ATTEMPTS,
        }
    }
}
