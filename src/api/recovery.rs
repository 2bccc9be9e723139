//! Mail-based recovery: forgot/reset password, email verification. Tokens are single-use,
//! stored only as their SHA-256, and mailed as links built from `public_url`, in a mail with a
//! plain-text and an HTML part saying the same. Every mail goes through the mail throttle (per
//! account and per client).

use std::net::IpAddr;
use std::sync::Arc;

use http::StatusCode;
use serde_json::Value;

use super::body::form_or_json_body;
use super::common::{find_account, refused};
use super::response::ApiResponse;
use super::{validate, ApiRequest};
use crate::app::{now_secs, App};
use crate::auth::limits::{admit_mail_client, admit_mail_recipient, AccountKey};
use crate::auth::session;
use crate::error::ApiError;
use crate::mail::Mail;
use crate::pages::esc;
use crate::store::{Admission, Role, TokenKind, TokenRecord, UserRecord, UserStatus};

/// A password-reset link is valid this long.
const RESET_VALID_SECS: i64 = 30 * 60;
/// An email-verification link is valid this long.
const VERIFY_VALID_SECS: i64 = 48 * 3600;

/// The same answer whether or not the account exists.
const FORGOT_MESSAGE: &str = "if an account exists for this address, a reset link has been sent";
const RESEND_MESSAGE: &str = "if this address needs verification, a new link has been sent";

/// What a mail is for, as metrics and the audit log name it.
fn kind_label(kind: TokenKind) -> &'static str {
    match kind {
        TokenKind::PasswordReset => "reset",
        TokenKind::EmailVerification => "verification",
    }
}

/// Which mail limit refused.
#[derive(Debug, Clone, Copy)]
enum Limit {
    /// The recipient account was mailed too recently or too often.
    Address,
    /// The client asked for too many mails.
    Ip,
}

/// Count a mail not sent because of `limit`; audit it when it is the first refusal since the
/// key was last allowed (`first`), so a flood costs one audit entry, not one per request.
fn note_throttled(
    app: &App,
    kind: TokenKind,
    limit: Limit,
    ip: IpAddr,
    user_id: Option<&str>,
    first: bool,
) {
    let (reason, outcome) = match limit {
        Limit::Address => ("address", "throttled_address"),
        Limit::Ip => ("ip", "throttled_ip"),
    };
    app.metrics.mail(kind_label(kind), outcome);
    if first {
        app.audit(
            "mail_throttled",
            Some(ip),
            None,
            user_id,
            Some(format!("reason={reason} kind={}", kind_label(kind))),
        );
    }
}

/// Whether a request from `ip` that would mail a `kind` link (if its address had an account)
/// is within the per-client limit. Counted before the account is looked up, so the limit
/// reveals nothing about which addresses exist.
async fn client_may_ask(app: &App, ip: IpAddr, kind: TokenKind) -> Result<bool, ApiError> {
    Ok(
        match admit_mail_client(app.store.counters(), ip, now_secs()).await? {
            Admission::Allowed => true,
            Admission::Refused { first } => {
                note_throttled(app, kind, Limit::Ip, ip, None, first);
                false
            }
        },
    )
}

/// Mint a token for `user`, store its hash, and mail the link, unless the account was mailed
/// too recently or too often. Returns whether a mail is on its way. The work runs in the
/// background so that the answer does not reveal (by time) whether the account exists.
async fn mail_token(
    app: &Arc<App>,
    user: UserRecord,
    kind: TokenKind,
    ip: IpAddr,
) -> Result<bool, ApiError> {
    let Ok(mailer) = app.mailer().cloned() else {
        return Ok(false);
    };
    let admitted = admit_mail_recipient(app.store.counters(), &user.id, now_secs()).await?;
    if let Admission::Refused { first } = admitted {
        note_throttled(app, kind, Limit::Address, ip, Some(&user.id), first);
        return Ok(false);
    }
    let app = Arc::clone(app);
    tokio::spawn(async move {
        let Ok(token) = session::new_token() else {
            tracing::error!("no randomness for a mailed token");
            return;
        };
        let (valid, page) = match kind {
            TokenKind::PasswordReset => (RESET_VALID_SECS, "/reset-password"),
            TokenKind::EmailVerification => (VERIFY_VALID_SECS, "/verify-email"),
        };
        let record = TokenRecord {
            kind,
            user_id: user.id.clone(),
            expires_at: now_secs() + valid,
        };
        let key = token.key;
        if let Err(e) = app.store.put_token(key, record).await {
            tracing::error!(error = %e, "could not store a mailed token; no mail sent");
            return;
        }
        let link = app.link(page, &token.token);
        let mail = link_mail(kind, &app.config.ui.title, &user.email, &link, valid);
        app.metrics.mail(kind_label(kind), "sent");
        mailer.send_later(&user.email, mail);
    });
    Ok(true)
}

