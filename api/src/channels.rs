//! Delivery channels, configured in `countersign.toml`: where push notifications and one-time
//! codes go. A `webhook` channel POSTs signed JSON to a gateway (push, SMS, voice); an `smtp`
//! channel sends email.
//!
//! ```toml
//! [channels.push]                 # push gateway: one message per device addressed
//! type = "webhook"
//! url = "https://push-gateway.bank.example/notify"
//! secret = "a long random string"   # signs Countersign-Signature, like callbacks
//!
//! [channels.sms]                  # also [channels.voice]
//! type = "webhook"
//! url = "https://sms-gateway.bank.example/send"
//! secret = "another long random string"
//!
//! [channels.email]
//! type = "smtp"
//! host = "smtp.bank.example"
//! port = 587
//! tls = "starttls"                # "none", "starttls" or "tls"
//! username = "countersign"        # optional, with password
//! password = "…"
//! from = "Bank <no-reply@bank.example>"
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use chrono::Utc;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::Deserialize;

use crate::delivery::{signature, SIGNATURE_HEADER};

/// Every configured channel, by name (`push`, `sms`, `voice`, `email`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelsConfig {
    /// The channels.
    #[serde(default)]
    pub channels: BTreeMap<String, Channel>,
}

/// One channel.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Channel {
    /// POSTs the message as JSON, signed with `secret`.
    Webhook {
        /// The gateway's URL.
        url: String,
        /// The HMAC key of `Countersign-Signature`.
        secret: String,
    },
    /// Sends email.
    Smtp {
        /// The SMTP server.
        host: String,
        /// Its port.
        #[serde(default = "default_smtp_port")]
        port: u16,
        /// `none`, `starttls` or `tls`.
        #[serde(default)]
        tls: SmtpTls,
        /// Login name, if the server wants one.
        username: Option<String>,
        /// Password, with `username`.
        password: Option<String>,
        /// The sender, `Name <address>`.
        from: String,
    },
}

fn default_smtp_port() -> u16 {
    587
}

/// How an SMTP connection is protected.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text (a local relay only).
    None,
    /// Upgrade with STARTTLS (required).
    #[default]
    Starttls,
    /// TLS from the first byte.
    Tls,
}

/// Why the configuration is not usable.
#[derive(Debug, thiserror::Error)]
#[error("configuration {path}: {reason}")]
pub struct ConfigError {
    path: String,
    reason: String,
}

impl ChannelsConfig {
    /// Reads `path`; a missing file is no channels unless `required`.
    pub fn load(path: &Path, required: bool) -> Result<Self, ConfigError> {
        let error = |reason: String| ConfigError {
            path: path.display().to_string(),
            reason,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(Self::default())
            }
            Err(e) => return Err(error(e.to_string())),
        };
        let config: Self = toml::from_str(&text).map_err(|e| error(e.to_string()))?;
        for (name, channel) in &config.channels {
            config_check(name, channel).map_err(error)?;
        }
        Ok(config)
    }

    /// The channel named `name`.
    pub fn get(&self, name: &str) -> Option<&Channel> {
        self.channels.get(name)
    }
}

fn config_check(name: &str, channel: &Channel) -> Result<(), String> {
    if !["push", "sms", "voice", "email"].contains(&name) {
        return Err(format!(
            "unknown channel {name:?} (push, sms, voice, email)"
        ));
    }
    match channel {
        Channel::Webhook { url, secret } => {
            let parsed = reqwest::Url::parse(url).map_err(|e| format!("{name}.url: {e}"))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(format!("{name}.url: must be http or https"));
            }
            if secret.len() < 16 {
                return Err(format!("{name}.secret: must be at least 16 characters"));
            }
        }
        Channel::Smtp { from, .. } => {
            from.parse::<Mailbox>()
                .map_err(|e| format!("{name}.from: {e}"))?;
            if name != "email" {
                return Err(format!("{name}: only the email channel can be smtp"));
            }
        }
    }
    Ok(())
}

/// An email to send through an `smtp` channel.
pub struct Email<'a> {
    /// The recipient's address.
    pub to: &'a str,
    /// The subject line.
    pub subject: &'a str,
    /// The plain-text body.
    pub body: String,
}

