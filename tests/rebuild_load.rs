//! Rebuilding every projection through the ops API while commands and polls keep coming gives
//! no wrong answer, on SQLite and on PostgreSQL.
//!
//! A workload creates requests for a few users, has their phones confirm most and reject some,
//! leaves some pending and spends some tokens, and records when each command was sent and when
//! its answer came. Pollers read the polling endpoint, the devices' inboxes, the auditors' search
//! and the daily statistics, and judge every answer against that record: whatever was
//! acknowledged before a read was sent must show in it, and nothing whose command was sent after
//! the read's answer came may show. Meanwhile an admin rebuilds every listed projection, one after
//! another, round after round.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::device::Phone;
use common::{create_body, transfer, Auth, Reply, TestApp, ACTION};
use countersign_api::credentials::Role;
use countersign_testing::TestDatabase;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

/// The users, one phone each; the workload runs one lane per user.
const USERS: [&str; 4] = ["anna", "ben", "cleo", "dora"];
/// How long the workload and the pollers run before the first rebuild.
const WARM_UP: Duration = Duration::from_millis(1500);
/// Once every projection has been rebuilt, rebuilds go on round after round until this much
/// time has passed since the first.
const REBUILD_PHASE: Duration = Duration::from_secs(10);
/// The longest one rebuild may take.
const REBUILD_LIMIT: Duration = Duration::from_secs(30);
/// Answers slower than this are listed in the output (reads from the asynchronous projections
/// wait at most 5 seconds for them to catch up, then answer from what they hold).
const SLOW: Duration = Duration::from_secs(1);
/// The fewest checks of each kind for a run to count (a search checks every request of a user
/// at once, so even a loaded machine makes this many).
const MIN_CHECKS: u64 = 20;
/// The fewest commands the workload must have had acknowledged while rebuilds ran.
const MIN_ACKS_DURING_REBUILDS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_rebuilding_every_projection_under_load_gives_no_wrong_answer() {
    let app = common::spawn_app().await;
    rebuild_under_load("sqlite", app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rebuilding_every_projection_under_load_gives_no_wrong_answer() {
    let Some(database) = TestDatabase::for_test().await else {
        return;
    };
    let app = common::spawn_app_on(&database.url).await;
    rebuild_under_load("postgres", app).await;
    // The server is gone (the test body owned it); only now is the database dropped.
    drop(database);
}

// ---------------------------------------------------------------------------------------------
// The ground truth.

/// The statuses the workload can bring about (`EXPIRED` is never right here: the requests live
/// 180 seconds and their tokens 60).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Pending,
    Confirmed,
    Rejected,
    Consumed,
}

impl Status {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "PENDING" => Some(Self::Pending),
            "CONFIRMED" => Some(Self::Confirmed),
            "REJECTED" => Some(Self::Rejected),
            "CONSUMED" => Some(Self::Consumed),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Confirmed => "CONFIRMED",
            Self::Rejected => "REJECTED",
            Self::Consumed => "CONSUMED",
        }
    }
}

/// One command: when it was sent (taken before it is recorded, which is before it leaves) and
/// when its successful answer came (taken when it arrived; `None`: not yet, or never).
#[derive(Clone, Copy, Debug)]
struct Command {
    sent: Instant,
    acked: Option<Instant>,
}

impl Command {
    fn describe(&self, origin: Instant) -> String {
        match self.acked {
            Some(acked) => format!(
                "sent at {} acknowledged at {}",
                at(origin, self.sent),
                at(origin, acked)
            ),
            None => format!("sent at {}, not acknowledged", at(origin, self.sent)),
        }
    }

    fn acked_before(&self, instant: Instant) -> bool {
        self.acked.is_some_and(|acked| acked < instant)
    }
}

/// A request whose creation was acknowledged, and what was done to it since.
#[derive(Debug)]
struct Known {
    id: String,
    user: usize,
    /// When the create's `201` came.
    created: Instant,
    /// `CONFIRMED` or `REJECTED`, by the user's phone.
    decision: Option<(Status, Command)>,
    /// The token's consumption.
    consume: Option<Command>,
}

