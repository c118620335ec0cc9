//! `countersign audit …`: what an auditor runs beside the database, and the offline check of
//! evidence bundles that needs neither.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use countersign_audit::evidence::verify_evidence;
use countersign_audit::head::{parse_public_key, public_key_text, SignedTreeHead};
use countersign_store::audit::{verify_log, VerifyReport};
use ed25519_dalek::VerifyingKey;
use uuid::Uuid;

use crate::audit;
use crate::keys::ServerKeys;
use crate::open_database;

/// Events per page of an export.
const EXPORT_PAGE: usize = 1_000;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recomputes the hash chain and the Merkle tree over the whole log; exits 1 and names the
    /// first bad position when they do not hold.
    Verify {
        /// A signed tree head kept outside the database (from `audit tree-head`): also proves
        /// that the log is an append-only extension of it.
        #[arg(long, value_name = "HEAD_FILE")]
        against: Option<PathBuf>,
        /// The audit public key that signed the head (base64url, or a file holding it);
        /// defaults to the key file's.
        #[arg(long, value_name = "KEY", allow_hyphen_values = true)]
        public_key: Option<String>,
        /// Prints the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Prints the current tree head, signed with the audit key, for safekeeping.
    TreeHead,
    /// Prints an action request's events and its state (at `--at`, an RFC 3339 time).
    History {
        /// The action request's id.
        id: Uuid,
        /// The instant whose state to show.
        #[arg(long)]
        at: Option<String>,
    },
    /// Writes the log as JSON Lines on stdout, one event per line, with its links.
    Export {
        /// Starts after this position.
        #[arg(long, default_value_t = 0)]
        after: u64,
    },
    /// Writes an action request's evidence bundle on stdout.
    Evidence {
        /// The action request's id.
        id: Uuid,
    },
    /// Prints the audit public key (base64url of its 32 raw bytes).
    PublicKey,
    /// Checks an evidence bundle offline, with no server and no database; exits 1 when any
    /// byte of it was altered.
    VerifyEvidence {
        /// The bundle.
        file: PathBuf,
        /// The server's audit public key (base64url, or a file holding it).
        #[arg(long, value_name = "KEY", allow_hyphen_values = true)]
        public_key: String,
    },
}

