//! A minimal SMTP sink on loopback that keeps every message it receives as sent, and reads
//! them with a MIME parser, for mailed links and headers in tests.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A received message: its recipients and the message as it was sent.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: Vec<String>,
    /// Headers and body as received (transfer encodings not undone).
    pub raw: String,
}

impl Mail {
    /// The message parsed: headers, MIME parts, decoded bodies.
    pub fn parsed(&self) -> mailparse::ParsedMail<'_> {
        mailparse::parse_mail(self.raw.as_bytes())
            .unwrap_or_else(|e| panic!("not a parsable message ({e}): {}", self.raw))
    }

    /// The first header called `name`, decoded (RFC 2047 words too).
    pub fn header(&self, name: &str) -> Option<String> {
        use mailparse::MailHeaderMap as _;
        self.parsed().headers.get_first_value(name)
    }

    /// The decoded body of the first part of type `mimetype` (a single-part message is its own
    /// first part), with its transfer encoding and charset undone.
    pub fn part(&self, mimetype: &str) -> Option<String> {
        let parsed = self.parsed();
        let part = parsed.parts().find(|p| p.ctype.mimetype == mimetype)?;
        Some(part.get_body().expect("a decodable body"))
    }

    /// The plain-text part, decoded.
    pub fn text(&self) -> String {
        self.part("text/plain")
            .unwrap_or_else(|| panic!("no text/plain part in {}", self.raw))
    }
}

/// The running sink.
pub struct SmtpSink {
    pub port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
}

fn serve(stream: std::net::TcpStream, mails: Arc<Mutex<Vec<Mail>>>) -> std::io::Result<()> {
    let mut out = stream.try_clone()?;
    let mut lines = BufReader::new(stream);
    out.write_all(b"220 sink ESMTP\r\n")?;
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            out.write_all(b"250-sink\r\n250 8BITMIME\r\n")?;
        } else if upper.starts_with("MAIL FROM") {
            to.clear();
            out.write_all(b"250 OK\r\n")?;
        } else if upper.starts_with("RCPT TO") {
            to.push(
                line[8..]
                    .trim()
                    .trim_matches(['<', '>', ':', ' '])
                    .to_string(),
            );
            out.write_all(b"250 OK\r\n")?;
        } else if upper.starts_with("DATA") {
            out.write_all(b"354 go ahead\r\n")?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line)? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(
                    line.strip_prefix('.')
                        .filter(|_| line.starts_with(".."))
                        .unwrap_or(&line),
                );
            }
            mails.lock().expect("mails").push(Mail {
                to: to.clone(),
                raw: data,
            });
            out.write_all(b"250 queued\r\n")?;
        } else if upper.starts_with("QUIT") {
            out.write_all(b"221 bye\r\n")?;
            return Ok(());
        } else {
            out.write_all(b"250 OK\r\n")?;
        }
    }
}

impl SmtpSink {
    /// Start on an ephemeral loopback port.
    pub fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind smtp");
        let port = listener.local_addr().expect("addr").port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::clone(&mails);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let m = Arc::clone(&shared);
                std::thread::spawn(move || {
                    let _ = serve(stream, m);
                });
            }
        });
        SmtpSink { port, mails }
    }

    /// The `[smtp]` section for a gateway using this sink.
    pub fn config(&self) -> String {
        format!("[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"authgate <no-reply@example.com>\"\n", self.port)
    }

    /// Every message to `to` so far.
    pub fn mails_to(&self, to: &str) -> Vec<Mail> {
        self.mails
            .lock()
            .expect("mails")
            .iter()
            .filter(|m| m.to.iter().any(|t| t == to))
            .cloned()
            .collect()
    }

    /// Wait for the `n`th (1-based) message to `to`.
    pub fn wait_for(&self, to: &str, n: usize) -> Mail {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let mails = self.mails_to(to);
            if mails.len() >= n {
                return mails[n - 1].clone();
            }
            assert!(Instant::now() < deadline, "no mail #{n} to {to}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The link in a mail's plain text that contains `path`, and its token.
pub fn link_in(mail: &Mail, path: &str) -> (String, String) {
    let text = mail.text();
    let link = text
        .split_whitespace()
        .find(|w| w.contains(path) && w.contains("token="))
        .unwrap_or_else(|| panic!("no {path} link in {text}"))
        .to_string();
    let token = link.split("token=").nth(1).expect("token").to_string();
    (link, token)
}
