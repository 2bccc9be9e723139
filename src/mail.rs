//! Outgoing mail over SMTP (lettre), sent off the request path with retries. Every message is
//! `multipart/alternative` (plain text and HTML) with a `Message-ID` on the public host, as
//! mail clients and spam filters expect.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{SmtpConfig, SmtpTls};

/// Attempts per message, with these pauses between them.
const BACKOFF: [Duration; 2] = [Duration::from_secs(2), Duration::from_secs(10)];

/// A message to send: its subject and the same words as plain text and as HTML.
#[derive(Clone, PartialEq, Eq)]
pub struct Mail {
    /// The subject line (plain text; encoded for the header as needed).
    pub subject: String,
    /// The `text/plain` part.
    pub text: String,
    /// A whole HTML document whose every interpolated value is escaped.
    pub html: String,
}

// The bodies may hold a token: only the subject is ever shown.
impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// The configured mail sender.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The domain part of every `Message-ID`: the public URL's host, not the machine's name.
    message_id_host: String,
}

/// A fresh `Message-ID`: `<128 random bits in hex@host>`.
fn message_id(host: &str) -> Result<String, String> {
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw).map_err(|e| format!("no randomness: {e}"))?;
    let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("<{id}@{host}>"))
}

impl Mailer {
    /// Build from `[smtp]` and the public URL's host (no connection is made until the first
    /// message).
    pub fn new(cfg: &SmtpConfig, public_host: &str) -> Result<Mailer, String> {
        let from: Mailbox = cfg.from.parse().map_err(|e| format!("smtp.from: {e}"))?;
        let builder = match cfg.tls {
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&cfg.host)
                .map_err(|e| format!("smtp: {e}"))?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&cfg.host)
                .map_err(|e| format!("smtp: {e}"))?,
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host),
        };
        let mut builder = builder.port(cfg.port).timeout(Some(cfg.timeout));
        if let Some(password) = &cfg.password {
            builder =
                builder.credentials(Credentials::new(cfg.username.clone(), password.0.clone()));
        }
        Ok(Mailer {
            transport: builder.build(),
            from,
            message_id_host: public_host.to_string(),
        })
    }

    /// Queue a message; delivery happens in the background, retried, and a failure is logged
    /// (with the subject, never the body, which may hold a token).
    pub fn send_later(self: &Arc<Self>, to: &str, mail: Mail) {
        let to_box: Mailbox = match to.parse() {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "not sending mail to an unusable address");
                return;
            }
        };
        let Mail {
            subject,
            text,
            html,
        } = mail;
        let message = message_id(&self.message_id_host).and_then(|id| {
            // `multipart` also sets `MIME-Version: 1.0`.
            Message::builder()
                .from(self.from.clone())
                .to(to_box)
                .subject(subject.as_str())
                .message_id(Some(id))
                .multipart(MultiPart::alternative_plain_html(text, html))
                .map_err(|e| e.to_string())
        });
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, %subject, "could not build a mail message");
                return;
            }
        };
        let mailer = Arc::clone(self);
        tokio::spawn(async move {
            for attempt in 0..=BACKOFF.len() {
                match mailer.transport.send(message.clone()).await {
                    Ok(_) => {
                        tracing::info!(%subject, "mail sent");
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, attempt = attempt + 1, %subject, "mail delivery failed");
                        if let Some(pause) = BACKOFF.get(attempt) {
                            tokio::time::sleep(*pause).await;
                        }
                    }
                }
            }
            tracing::error!(%subject, "mail not delivered after retries");
        });
    }
}