/// Runs an audit command.
pub async fn run(
    command: AuditCommand,
    database_url: &str,
    key_file: &Path,
) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify {
            against,
            public_key,
            json,
        } => verify(database_url, key_file, against, public_key, json).await,
        AuditCommand::TreeHead => {
            let keys = load_keys(key_file)?;
            let db = open_database(database_url, true).await?;
            let head = audit::signed_head(&db, &keys, chrono::Utc::now()).await?;
            println!("{}", serde_json::to_string_pretty(&head)?);
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::History { id, at } => {
            let at = at
                .map(|t| {
                    crate::time::parse(&t)
                        .with_context(|| format!("--at {t:?} is not an RFC 3339 time"))
                })
                .transpose()?;
            let db = open_database(database_url, true).await?;
            let history = audit::history(db.events().as_ref(), id, at, chrono::Utc::now())
                .await?
                .with_context(|| format!("no action request {id}"))?;
            println!("{}", serde_json::to_string_pretty(&history)?);
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Export { after } => {
            let db = open_database(database_url, true).await?;
            let store = db.events();
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let mut after = after;
            loop {
                let page = audit::events_page(store.as_ref(), after, EXPORT_PAGE).await?;
                let Some(last) = page.last() else { break };
                after = last.position;
                for event in &page {
                    serde_json::to_writer(&mut out, event)?;
                    out.write_all(b"\n")?;
                }
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Evidence { id } => {
            let keys = load_keys(key_file)?;
            let db = open_database(database_url, true).await?;
            let bundle = audit::evidence_bundle(&db, &keys, id, chrono::Utc::now())
                .await?
                .with_context(|| format!("no action request {id}"))?;
            let mut out = std::io::stdout().lock();
            out.write_all(&bundle)?;
            out.write_all(b"\n")?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::PublicKey => {
            let keys = load_keys(key_file)?;
            println!("{}", public_key_text(&keys.audit_key().verifying_key()));
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::VerifyEvidence { file, public_key } => {
            let key = read_public_key(&public_key)?;
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let bytes = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
            match verify_evidence(bytes, &key) {
                Ok(verified) => {
                    println!(
                        "evidence holds: {} events of action request {}, included in the signed \
                         tree of {} events (root {}, signed at {})",
                        verified.events,
                        verified.action_request_id,
                        verified.tree_size,
                        verified.root_hash,
                        verified.timestamp
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(error) => {
                    eprintln!("evidence does not hold: {error}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

fn load_keys(key_file: &Path) -> anyhow::Result<ServerKeys> {
    Ok(ServerKeys::load(key_file)?)
}

/// A public key given as base64url text, or the path of a file holding it.
fn read_public_key(given: &str) -> anyhow::Result<VerifyingKey> {
    if let Ok(key) = parse_public_key(given) {
        return Ok(key);
    }
    let text = std::fs::read_to_string(given).with_context(|| {
        format!("{given:?} is neither an Ed25519 public key nor a readable file")
    })?;
    parse_public_key(&text).with_context(|| format!("{given} does not hold an Ed25519 public key"))
}

async fn verify(
    database_url: &str,
    key_file: &Path,
    against: Option<PathBuf>,
    public_key: Option<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let trusted = match &against {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let head: SignedTreeHead = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a signed tree head", path.display()))?;
            let key = match &public_key {
                Some(given) => read_public_key(given)?,
                None => load_keys(key_file)?.audit_key().verifying_key(),
            };
            head.verify(&key).with_context(|| {
                format!("the tree head in {} is not validly signed", path.display())
            })?;
            Some(head.head())
        }
    };
    let log = countersign_projections::database::Database::open_audit(database_url).await?;
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template(
            "verifying [{bar:40}] {pos}/{len} events ({per_sec}, eta {eta})",
        )
        .expect("the template is valid")
        .progress_chars("=> "),
    );
    let started = std::time::Instant::now();
    let report = verify_log(log.as_ref(), trusted.as_ref(), |done, head| {
        bar.set_length(head);
        bar.set_position(done);
    })
    .await?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report, seconds, trusted.is_some());
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_report(report: &VerifyReport, seconds: f64, against: bool) {
    let rate = report.verified_events as f64 / seconds.max(1e-9);
    if report.ok {
        println!(
            "the log holds: {} events verified in {seconds:.2} s ({rate:.0} events/s)",
            report.verified_events
        );
        println!("head hash: {}", report.head_hash);
        println!(
            "tree size: {}  root: {}",
            report.tree_size, report.root_hash
        );
        if against {
            println!("it extends the trusted tree head");
        }
    } else {
        let position = report
            .first_bad_position
            .map_or_else(|| "?".to_owned(), |p| p.to_string());
        println!(
            "the log does not hold: first bad position {position}: {}",
            report.reason.as_deref().unwrap_or("unknown")
        );
        println!(
            "{} events verified before it (head position {})",
            report.verified_events, report.head_position
        );
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::Cli;

    #[test]
    fn a_public_key_may_start_with_a_hyphen() {
        // About one base64url key in 64 starts with `-`.
        let key = "-b2VZ4xWqv1Gm0eN8tUqJb2VZ4xWqv1Gm0eN8tUqJbE";
        for args in [
            vec!["verify-evidence", "bundle.json", "--public-key", key],
            vec!["verify", "--against", "head.json", "--public-key", key],
        ] {
            let parsed = Cli::try_parse_from(["countersign", "audit"].into_iter().chain(args));
            assert!(parsed.is_ok(), "{parsed:?}");
        }
    }
}
