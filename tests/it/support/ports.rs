//! Loopback ports for the fixtures, and the rule that keeps parallel tests off each other's.
//!
//! A fixture whose configuration must name its port before it starts (the gateway, nginx,
//! Caddy, the sign-in provider, chromedriver) takes one from [`free_port`]. That port was free
//! when it was handed out, but it is released before the fixture's process binds it, so
//! something else (another test run on the machine, an outgoing connection) can take it in
//! between. So every such fixture:
//! - counts as started only once its own process listens on the port ([`listens_on`],
//!   [`until_listening`]): an answer on the port may come from whoever took it;
//! - when its process reports the address in use, starts again from scratch on a fresh port
//!   ([`on_a_free_port`]), its configuration written anew.
//!
//! `free_port` is used only under such a retry. A port that must stay closed comes from
//! [`closed_port`]; a fixture that can listen on a port of the system's choosing (the echo
//! upstream, the SMTP sink, the Express app) binds port 0 and needs neither.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::process::{Child, ExitStatus};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many fresh ports a fixture tries before giving up.
const PORT_ATTEMPTS: usize = 5;

/// A loopback port that was free a moment ago (bound, then released), never the same one
/// twice in a test run, so a fixture that starts again on its own port (a restart) never
/// meets another fixture of this run there. Only for use under [`on_a_free_port`].
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    // Ports handed out before stay bound meanwhile, so the system offers others.
    let mut held = Vec::new();
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("free port");
        let port = listener.local_addr().expect("local address").port();
        if handed_out.insert(port) {
            return port;
        }
        held.push(listener);
    }
}

/// Why a fixture did not start on the port it was given.
pub enum NotStarted {
    /// The port (or another one its configuration named) was taken: worth a fresh port.
    PortTaken(String),
    /// Anything else, with what the process said.
    Failed(String),
}

impl NotStarted {
    /// A process that exited saying `why`: the port was taken if it says the address is in use.
    pub fn exited(why: String) -> NotStarted {
        if says_address_in_use(&why) {
            NotStarted::PortTaken(why)
        } else {
            NotStarted::Failed(why)
        }
    }
}

/// Call `start` with a port from [`free_port`] until it does not report the port taken (at
/// most a few times); panics with the reason otherwise.
pub fn on_a_free_port<T>(mut start: impl FnMut(u16) -> Result<T, NotStarted>) -> T {
    let mut last = String::new();
    for _ in 0..PORT_ATTEMPTS {
        match start(free_port()) {
            Ok(started) => return started,
            Err(NotStarted::PortTaken(why)) => last = why,
            Err(NotStarted::Failed(why)) => panic!("{why}"),
        }
    }
    panic!("{PORT_ATTEMPTS} ports in a row were taken; the last attempt: {last}");
}

/// Whether a process's output says it could not listen because the address is in use.
pub fn says_address_in_use(output: &str) -> bool {
    let output = output.to_ascii_lowercase();
    output.contains("address already in use") || output.contains("eaddrinuse")
}

/// Whether process `pid` holds a socket listening on TCP `port`, on any local address (read
/// from Linux's `/proc`).
pub fn listens_on(pid: u32, port: u16) -> bool {
    listening_sockets(pid, port) > 0
}

/// How many sockets listening on `port` (any address) process `pid` holds.
pub fn listening_sockets(pid: u32, port: u16) -> usize {
    let listening: BTreeSet<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|row| {
                    let cols: Vec<&str> = row.split_whitespace().collect();
                    let (local, state, inode) = (cols.get(1)?, cols.get(3)?, cols.get(9)?);
                    let local_port = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
                    // 0A: LISTEN
                    (local_port == port && *state == "0A").then(|| inode.to_string())
                })
                .collect::<Vec<_>>()
        })
        .collect();
    if listening.is_empty() {
        return 0;
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    let inodes: BTreeSet<String> = fds
        .flatten()
        .filter_map(|fd| {
            let target = std::fs::read_link(fd.path()).ok()?;
            let inode = target
                .to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .to_string();
            listening.contains(&inode).then_some(inode)
        })
        .collect();
    inodes.len()
}

/// Wait up to `timeout` until `child` listens on `port` and `ready` (asked only then) agrees.
/// `Err(Some(status))` if it exits first; `Err(None)` if it is still not ready by then, when it
/// has been killed.
pub fn until_listening(
    child: &mut Child,
    port: u16,
    ready: impl Fn() -> bool,
    timeout: Duration,
) -> Result<(), Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        // Whoever took the port would answer too: only the child's own socket counts.
        if listens_on(child.id(), port) && ready() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Some(status));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A loopback port where connections are refused for as long as this lives: bound, so no one
/// else can listen there, but never listened on.
pub struct ClosedPort {
    pub port: u16,
    _socket: tokio::net::TcpSocket,
}

/// A port nothing listens on (an upstream or provider that is down).
pub fn closed_port() -> ClosedPort {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(([127, 0, 0, 1], 0).into())
        .expect("bind a closed port");
    let port = socket.local_addr().expect("local address").port();
    ClosedPort {
        port,
        _socket: socket,
    }
}
