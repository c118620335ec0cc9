//! The `countersign authenticator` subcommands: their arguments, and what they print.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Subcommand};
use countersign_domain::approval::Decision;
use serde_json::Value;
use uuid::Uuid;

use super::device_file::{refuse_existing, DeviceFile};
use super::{pick, Authenticator};
use crate::cli::phone::Bank;

/// `countersign authenticator …`: a push authenticator kept in a local file.
#[derive(Debug, Subcommand)]
pub enum AuthenticatorCommand {
    /// Makes a P-256 device key, enrols it as a push device for a user, and saves it to a file.
    Enrol(EnrolArgs),
    /// Lists the pending requests addressed to the device.
    Inbox(InboxArgs),
    /// Shows a pending request, signs its approval and sends it.
    Approve(DecideArgs),
    /// Shows a pending request, signs its rejection and sends it.
    Reject(DecideArgs),
}

/// `authenticator enrol`.
#[derive(Debug, Args)]
pub struct EnrolArgs {
    /// The server's base URL, such as `http://127.0.0.1:8080`.
    #[arg(long)]
    server: String,
    /// The relying party's client credential id.
    #[arg(long, env = "COUNTERSIGN_CLIENT_ID")]
    client_id: String,
    /// The client credential's secret.
    #[arg(long, env = "COUNTERSIGN_CLIENT_SECRET", hide_env_values = true)]
    client_secret: String,
    /// The user the device is enrolled for.
    #[arg(long)]
    uid: String,
    /// The device's name, shown in the user's device list.
    #[arg(long, default_value = "countersign authenticator")]
    name: String,
    /// Where the device key is saved (mode 0600).
    #[arg(long, default_value = "countersign-device.json")]
    file: PathBuf,
    /// Replaces an existing device file.
    #[arg(long)]
    force: bool,
}

/// `authenticator inbox`.
#[derive(Debug, Args)]
pub struct InboxArgs {
    /// The device file.
    #[arg(long, default_value = "countersign-device.json")]
    file: PathBuf,
    /// While the inbox is empty, waits up to this many seconds for a request to arrive.
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    wait: u64,
    /// Prints the server's JSON as it is.
    #[arg(long)]
    json: bool,
}

/// `authenticator approve` and `authenticator reject`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("request").required(true).args(["id", "first"])))]
pub struct DecideArgs {
    /// The action request's id.
    id: Option<Uuid>,
    /// Decides on the oldest pending request instead.
    #[arg(long)]
    first: bool,
    /// The device file.
    #[arg(long, default_value = "countersign-device.json")]
    file: PathBuf,
}

/// An inbox item for a terminal: its id, action and expiry, then its display fields.
pub fn describe(item: &Value) -> String {
    let text = |v: &Value| plain(v.as_str().map_or_else(|| v.to_string(), str::to_owned));
    let mut out = format!(
        "{}  {}  expires {}",
        text(&item["id"]),
        text(&item["action"]),
        text(&item["expires_at"])
    );
    if let Some(display) = item["display"].as_object() {
        let width = display
            .keys()
            .map(|k| plain(k.clone()).chars().count())
            .max();
        for (key, value) in display {
            let key = plain(key.clone());
            out.push_str(&format!(
                "\n    {key:<w$}  {}",
                text(value),
                w = width.unwrap_or(0)
            ));
        }
    }
    out
}

/// `text` with control characters escaped, so what is shown is exactly what is signed for.
fn plain(text: String) -> String {
    if !text.chars().any(char::is_control) {
        return text;
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Runs an `authenticator` subcommand.
pub async fn run(command: AuthenticatorCommand) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let (args, decision) = match command {
        AuthenticatorCommand::Enrol(args) => {
            if !args.force {
                refuse_existing(&args.file)?;
            }
            let bank = Bank::new(
                http.clone(),
                &args.server,
                &args.client_id,
                &args.client_secret,
            );
            let (authenticator, _) =
                Authenticator::enrol(&bank, http, &args.server, &args.uid, &args.name).await?;
            authenticator.file().save(&args.file, args.force)?;
            println!("{}", authenticator.device_id());
            eprintln!(
                "enrolled a push device for {}; its key is in {}",
                args.uid,
                args.file.display()
            );
            return Ok(());
        }
        AuthenticatorCommand::Inbox(args) => {
            let authenticator = Authenticator::open(&DeviceFile::load(&args.file)?, http)?;
            let inbox = authenticator.inbox(Duration::from_secs(args.wait)).await?;
            if args.json {
                println!("{}", inbox.body);
            } else {
                let items = inbox.body.as_array().map(Vec::as_slice).unwrap_or_default();
                if items.is_empty() {
                    println!("no pending requests");
                }
                for item in items {
                    println!("{}", describe(item));
                }
            }
            return Ok(());
        }
        AuthenticatorCommand::Approve(args) => (args, Decision::Confirm),
        AuthenticatorCommand::Reject(args) => (args, Decision::Reject),
    };
    let authenticator = Authenticator::open(&DeviceFile::load(&args.file)?, http)?;
    let inbox = authenticator.inbox(Duration::ZERO).await?;
    let item = pick(&inbox.body, args.id)?;
    let verb = match decision {
        Decision::Confirm => "approving",
        Decision::Reject => "rejecting",
    };
    println!("{verb} {}", describe(&item));
    let answer = authenticator.decide(&item, decision).await?;
    println!(
        "status: {}",
        plain(answer.body["status"].as_str().unwrap_or("?").to_owned())
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_description_shows_every_display_field_with_control_characters_escaped() {
        let shown = json!({
            "id": Uuid::nil(), "action": "bank:transfers:create",
            "display": {"Amount": "234.00 EUR", "Payee": "ACME\u{1b}[2K GmbH"},
            "expires_at": "2030-01-01T00:00:00.000Z",
        });
        let text = describe(&shown);
        assert!(text.contains("bank:transfers:create"), "{text}");
        assert!(text.contains("    Amount  234.00 EUR"), "{text}");
        assert!(text.contains("    Payee   ACME\\u{1b}[2K GmbH"), "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
    }

    #[test]
    fn approve_needs_an_id_or_first_but_not_both() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(subcommand)]
            command: AuthenticatorCommand,
        }
        let id = Uuid::now_v7().to_string();
        assert!(Cli::try_parse_from(["cs", "approve", &id]).is_ok());
        assert!(Cli::try_parse_from(["cs", "approve", "--first"]).is_ok());
        assert!(Cli::try_parse_from(["cs", "approve"]).is_err());
        assert!(Cli::try_parse_from(["cs", "reject", &id, "--first"]).is_err());
        assert!(Cli::try_parse_from(["cs", "reject", "not-an-id"]).is_err());
    }
}