impl Known {
    /// Why `seen` is a wrong status for a read sent at `sent` and answered at `answered`.
    fn judge(&self, seen: &Value, sent: Instant, answered: Instant) -> Result<(), String> {
        let Some(status) = seen.as_str().and_then(Status::parse) else {
            return Err(format!("status {seen}"));
        };
        // Nothing whose command was sent after the answer came may show.
        let decided = self
            .decision
            .filter(|(_, command)| command.sent <= answered)
            .map(|(status, _)| status);
        let consumed = self.consume.is_some_and(|c| c.sent <= answered);
        let possible = match status {
            Status::Pending => true,
            Status::Confirmed | Status::Rejected => decided == Some(status),
            Status::Consumed => decided == Some(Status::Confirmed) && consumed,
        };
        if !possible {
            return Err(format!(
                "{} although no such command had been sent when the answer came",
                status.name()
            ));
        }
        // Everything acknowledged before the read was sent must show.
        let required = if self.consume.is_some_and(|c| c.acked_before(sent)) {
            Some(Status::Consumed)
        } else {
            self.decision
                .filter(|(_, command)| command.acked_before(sent))
                .map(|(status, _)| status)
        };
        let enough = match required {
            None | Some(Status::Pending) => true,
            Some(Status::Confirmed) => matches!(status, Status::Confirmed | Status::Consumed),
            Some(other) => status == other,
        };
        if !enough {
            return Err(format!(
                "{} although {} was acknowledged before the read was sent",
                status.name(),
                required.map_or("", Status::name)
            ));
        }
        Ok(())
    }

    /// Whether a read of its device's inbox sent at `sent` and answered at `answered` must list
    /// it: its creation was acknowledged before, and no decision was sent before the answer.
    fn must_be_in_inbox(&self, sent: Instant, answered: Instant) -> bool {
        self.created < sent
            && self
                .decision
                .is_none_or(|(_, command)| command.sent > answered)
    }

    /// Whether a read of its device's inbox sent at `sent` must not list it: its decision was
    /// acknowledged before.
    fn must_not_be_in_inbox(&self, sent: Instant) -> bool {
        self.decision
            .is_some_and(|(_, command)| command.acked_before(sent))
    }

    /// What the workload did to it, in seconds since `origin`.
    fn describe(&self, origin: Instant) -> String {
        let mut out = format!(
            "{} of {} created (acknowledged) at {}",
            self.id,
            USERS[self.user],
            at(origin, self.created)
        );
        if let Some((status, command)) = &self.decision {
            out += &format!(", {} {}", status.name(), command.describe(origin));
        }
        if let Some(command) = &self.consume {
            out += &format!(", CONSUMED {}", command.describe(origin));
        }
        out
    }
}

/// `instant` in seconds since `origin`.
fn at(origin: Instant, instant: Instant) -> String {
    format!(
        "{:.3}s",
        instant.saturating_duration_since(origin).as_secs_f64()
    )
}

/// A create sent for `user`; `id` once its `201` came.
#[derive(Debug)]
struct Create {
    user: usize,
    sent: Instant,
    id: Option<String>,
}

/// Everything the workload did, as it learnt it.
#[derive(Default)]
struct Truth {
    creates: Vec<Create>,
    known: Vec<Known>,
    by_id: HashMap<String, usize>,
    /// When every acknowledged command's answer came.
    acks: Vec<Instant>,
}

impl Truth {
    fn get(&self, id: &str) -> Option<&Known> {
        self.by_id.get(id).map(|&i| &self.known[i])
    }

    fn get_mut(&mut self, id: &str) -> &mut Known {
        let index = self.by_id[id];
        &mut self.known[index]
    }

    /// Whether an id that is not known may still be a request of `user`'s that a read answered
    /// at `answered` shows: a create of theirs sent by then has no acknowledged id (in flight,
    /// or failed).
    fn may_be_unacknowledged(&self, user: usize, answered: Instant) -> bool {
        self.creates
            .iter()
            .any(|c| c.user == user && c.id.is_none() && c.sent <= answered)
    }

    /// Judges the ids a read for `user` listed (an inbox, a search) that the truth does not
    /// place: unknown ones, and other users' requests.
    fn judge_strangers<'a>(
        &self,
        user: usize,
        listed: impl Iterator<Item = &'a str>,
        answered: Instant,
    ) -> Vec<String> {
        let mut wrong = Vec::new();
        for id in listed {
            match self.get(id) {
                Some(known) if known.user != user => {
                    wrong.push(format!("lists {id}, a request of {}", USERS[known.user]));
                }
                Some(_) => {}
                None if self.may_be_unacknowledged(user, answered) => {}
                None => wrong.push(format!("lists {id}, which no create sent had made")),
            }
        }
        wrong
    }
}

// ---------------------------------------------------------------------------------------------
// What the tasks share.

/// The kinds of checks the pollers make, and the workload's own answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Status,
    Inbox,
    Search,
    Stats,
    Workload,
}

