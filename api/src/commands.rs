//! Running commands: load the aggregate from its stream, decide, append with the expected
//! version, and on a concurrent change start over with fresh state.
//!
//! The expected-version check is what makes confirm, reject, cancel, expire and consume race
//! safely: exactly one of two racing commands appends; the other re-reads and is refused by the
//! domain (`not_pending`, `token_already_consumed`).

use countersign_domain::action_request::{self, ActionRequest, Command, Context, DomainError};
use countersign_domain::device::{self, Device, DeviceError};
use countersign_store::{ExpectedVersion, Metadata, NewEvent, RecordedEvent, StoreError};
use uuid::Uuid;

use crate::state::AppState;

/// How often a command is retried after losing a race before giving up.
const MAX_RETRIES: usize = 16;

/// Why a command did not run.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E> {
    /// The domain refused it.
    #[error("{0}")]
    Domain(E),
    /// The store refused or failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// A stored event could not be read back.
    #[error("stored event cannot be decoded: {0}")]
    Decode(String),
    /// It lost the race every time.
    #[error("too much contention on stream {0}")]
    Contention(String),
}

/// The result of a command that ran.
#[derive(Debug)]
pub struct Outcome<S, E> {
    /// State after the command.
    pub state: S,
    /// Events it appended (none when it was a no-op).
    pub events: Vec<E>,
}

fn expected(version: u64) -> ExpectedVersion {
    if version == 0 {
        ExpectedVersion::NoStream
    } else {
        ExpectedVersion::Exact(version)
    }
}

/// What the command runner needs to know of an aggregate.
pub trait Aggregate {
    /// The aggregate's state.
    type State;
    /// Its commands.
    type Command;
    /// Its events.
    type Event;
    /// Its domain refusals.
    type Error;
    /// The stream that holds one instance.
    fn stream(id: Uuid) -> String;
    /// Decodes a stored event.
    fn decode(recorded: &RecordedEvent) -> Result<Self::Event, String>;
    /// Encodes an event as (type, schema version, data).
    fn encode(event: &Self::Event) -> (&'static str, u32, serde_json::Value);
    /// The domain's decision, with the clock read and keys supplied here.
    fn decide(
        app: &AppState,
        state: Option<&Self::State>,
        command: Self::Command,
    ) -> Result<Vec<Self::Event>, Self::Error>;
    /// The domain's fold.
    fn evolve(state: Option<Self::State>, event: &Self::Event) -> Option<Self::State>;
    /// The refusal for a command on a stream that does not exist.
    fn not_found() -> Self::Error;
    /// A command's name, for metrics.
    fn command_name(command: &Self::Command) -> &'static str;
}

/// Action requests, streams `action-request-<id>`.
pub struct ActionRequests;

impl Aggregate for ActionRequests {
    type State = ActionRequest;
    type Command = Command;
    type Event = action_request::Event;
    type Error = DomainError;

    fn stream(id: Uuid) -> String {
        action_request::stream_id(id)
    }
    fn decode(r: &RecordedEvent) -> Result<Self::Event, String> {
        action_request::Event::from_stored(&r.event_type, r.schema_version, &r.data)
            .map_err(|e| e.to_string())
    }
    fn encode(e: &Self::Event) -> (&'static str, u32, serde_json::Value) {
        (e.event_type(), e.schema_version(), e.data())
    }
    fn decide(
        app: &AppState,
        state: Option<&ActionRequest>,
        command: Command,
    ) -> Result<Vec<Self::Event>, DomainError> {
        let ctx = Context {
            now: app.now(),
            token_key: &app.keys.token_key,
            token_ttl: app.settings.token_ttl,
            max_attempts: app.settings.max_attempts,
        };
        action_request::decide(state, command, &ctx)
    }
    fn evolve(state: Option<ActionRequest>, event: &Self::Event) -> Option<ActionRequest> {
        action_request::evolve(state, event)
    }
    fn not_found() -> DomainError {
        DomainError::NotFound
    }
    fn command_name(command: &Command) -> &'static str {
        match command {
            Command::Create(_) => "create",
            Command::Confirm { .. } => "confirm",
            Command::Reject { .. } => "reject",
            Command::VerifyCode { .. } => "verify_code",
            Command::Cancel => "cancel",
            Command::Expire => "expire",
            Command::ConsumeToken { .. } => "consume_token",
        }
    }
}

