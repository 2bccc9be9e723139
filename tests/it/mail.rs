//! What the gateway's mails look like to a mail client and a spam filter, read from an SMTP
//! sink with a MIME parser: `multipart/alternative` with a plain-text and an HTML part saying
//! the same, a `Message-ID` on the public host, and the site's title in the subject.

use serde_json::json;

use crate::support::smtp::{link_in, SmtpSink};
use crate::support::TestServer;

#[test]
fn a_reset_mail_is_multipart_with_a_message_id_on_the_public_host() {
    let smtp = SmtpSink::start();
    // A public host that is nobody's machine name: the Message-ID must come from it.
    let s = TestServer::start_with(|port| {
        (
            format!("public_url = \"http://auth.example.test:{port}\""),
            format!("[ui]\ntitle = \"Example Corp\"\n\n{}", smtp.config()),
        )
    });
    s.setup_owner();
    s.register("multipart@example.com", "multipart password 1");
    let r = s.client().post_json(
        "/auth/forgot-password",
        &json!({"email": "multipart@example.com"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);

    let mail = smtp.wait_for("multipart@example.com", 1);
    assert_eq!(mail.header("MIME-Version").as_deref(), Some("1.0"));
    let id = mail.header("Message-ID").expect("a Message-ID");
    let (local, domain) = id
        .strip_prefix('<')
        .and_then(|i| i.strip_suffix('>'))
        .and_then(|i| i.split_once('@'))
        .unwrap_or_else(|| panic!("Message-ID {id:?} is not <local@domain>"));
    assert_eq!(domain, "auth.example.test");
    assert!(
        local.len() >= 32 && local.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("Reset your password · Example Corp")
    );
    assert_eq!(mail.parsed().ctype.mimetype, "multipart/alternative");

    let (link, _) = link_in(&mail, "/auth/reset-password");
    let port = s.port;
    assert!(
        link.starts_with(&format!(
            "http://auth.example.test:{port}/auth/reset-password?token="
        )),
        "{link}"
    );
    let text = mail.text();
    assert!(text.contains("within 30 minutes"), "{text}");
    assert!(text.contains("at Example Corp."), "{text}");
    assert!(text.contains("If this was not you, ignore this message"));
    let html = mail.part("text/html").expect("a text/html part");
    assert!(html.contains(&format!("href=\"{link}\"")), "{html}");
    assert!(
        html.contains(&format!(">{link}</p>")),
        "the raw address too: {html}"
    );
    assert!(html.contains("within 30 minutes"));
    assert!(html.contains("If this was not you, ignore this message"));
    assert!(html.contains("<title>Reset your password · Example Corp</title>"));
}