/// A validity in words: "30 minutes", "48 hours".
fn validity(secs: i64) -> String {
    if secs % 3600 == 0 {
        format!("{} hours", secs / 3600)
    } else {
        format!("{} minutes", secs / 60)
    }
}

/// The mail that carries a `kind` link for the account `email` of the site `title`, the link
/// valid for `valid_secs`.
fn link_mail(kind: TokenKind, title: &str, email: &str, link: &str, valid_secs: i64) -> Mail {
    let within = validity(valid_secs);
    let (heading, intro, action, button, outro) = match kind {
        TokenKind::PasswordReset => (
            "Reset your password",
            format!("Someone asked to reset the password of your account ({email}) at {title}."),
            format!("To choose a new password, open this link within {within}:"),
            "Choose a new password",
            "If this was not you, ignore this message: your password stays as it is.",
        ),
        TokenKind::EmailVerification => (
            "Confirm your email address",
            format!("Please confirm that {email} is your email address at {title}."),
            format!("To confirm it, open this link within {within}:"),
            "Confirm my email address",
            "If this was not you, ignore this message: the address stays unconfirmed.",
        ),
    };
    let subject = format!("{heading} · {title}");
    let text = format!("Hello,\n\n{intro}\n\n{action}\n\n{link}\n\n{outro}\n");
    // The same sentences, each escaped whole (so the address and the title are too).
    let html = format!(
        "<!DOCTYPE html>\n\
         <html lang=\"en\">\n\
         <head>\n\
         <meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"color-scheme\" content=\"light dark\">\n\
         <title>{subject}</title>\n\
         </head>\n\
         <body style=\"margin:0;padding:24px 16px;font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;font-size:16px;line-height:1.5\">\n\
         <div style=\"max-width:560px;margin:0 auto\">\n\
         <h1 style=\"font-size:22px;margin:0 0 16px\">{heading}</h1>\n\
         <p>Hello,</p>\n\
         <p>{intro}</p>\n\
         <p>{action}</p>\n\
         <p style=\"margin:24px 0\"><a href=\"{link}\" style=\"display:inline-block;padding:12px 20px;border-radius:6px;background:#0b57d0;color:#ffffff;font-weight:600;text-decoration:none\">{button}</a></p>\n\
         <p style=\"word-break:break-all\">{link}</p>\n\
         <p>{outro}</p>\n\
         </div>\n\
         </body>\n\
         </html>\n",
        subject = esc(&subject),
        heading = esc(heading),
        intro = esc(&intro),
        action = esc(&action),
        link = esc(link),
        button = esc(button),
        outro = esc(outro),
    );
    Mail {
        subject,
        text,
        html,
    }
}

/// Send the verification mail to a newly registered user (when verification is required). It
/// counts towards the account's mail limit like any other.
pub async fn send_verification(app: &Arc<App>, user: &UserRecord, ip: IpAddr) {
    if let Err(e) = mail_token(app, user.clone(), TokenKind::EmailVerification, ip).await {
        tracing::error!(error = %e, "no verification mail for a new account");
    }
}

fn token_key(raw: Option<String>) -> Result<crate::store::SessionKey, ApiError> {
    raw.as_deref()
        .and_then(session::key_for)
        .ok_or(ApiError::InvalidToken)
}

/// `POST /forgot-password`: always the same answer; mails a link if the account exists and
/// neither the client nor the account is over its mail limit.
pub async fn forgot_password(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    app.mailer()?;
    let mut body = form_or_json_body(&req)?;
    let identifier = body.required_text(&["email", "identifier"]);
    body.finish()?;
    let kind = TokenKind::PasswordReset;
    if client_may_ask(&app, req.client_ip, kind).await? {
        if let Some(user) = find_account(&app.store, &identifier.unwrap_or_default()).await? {
            // (A service account has no password to reset and no mailbox.)
            if user.status == UserStatus::Active && user.role != Role::Service {
                let id = user.id.clone();
                if mail_token(&app, user, kind, req.client_ip).await? {
                    app.audit(
                        "password_reset_requested",
                        Some(req.client_ip),
                        None,
                        Some(&id),
                        None,
                    );
                }
            }
        }
    }
    Ok(ApiResponse::ok(StatusCode::OK, FORGOT_MESSAGE, Value::Null))
}