const KINDS: [Kind; 4] = [Kind::Status, Kind::Inbox, Kind::Search, Kind::Stats];

/// What the workload, the pollers and the rebuilds share.
struct Shared {
    app: TestApp,
    phones: Vec<Phone>,
    auditor: (Uuid, String),
    truth: Mutex<Truth>,
    /// Every wrong answer, described.
    wrong: Mutex<Vec<(Kind, String)>>,
    /// Checks made, by kind.
    checks: [AtomicU64; 4],
    /// The slowest answer, in microseconds, by kind.
    slowest: [AtomicU64; 5],
    /// Answers that took longer than [`SLOW`]: when the request was sent, how long, what.
    slow: Mutex<Vec<(Instant, Duration, String)>>,
    stop_workload: AtomicBool,
    /// Set once the workload has stopped: each poller makes one whole round, then ends.
    last_round: AtomicBool,
    started: Instant,
}

impl Shared {
    fn truth(&self) -> std::sync::MutexGuard<'_, Truth> {
        self.truth.lock().expect("not poisoned")
    }

    fn wrong(&self, kind: Kind, what: &str, why: impl std::fmt::Display) {
        let at = self.started.elapsed().as_secs_f64();
        self.wrong
            .lock()
            .expect("not poisoned")
            .push((kind, format!("[{at:7.3}s] {what}: {why}")));
    }

    /// A read's times, in seconds since the start.
    fn read(&self, sent: Instant, answered: Instant) -> String {
        format!(
            "read sent at {}, answered at {}",
            at(self.started, sent),
            at(self.started, answered)
        )
    }

    fn checked(&self, kind: Kind) {
        self.checks[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn client(&self) -> Auth<'_> {
        Auth::Basic(&self.app.client_id, &self.app.secret)
    }

    fn auditor(&self) -> Auth<'_> {
        Auth::Basic(&self.auditor.0, &self.auditor.1)
    }

    /// One exchange; no answer at all is an error, not a panic.
    /// GETs `path` as one check of `kind`: the `200` answer with when it was sent and when it
    /// came; any other answer is recorded as wrong (`None`).
    async fn get_ok(
        &self,
        kind: Kind,
        what: &str,
        path: &str,
        auth: Auth<'_>,
    ) -> Option<(Value, Instant, Instant)> {
        let sent = Instant::now();
        let reply = self.fetch(kind, Method::GET, path, auth, None).await;
        let answered = Instant::now();
        self.checked(kind);
        match reply {
            Ok(reply) if reply.status == StatusCode::OK => Some((reply.body, sent, answered)),
            Ok(reply) => {
                self.wrong(kind, what, format!("{}: {}", reply.status, reply.body));
                None
            }
            Err(why) => {
                self.wrong(kind, what, why);
                None
            }
        }
    }

    async fn fetch(
        &self,
        kind: Kind,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<&Value>,
    ) -> Result<Reply, String> {
        let url = format!("{}{path}", self.app.base);
        let sent = Instant::now();
        let mut request = self
            .app
            .http
            .request(method.clone(), &url)
            .timeout(Duration::from_secs(20));
        request = match auth {
            Auth::None => request,
            Auth::Basic(id, secret) => request.basic_auth(id, Some(secret)),
            Auth::Bearer(token) => request.bearer_auth(token),
        };
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("{method} {path}: no answer: {e}"))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| format!("{method} {path}: {status} with an unreadable body: {e}"))?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        let took = sent.elapsed();
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.slowest[kind as usize].fetch_max(micros, Ordering::Relaxed);
        if took > SLOW {
            let what = format!("{method} {path}");
            self.slow
                .lock()
                .expect("not poisoned")
                .push((sent, took, what));
        }
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// One exchange that must answer `expected`: its body.
    async fn expect(
        &self,
        kind: Kind,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<&Value>,
        expected: StatusCode,
    ) -> Result<Value, String> {
        let reply = self.fetch(kind, method.clone(), path, auth, body).await?;
        if reply.status != expected {
            return Err(format!(
                "{method} {path}: {} (expected {expected}): {}",
                reply.status, reply.body
            ));
        }
        Ok(reply.body)
    }
}

// ---------------------------------------------------------------------------------------------
// The test body.

