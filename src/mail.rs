//! Outgoing mail over SMTP (lettre), sent off the request path with retries.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{SmtpConfig, SmtpTls};

/// Attempts per message, with these pauses between them.
const BACKOFF: [Duration; 2] = [Duration::from_secs(2), Duration::from_secs(10)];

/// The configured mail sender.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// Build from `[smtp]` (no connection is made until the first message).
    pub fn new(cfg: &SmtpConfig) -> Result<Mailer, String> {
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
        })
    }

    /// Queue a plain-text message; delivery happens in the background, retried, and a failure
    /// is logged (without the message body, which may hold a token).
    pub fn send_later(self: &Arc<Self>, to: &str, subject: &str, body: String) {
        let to_box: Mailbox = match to.parse() {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "not sending mail to an unusable address");
                return;
            }
        };
        let message = Message::builder()
            .from(self.from.clone())
            .to(to_box)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body);
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "could not build a mail message");
                return;
            }
        };
        let mailer = Arc::clone(self);
        let subject = subject.to_string();
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