/// `POST /reset-password`: set the password, revoke every session, burn the token.
pub async fn reset_password(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let mut body = form_or_json_body(&req)?;
    let token = body.required_text(&["token"]);
    let password = body.required_text(&["password", "newPassword", "new_password"]);
    if let Some(pw) = &password {
        if let Err(problem) = validate::password(pw, &app.config.auth) {
            body.problem("password", problem);
        }
    }
    body.finish()?;
    let key = token_key(token)?;
    // Refuse unknown tokens before spending a hash on them.
    if app
        .store
        .get_token(&key)
        .await?
        .is_none_or(|t| t.kind != TokenKind::PasswordReset)
    {
        return Err(ApiError::InvalidToken);
    }
    let Some(password) = password else {
        return Err(ApiError::invalid("password is required"));
    };
    let hash = app.hasher.hash(password).await?;
    let now = now_secs();
    let user_id = app
        .store
        .reset_password(key, hash, now)
        .await
        .map_err(refused)?
        .ok_or(ApiError::InvalidToken)?;
    app.lockout
        .record_success(app.store.counters(), &AccountKey::User(user_id.clone()))
        .await?;
    app.audit(
        "password_reset",
        Some(req.client_ip),
        Some(&user_id),
        None,
        None,
    );
    Ok(ApiResponse::ok(
        StatusCode::OK,
        "password changed; sign in with the new password",
        Value::Null,
    ))
}

/// `POST /verify-email`.
pub async fn verify_email(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    let mut body = form_or_json_body(&req)?;
    let token = body.required_text(&["token"]);
    body.finish()?;
    let key = token_key(token)?;
    let now = now_secs();
    let user_id = app
        .store
        .verify_email(key, now)
        .await
        .map_err(refused)?
        .ok_or(ApiError::InvalidToken)?;
    app.audit(
        "email_verified",
        Some(req.client_ip),
        Some(&user_id),
        None,
        None,
    );
    Ok(ApiResponse::ok(
        StatusCode::OK,
        "email address confirmed",
        Value::Null,
    ))
}

/// `POST /resend-verification`: always the same answer, under the same mail limits as
/// `forgot-password`.
pub async fn resend_verification(
    app: Arc<App>,
    req: ApiRequest,
    _: Vec<String>,
) -> Result<ApiResponse, ApiError> {
    app.mailer()?;
    let mut body = form_or_json_body(&req)?;
    // The sign-in page offers this with what was typed there: an address or a username.
    let identifier = body.required_text(&["email", "identifier"]);
    body.finish()?;
    let kind = TokenKind::EmailVerification;
    if client_may_ask(&app, req.client_ip, kind).await? {
        let found = find_account(&app.store, &identifier.unwrap_or_default()).await?;
        if let Some(user) = found {
            if !user.email_verified
                && user.status != UserStatus::Disabled
                && user.role != Role::Service
            {
                mail_token(&app, user, kind, req.client_ip).await?;
            }
        }
    }
    Ok(ApiResponse::ok(StatusCode::OK, RESEND_MESSAGE, Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_mails_say_the_same_in_text_and_html_and_escape_every_value() {
        let link = "https://auth.example.com/auth/reset-password?token=a%2Bb&x=1";
        let title = "Fish & <Chips> \"Ltd\"";
        let mail = link_mail(
            TokenKind::PasswordReset,
            title,
            "o'brien@example.com",
            link,
            RESET_VALID_SECS,
        );
        assert_eq!(mail.subject, "Reset your password · Fish & <Chips> \"Ltd\"");
        assert!(mail.text.contains(&format!("\n{link}\n")), "{}", mail.text);
        assert!(mail.text.contains("within 30 minutes"));
        assert!(mail
            .text
            .contains("If this was not you, ignore this message"));
        assert!(mail
            .text
            .contains("(o'brien@example.com) at Fish & <Chips>"));

        let escaped_link = "https://auth.example.com/auth/reset-password?token=a%2Bb&amp;x=1";
        assert!(
            mail.html.contains(&format!("href=\"{escaped_link}\"")),
            "{}",
            mail.html
        );
        assert!(mail.html.contains(&format!(">{escaped_link}</p>")));
        assert!(mail
            .html
            .contains("(o&#39;brien@example.com) at Fish &amp; &lt;Chips&gt; &quot;Ltd&quot;."));
        assert!(!mail.html.contains("<Chips>") && !mail.html.contains("o'brien"));
        assert!(mail.html.contains("within 30 minutes"));
        assert!(mail.html.contains(">Choose a new password</a>"));
        assert!(mail.html.contains("<html lang=\"en\">"));
        // Every sentence of the text is in the HTML too.
        for line in mail.text.lines().filter(|l| !l.is_empty()) {
            assert!(
                mail.html.contains(&esc(line)),
                "{line:?} is not in the HTML"
            );
        }

        let mail = link_mail(
            TokenKind::EmailVerification,
            "Example Corp",
            "v@example.com",
            "https://a.example/auth/verify-email?token=t",
            VERIFY_VALID_SECS,
        );
        assert_eq!(mail.subject, "Confirm your email address · Example Corp");
        assert!(mail.text.contains("within 48 hours"));
        assert!(mail.html.contains(">Confirm my email address</a>"));
        assert!(
            !format!("{mail:?}").contains("token"),
            "Debug never shows the body"
        );
    }
}