impl Channel {
    /// POSTs `body` to a webhook channel; the answer's status on success.
    pub async fn post(
        &self,
        http: &reqwest::Client,
        body: &str,
    ) -> Result<u16, (Option<u16>, String)> {
        let Channel::Webhook { url, secret } = self else {
            return Err((None, "this channel is not a webhook".into()));
        };
        let sent = http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(
                SIGNATURE_HEADER,
                signature(secret.as_bytes(), Utc::now(), body),
            )
            .body(body.to_owned())
            .send()
            .await;
        match sent {
            Ok(answer) if answer.status().is_success() => Ok(answer.status().as_u16()),
            Ok(answer) => Err((
                Some(answer.status().as_u16()),
                format!("the gateway answered {}", answer.status()),
            )),
            Err(e) => Err((None, format!("the gateway could not be reached: {e}"))),
        }
    }

    /// Sends an email through an `smtp` channel.
    pub async fn mail(&self, email: Email<'_>) -> Result<u16, (Option<u16>, String)> {
        let Channel::Smtp {
            host,
            port,
            tls,
            username,
            password,
            from,
        } = self
        else {
            return Err((None, "this channel is not smtp".into()));
        };
        let fail = |e: String| (None, e);
        let to: Mailbox = email
            .to
            .parse()
            .map_err(|e| fail(format!("bad recipient address: {e}")))?;
        let from: Mailbox = from.parse().map_err(|e| fail(format!("bad sender: {e}")))?;
        let message = lettre::Message::builder()
            .from(from)
            .to(to)
            .subject(email.subject)
            .body(email.body)
            .map_err(|e| fail(e.to_string()))?;
        let builder = match tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                .map_err(|e| fail(e.to_string()))?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                .map_err(|e| fail(e.to_string()))?,
        };
        let mut builder = builder.port(*port);
        if let (Some(user), Some(pass)) = (username, password) {
            builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        match builder.build().send(message).await {
            Ok(answer) => Ok(u16::from(answer.code())),
            Err(e) => Err((None, format!("the mail server refused or failed: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<ChannelsConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("countersign.toml");
        std::fs::write(&path, text).unwrap();
        ChannelsConfig::load(&path, true)
    }

    #[test]
    fn webhook_and_smtp_channels_are_read() {
        let config = load(
            r#"
            [channels.sms]
            type = "webhook"
            url = "http://127.0.0.1:9/sms"
            secret = "0123456789abcdef"
            [channels.email]
            type = "smtp"
            host = "127.0.0.1"
            port = 2525
            tls = "none"
            from = "Bank <no-reply@bank.example>"
            "#,
        )
        .unwrap();
        assert!(matches!(config.get("sms"), Some(Channel::Webhook { .. })));
        assert!(matches!(
            config.get("email"),
            Some(Channel::Smtp {
                port: 2525,
                tls: SmtpTls::None,
                ..
            })
        ));
        assert!(config.get("voice").is_none());
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            ("[channels.fax]\ntype = \"webhook\"\nurl = \"http://x\"\nsecret = \"0123456789abcdef\"", "unknown channel"),
            ("[channels.sms]\ntype = \"webhook\"\nurl = \"ftp://x\"\nsecret = \"0123456789abcdef\"", "http or https"),
            ("[channels.sms]\ntype = \"webhook\"\nurl = \"http://x\"\nsecret = \"short\"", "16 characters"),
            ("[channels.sms]\ntype = \"carrier-pigeon\"", "unknown variant"),
            ("[channels.email]\ntype = \"smtp\"\nhost = \"h\"\nfrom = \"not an address\"", "email.from"),
        ];
        for (text, expected) in cases {
            let error = load(text).unwrap_err().to_string();
            assert!(
                error.contains(expected),
                "{error} should mention {expected}"
            );
        }
    }

    #[test]
    fn a_missing_file_means_no_channels_unless_it_was_asked_for() {
        let path = Path::new("/nonexistent/countersign.toml");
        assert!(ChannelsConfig::load(path, false)
            .unwrap()
            .channels
            .is_empty());
        assert!(ChannelsConfig::load(path, true).is_err());
    }
}