/// Devices, streams `device-<id>`.
pub struct Devices;

impl Aggregate for Devices {
    type State = Device;
    type Command = device::Command;
    type Event = device::Event;
    type Error = DeviceError;

    fn stream(id: Uuid) -> String {
        device::stream_id(id)
    }
    fn decode(r: &RecordedEvent) -> Result<Self::Event, String> {
        device::Event::from_stored(&r.event_type, r.schema_version, &r.data)
            .map_err(|e| e.to_string())
    }
    fn encode(e: &Self::Event) -> (&'static str, u32, serde_json::Value) {
        (e.event_type(), e.schema_version(), e.data())
    }
    fn decide(
        app: &AppState,
        state: Option<&Device>,
        command: device::Command,
    ) -> Result<Vec<Self::Event>, DeviceError> {
        device::decide(state, command, &device::Context { now: app.now() })
    }
    fn evolve(state: Option<Device>, event: &Self::Event) -> Option<Device> {
        device::evolve(state, event)
    }
    fn not_found() -> DeviceError {
        DeviceError::NotFound
    }
    fn command_name(command: &device::Command) -> &'static str {
        match command {
            device::Command::Enrol(_) => "enrol_device",
            device::Command::Revoke => "revoke_device",
        }
    }
}

/// The current state of one aggregate instance, from its stream.
pub async fn load<A: Aggregate>(
    app: &AppState,
    id: Uuid,
) -> Result<Option<A::State>, CommandError<A::Error>> {
    let recorded = app.store.read_stream(&A::stream(id)).await?;
    let history = recorded
        .iter()
        .map(|r| A::decode(r).map_err(CommandError::Decode))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(history.iter().fold(None, A::evolve))
}

/// Runs a command against one aggregate instance. `command` is called once per attempt.
/// Counts it in the metrics by name and outcome.
pub async fn execute<A: Aggregate>(
    app: &AppState,
    id: Uuid,
    metadata: &Metadata,
    mut command: impl FnMut() -> A::Command,
) -> Result<Outcome<A::State, A::Event>, CommandError<A::Error>> {
    let name = std::sync::OnceLock::new();
    let result = attempt::<A>(app, id, metadata, || {
        let made = command();
        let _ = name.set(A::command_name(&made));
        made
    })
    .await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(CommandError::Domain(_)) => "refused",
        Err(CommandError::Contention(_)) => "conflict",
        Err(_) => "error",
    };
    app.metrics
        .command(name.get().copied().unwrap_or("unknown"), outcome);
    result
}

/// Runs a command, starting over with fresh state whenever it loses a race.
async fn attempt<A: Aggregate>(
    app: &AppState,
    id: Uuid,
    metadata: &Metadata,
    mut command: impl FnMut() -> A::Command,
) -> Result<Outcome<A::State, A::Event>, CommandError<A::Error>> {
    let stream = A::stream(id);
    for _ in 0..MAX_RETRIES {
        let recorded = app.store.read_stream(&stream).await?;
        let history = recorded
            .iter()
            .map(|r| A::decode(r).map_err(CommandError::Decode))
            .collect::<Result<Vec<_>, _>>()?;
        let state = history.iter().fold(None, A::evolve);
        let events = A::decide(app, state.as_ref(), command()).map_err(CommandError::Domain)?;
        if events.is_empty() {
            return state
                .map(|state| Outcome { state, events })
                .ok_or(CommandError::Domain(A::not_found()));
        }
        let batch: Vec<NewEvent> = events
            .iter()
            .map(|e| {
                let (event_type, schema_version, data) = A::encode(e);
                NewEvent {
                    event_id: Uuid::now_v7(),
                    event_type: event_type.to_owned(),
                    schema_version,
                    data,
                    metadata: metadata.clone(),
                }
            })
            .collect();
        match app
            .store
            .append(&stream, expected(recorded.len() as u64), batch)
            .await
        {
            Ok(_) => {
                let state = events
                    .iter()
                    .fold(state, A::evolve)
                    .ok_or(CommandError::Domain(A::not_found()))?;
                return Ok(Outcome { state, events });
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(CommandError::Contention(stream))
}