/// The test body; `backend` names the database in the output.
async fn rebuild_under_load(backend: &str, app: TestApp) {
    let mut phones = Vec::new();
    for uid in USERS {
        phones.push(app.enrol_phone(uid).await);
    }
    let (admin_id, admin_secret) = app.credential(Role::Admin, "ops", &[]).await;
    let auditor = app.credential(Role::Auditor, "auditor", &[]).await;
    let shared = Arc::new(Shared {
        app,
        phones,
        auditor,
        truth: Mutex::new(Truth::default()),
        wrong: Mutex::new(Vec::new()),
        checks: Default::default(),
        slowest: Default::default(),
        slow: Mutex::new(Vec::new()),
        stop_workload: AtomicBool::new(false),
        last_round: AtomicBool::new(false),
        started: Instant::now(),
    });

    let lanes: Vec<_> = (0..USERS.len())
        .map(|user| tokio::spawn(workload(shared.clone(), user)))
        .collect();
    let mut pollers = vec![
        tokio::spawn(poll_statuses(shared.clone(), true)),
        tokio::spawn(poll_statuses(shared.clone(), false)),
        tokio::spawn(poll_users(shared.clone(), Kind::Inbox, vec![0, 2])),
        tokio::spawn(poll_users(shared.clone(), Kind::Inbox, vec![1, 3])),
        tokio::spawn(poll_stats(shared.clone())),
    ];
    // A search waits for its projection to catch up and appends the auditor's read to the log:
    // three pollers, each going round every user from another one, make enough checks.
    for first in 0..3 {
        let users = (0..USERS.len())
            .map(|u| (first + u) % USERS.len())
            .collect();
        pollers.push(tokio::spawn(poll_users(
            shared.clone(),
            Kind::Search,
            users,
        )));
    }
    tokio::time::sleep(WARM_UP).await;

    let admin = Auth::Basic(&admin_id, &admin_secret);
    let rebuilds = rebuild_every_projection(&shared, admin).await;

    shared.stop_workload.store(true, Ordering::SeqCst);
    for lane in lanes {
        lane.await.expect("the workload does not panic");
    }
    shared.last_round.store(true, Ordering::SeqCst);
    for poller in pollers {
        poller.await.expect("no poller panics");
    }

    // What happened, for the test's output.
    let (requests, acks) = {
        let truth = shared.truth();
        (truth.known.len(), truth.acks.clone())
    };
    let checks: Vec<(Kind, u64)> = KINDS
        .iter()
        .map(|&kind| (kind, shared.checks[kind as usize].load(Ordering::SeqCst)))
        .collect();
    let during = |r: &Rebuilt| {
        acks.iter()
            .filter(|&&a| r.started <= a && a <= r.finished)
            .count()
    };
    eprintln!(
        "[{backend}] {} requests made, {} commands acknowledged in {:.1}s; checks: {checks:?}",
        requests,
        acks.len(),
        shared.started.elapsed().as_secs_f64()
    );
    let slowest: Vec<(Kind, Duration)> = KINDS
        .iter()
        .chain([&Kind::Workload])
        .map(|&kind| {
            let micros = shared.slowest[kind as usize].load(Ordering::SeqCst);
            (kind, Duration::from_micros(micros))
        })
        .collect();
    eprintln!("[{backend}] slowest answers: {slowest:?}");
    let slow = shared.slow.lock().expect("not poisoned").clone();
    for (sent, took, what) in slow.iter().take(40) {
        eprintln!(
            "[{backend}] slow: {what} sent at {} took {} ms",
            at(shared.started, *sent),
            took.as_millis()
        );
    }
    if slow.len() > 40 {
        eprintln!("[{backend}] … and {} more slow answers", slow.len() - 40);
    }
    for r in &rebuilds {
        eprintln!(
            "[{backend}] round {} rebuilt {:<12} from {} in {:>5} ms → {:<8} ({} commands acknowledged \
             meanwhile)",
            r.round,
            r.name,
            at(shared.started, r.started),
            (r.finished - r.started).as_millis(),
            r.entry["rebuild"]["state"].as_str().unwrap_or("?"),
            during(r)
        );
    }

    let wrong = shared.wrong.lock().expect("not poisoned").clone();
    let mut report = String::new();
    for kind in KINDS.iter().chain([&Kind::Workload]) {
        let of_kind: Vec<&str> = wrong
            .iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, why)| why.as_str())
            .collect();
        if !of_kind.is_empty() {
            report += &format!(
                "\n{} wrong {kind:?} answers; the first ones:\n",
                of_kind.len()
            );
            report += &of_kind[..of_kind.len().min(8)].join("\n");
        }
    }
    let failed: Vec<&Value> = rebuilds
        .iter()
        .filter(|r| r.entry["rebuild"]["state"] != "live")
        .map(|r| &r.entry)
        .collect();
    assert!(
        wrong.is_empty() && failed.is_empty(),
        "[{backend}] {} wrong answers while rebuilding:{report}\n{} rebuilds did not finish \
         live: {failed:#?}",
        wrong.len(),
        failed.len()
    );
    for (kind, count) in checks {
        assert!(
            count > MIN_CHECKS,
            "[{backend}] only {count} {kind:?} checks: the run proves too little"
        );
    }
    let acked_during: usize = rebuilds.iter().map(during).sum();
    assert!(
        acked_during >= MIN_ACKS_DURING_REBUILDS,
        "[{backend}] the workload hardly moved while rebuilds ran: {acked_during} commands \
         acknowledged"
    );
}

// ---------------------------------------------------------------------------------------------
// The rebuilds.

/// A rebuild that finished: its listing entry then, and when it was asked for and seen done.
struct Rebuilt {
    round: usize,
    name: String,
    entry: Value,
    started: Instant,
    finished: Instant,
}

/// The projections' listing; it must answer.
async fn list_projections(app: &TestApp, admin: Auth<'_>) -> Vec<Value> {
    let listed = app
        .call(Method::GET, "/v1/ops/projections", admin, None)
        .await;
    assert_eq!(listed.status, StatusCode::OK, "listing: {}", listed.body);
    listed
        .body
        .as_array()
        .unwrap_or_else(|| panic!("the listing is a list: {}", listed.body))
        .clone()
}

/// Rebuilds every listed projection, one after another, each once its predecessor has finished;
/// then again, round after round, until [`REBUILD_PHASE`] has passed.
async fn rebuild_every_projection(shared: &Shared, admin: Auth<'_>) -> Vec<Rebuilt> {
    let app = &shared.app;
    let phase = Instant::now();
    let mut done = Vec::new();
    let mut round = 0;
    loop {
        round += 1;
        let names: Vec<String> = list_projections(app, admin)
            .await
            .iter()
            .map(|p| {
                p["name"]
                    .as_str()
                    .unwrap_or_else(|| panic!("a projection has a name: {p}"))
                    .to_owned()
            })
            .collect();
        assert!(!names.is_empty(), "projections are listed");
        for name in names {
            if round > 1 && phase.elapsed() >= REBUILD_PHASE {
                return done;
            }
            let started = Instant::now();
            let path = format!("/v1/ops/projections/{name}/rebuild");
            let reply = app.call(Method::POST, &path, admin, None).await;
            // Every listed projection can be rebuilt.
            assert_eq!(
                reply.status,
                StatusCode::ACCEPTED,
                "rebuild {name}: {}",
                reply.body
            );
            // Done once the listing shows the rebuild in another state than `rebuilding`.
            let deadline = started + REBUILD_LIMIT;
            let entry = loop {
                let entry = list_projections(app, admin)
                    .await
                    .into_iter()
                    .find(|p| p["name"] == name.as_str());
                let state = entry.as_ref().map(|e| e["rebuild"]["state"].clone());
                if let (Some(entry), Some(Value::String(state))) = (entry, state) {
                    if state != "rebuilding" {
                        break entry;
                    }
                }
                assert!(
                    Instant::now() < deadline,
                    "the rebuild of {name} did not finish within {REBUILD_LIMIT:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            done.push(Rebuilt {
                round,
                name,
                entry,
                started,
                finished: Instant::now(),
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The workload.

/// One user's lane: requests one after another until told to stop.
async fn workload(shared: Arc<Shared>, user: usize) {
    let mut n = 0;
    while !shared.stop_workload.load(Ordering::SeqCst) {
        n += 1;
        if let Err(why) = one_request(&shared, user, n).await {
            shared.wrong(Kind::Workload, &format!("workload ({})", USERS[user]), why);
        }
    }
}

/// Request `n` of `user`: created; then by `n % 8` confirmed and consumed (0–2), only
/// confirmed (3–4), rejected (5) or left pending (6–7).
async fn one_request(shared: &Shared, user: usize, n: u64) -> Result<(), String> {
    let uid = USERS[user];
    let payload = transfer(uid, &format!("{n}.00"));
    let create = {
        let sent = Instant::now();
        let mut truth = shared.truth();
        truth.creates.push(Create {
            user,
            sent,
            id: None,
        });
        truth.creates.len() - 1
    };
    let created = shared
        .expect(
            Kind::Workload,
            Method::POST,
            "/v1/action-requests",
            shared.client(),
            Some(&create_body(uid, payload.clone())),
            StatusCode::CREATED,
        )
        .await?;
    let acked = Instant::now();
    let id = created["id"]
        .as_str()
        .ok_or_else(|| format!("a create answered without an id: {created}"))?
        .to_owned();
    {
        let mut truth = shared.truth();
        truth.creates[create].id = Some(id.clone());
        let index = truth.known.len();
        truth.by_id.insert(id.clone(), index);
        truth.known.push(Known {
            id: id.clone(),
            user,
            created: acked,
            decision: None,
            consume: None,
        });
        truth.acks.push(acked);
    }
    if created["status"] != "PENDING" {
        return Err(format!("created {id} as {}", created["status"]));
    }

    let (verb, status) = match n % 8 {
        0..=4 => ("confirm", Status::Confirmed),
        5 => ("reject", Status::Rejected),
        _ => return Ok(()),
    };
    // The phone signs what its inbox shows.
    let phone = &shared.phones[user];
    let inbox = shared
        .expect(
            Kind::Workload,
            Method::GET,
            &format!("/v1/devices/{}/inbox", phone.id),
            Auth::Bearer(&phone.token),
            None,
            StatusCode::OK,
        )
        .await?;
    let item = inbox
        .as_array()
        .and_then(|items| items.iter().find(|i| i["id"] == id.as_str()))
        .ok_or_else(|| format!("{uid}'s inbox lacks {id}, created and not decided: {inbox}"))?;
    let body = json!({"device_id": phone.id, "signature": phone.sign(item, verb)});
    {
        let sent = Instant::now();
        shared.truth().get_mut(&id).decision = Some((status, Command { sent, acked: None }));
    }
    let decided = shared
        .expect(
            Kind::Workload,
            Method::POST,
            &format!("/v1/action-requests/{id}/{verb}"),
            Auth::Bearer(&phone.token),
            Some(&body),
            StatusCode::OK,
        )
        .await?;
    let acked = Instant::now();
    {
        let mut truth = shared.truth();
        if let Some((_, command)) = &mut truth.get_mut(&id).decision {
            command.acked = Some(acked);
        }
        truth.acks.push(acked);
    }
    if decided["status"] != status.name() {
        return Err(format!("{verb} of {id} answered {decided}"));
    }
    if n % 8 > 2 {
        return Ok(());
    }

    // The bank reads the token and spends it.
    let polled = shared
        .expect(
            Kind::Workload,
            Method::GET,
            &format!("/v1/action-requests/{id}"),
            shared.client(),
            None,
            StatusCode::OK,
        )
        .await?;
    let token = match (&polled["status"], polled["token"].as_str()) {
        (status, Some(token)) if status == "CONFIRMED" => token.to_owned(),
        _ => return Err(format!("{id}, confirmed, polled as {polled}")),
    };
    let body = json!({"token": token, "action": ACTION, "payload": payload});
    {
        let sent = Instant::now();
        shared.truth().get_mut(&id).consume = Some(Command { sent, acked: None });
    }
    let consumed = shared
        .expect(
            Kind::Workload,
            Method::POST,
            "/v1/tokens/consume",
            shared.client(),
            Some(&body),
            StatusCode::OK,
        )
        .await?;
    let acked = Instant::now();
    {
        let mut truth = shared.truth();
        if let Some(command) = &mut truth.get_mut(&id).consume {
            command.acked = Some(acked);
        }
        truth.acks.push(acked);
    }
    if consumed["action_request_id"] != id.as_str() {
        return Err(format!("consume of {id}'s token answered {consumed}"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The pollers.

/// Polls the polling endpoint: one request at a time (the newest, or one at random), then, in
/// the last round, every other request (the two pollers share them).
async fn poll_statuses(shared: Arc<Shared>, newest: bool) {
    loop {
        let last = shared.last_round.load(Ordering::SeqCst);
        let ids: Vec<String> = {
            let truth = shared.truth();
            if last {
                let half = usize::from(newest);
                truth
                    .known
                    .iter()
                    .skip(half)
                    .step_by(2)
                    .map(|k| k.id.clone())
                    .collect()
            } else if truth.known.is_empty() {
                Vec::new()
            } else if newest {
                vec![truth.known[truth.known.len() - 1].id.clone()]
            } else {
                vec![truth.known[rand::random::<usize>() % truth.known.len()]
                    .id
                    .clone()]
            }
        };
        if ids.is_empty() && !last {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for id in ids {
            check_status(&shared, &id).await;
        }
        if last {
            return;
        }
    }
}

/// (a) `GET /v1/action-requests/{id}` of a request whose creation was acknowledged before.
async fn check_status(shared: &Shared, id: &str) {
    let what = format!("GET /v1/action-requests/{id}");
    let Some((body, sent, answered)) = shared
        .get_ok(
            Kind::Status,
            &what,
            &format!("/v1/action-requests/{id}"),
            shared.client(),
        )
        .await
    else {
        return;
    };
    let body = &body;
    if body["id"] != id {
        return shared.wrong(
            Kind::Status,
            &what,
            format!("another request's view: {body}"),
        );
    }
    let truth = shared.truth();
    let known = truth.get(id).expect("polled requests are known");
    if body["uid"] != USERS[known.user] {
        shared.wrong(
            Kind::Status,
            &what,
            format!("uid {} instead of {}", body["uid"], USERS[known.user]),
        );
    }
    if let Err(why) = known.judge(&body["status"], sent, answered) {
        return shared.wrong(
            Kind::Status,
            &what,
            format!(
                "{why} ({}); truth: {}",
                shared.read(sent, answered),
                known.describe(shared.started)
            ),
        );
    }
    if body["status"] == "CONFIRMED" && !body["token"].is_string() {
        shared.wrong(
            Kind::Status,
            &what,
            format!("CONFIRMED without a token: {body}"),
        );
    }
}

/// Reads `users`' inboxes (`Kind::Inbox`) or searches their requests (`Kind::Search`) in turn;
/// in the last round, each once more.
async fn poll_users(shared: Arc<Shared>, kind: Kind, users: Vec<usize>) {
    let mut turn = 0;
    loop {
        let last = shared.last_round.load(Ordering::SeqCst);
        let now = if last {
            users.clone()
        } else {
            vec![users[turn % users.len()]]
        };
        for user in now {
            match kind {
                Kind::Inbox => check_inbox(&shared, user).await,
                _ => check_search(&shared, user).await,
            }
        }
        if last {
            return;
        }
        turn += 1;
    }
}

/// (b) `GET /v1/devices/{device_id}/inbox` of `user`'s phone.
async fn check_inbox(shared: &Shared, user: usize) {
    let phone = &shared.phones[user];
    let path = format!("/v1/devices/{}/inbox", phone.id);
    let what = format!("GET {path} ({})", USERS[user]);
    let Some((body, sent, answered)) = shared
        .get_ok(Kind::Inbox, &what, &path, Auth::Bearer(&phone.token))
        .await
    else {
        return;
    };
    let Some(items) = body.as_array() else {
        return shared.wrong(Kind::Inbox, &what, format!("not a list: {}", body));
    };
    let mut listed = HashSet::new();
    for item in items {
        let Some(id) = item["id"].as_str() else {
            return shared.wrong(Kind::Inbox, &what, format!("an item without an id: {item}"));
        };
        if !item["binding"].is_string() || !item["nonce"].is_string() {
            shared.wrong(
                Kind::Inbox,
                &what,
                format!("an item without binding or nonce: {item}"),
            );
        }
        if !listed.insert(id) {
            shared.wrong(Kind::Inbox, &what, format!("lists {id} twice"));
        }
    }
    let truth = shared.truth();
    for known in truth.known.iter().filter(|k| k.user == user) {
        let shown = listed.contains(known.id.as_str());
        if !shown && known.must_be_in_inbox(sent, answered) {
            shared.wrong(
                Kind::Inbox,
                &what,
                format!(
                    "lacks a pending request ({}): {}",
                    shared.read(sent, answered),
                    known.describe(shared.started)
                ),
            );
        }
        if shown && known.must_not_be_in_inbox(sent) {
            shared.wrong(
                Kind::Inbox,
                &what,
                format!(
                    "lists a decided request ({}): {}",
                    shared.read(sent, answered),
                    known.describe(shared.started)
                ),
            );
        }
    }
    for why in truth.judge_strangers(user, listed.iter().copied(), answered) {
        shared.wrong(Kind::Inbox, &what, why);
    }
}

/// (c) `GET /v1/audit/action-requests?uid=…`, every page, as an auditor.
async fn check_search(shared: &Shared, user: usize) {
    let uid = USERS[user];
    let what = format!("GET /v1/audit/action-requests?uid={uid}");
    let sent = Instant::now();
    let mut hits: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 0.. {
        if page == 50 {
            return shared.wrong(Kind::Search, &what, "more than 50 pages");
        }
        let path = match &cursor {
            None => format!("/v1/audit/action-requests?uid={uid}&limit=1000"),
            Some(cursor) => {
                format!("/v1/audit/action-requests?uid={uid}&limit=1000&cursor={cursor}")
            }
        };
        let reply = match shared
            .fetch(Kind::Search, Method::GET, &path, shared.auditor(), None)
            .await
        {
            Ok(reply) if reply.status == StatusCode::OK => reply,
            Ok(reply) => {
                shared.checked(Kind::Search);
                return shared.wrong(
                    Kind::Search,
                    &what,
                    format!("{}: {}", reply.status, reply.body),
                );
            }
            Err(why) => {
                shared.checked(Kind::Search);
                return shared.wrong(Kind::Search, &what, why);
            }
        };
        let Some(found) = reply.body["action_requests"].as_array() else {
            shared.checked(Kind::Search);
            return shared.wrong(
                Kind::Search,
                &what,
                format!("no action_requests: {}", reply.body),
            );
        };
        hits.extend(found.iter().cloned());
        match &reply.body["next_cursor"] {
            Value::Null => break,
            Value::String(next) => cursor = Some(next.replace('+', "%2B")),
            other => {
                shared.checked(Kind::Search);
                return shared.wrong(Kind::Search, &what, format!("next_cursor {other}"));
            }
        }
    }
    let answered = Instant::now();
    shared.checked(Kind::Search);

    let mut by_id: HashMap<&str, &Value> = HashMap::new();
    for hit in &hits {
        let Some(id) = hit["id"].as_str() else {
            return shared.wrong(Kind::Search, &what, format!("a hit without an id: {hit}"));
        };
        if by_id.insert(id, hit).is_some() {
            shared.wrong(Kind::Search, &what, format!("finds {id} twice"));
        }
        if hit["uid"] != uid
            || hit["action"] != ACTION
            || hit["client_id"] != shared.app.client_id.to_string()
        {
            shared.wrong(
                Kind::Search,
                &what,
                format!("a hit that does not match: {hit}"),
            );
        }
    }
    let truth = shared.truth();
    for known in truth.known.iter().filter(|k| k.user == user) {
        match by_id.get(known.id.as_str()) {
            None if known.created < sent => {
                shared.wrong(
                    Kind::Search,
                    &what,
                    format!(
                        "does not find a request ({}): {}",
                        shared.read(sent, answered),
                        known.describe(shared.started)
                    ),
                );
            }
            None => {}
            Some(hit) => {
                if let Err(why) = known.judge(&hit["status"], sent, answered) {
                    shared.wrong(
                        Kind::Search,
                        &what,
                        format!(
                            "{why} ({}); hit {hit}; truth: {}",
                            shared.read(sent, answered),
                            known.describe(shared.started)
                        ),
                    );
                }
            }
        }
    }
    for why in truth.judge_strangers(user, by_id.keys().copied(), answered) {
        shared.wrong(Kind::Search, &what, why);
    }
}

/// Reads the client's daily statistics again and again; in the last round, once more.
async fn poll_stats(shared: Arc<Shared>) {
    loop {
        let last = shared.last_round.load(Ordering::SeqCst);
        check_stats(&shared).await;
        if last {
            return;
        }
    }
}

/// (d) `GET /v1/stats/daily`: the requests counted (all days summed: every request of this
/// client is the test's) lie between the creates acknowledged before the read was sent and the
/// creates sent before its answer came.
async fn check_stats(shared: &Shared) {
    let what = "GET /v1/stats/daily";
    let Some((body, sent, answered)) = shared
        .get_ok(Kind::Stats, what, "/v1/stats/daily", shared.client())
        .await
    else {
        return;
    };
    let Some(days) = body.as_array() else {
        return shared.wrong(Kind::Stats, what, format!("not a list: {}", body));
    };
    let mut counted = 0;
    for day in days {
        match (day["day"].as_str(), day["requests"].as_u64()) {
            (Some(_), Some(requests)) => counted += requests,
            _ => {
                return shared.wrong(
                    Kind::Stats,
                    what,
                    format!("a day without its requests: {day}"),
                )
            }
        }
    }
    let truth = shared.truth();
    let at_least = truth.known.iter().filter(|k| k.created < sent).count() as u64;
    let at_most = truth.creates.iter().filter(|c| c.sent <= answered).count() as u64;
    if !(at_least..=at_most).contains(&counted) {
        shared.wrong(
            Kind::Stats,
            what,
            format!(
                "{counted} requests counted, but {at_least} creates were acknowledged before \
                 the read and {at_most} sent before its answer ({}): {}",
                shared.read(sent, answered),
                body
            ),
        );
    }
}
