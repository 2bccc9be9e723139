//! A child process's output, read line by line as it is written (so a full pipe never stops
//! the process), kept for the test to look at or to wait on.

use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The output of one process so far; the reading thread ends when the stream closes.
pub struct CapturedLog {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    grew: Condvar,
}

struct State {
    text: String,
    /// The stream has ended: the process has exited and nothing more will come.
    closed: bool,
}

impl CapturedLog {
    /// Start reading `stream` (a child's stderr) until it closes.
    pub fn capture(stream: impl Read + Send + 'static) -> CapturedLog {
        let log = CapturedLog::new(false);
        let shared = Arc::clone(&log.shared);
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut line = Vec::new();
            loop {
                line.clear();
                let n = reader.read_until(b'\n', &mut line).unwrap_or(0);
                let mut state = shared.lock();
                if n == 0 {
                    state.closed = true;
                    shared.grew.notify_all();
                    return;
                }
                state.text.push_str(&String::from_utf8_lossy(&line));
                shared.grew.notify_all();
            }
        });
        log
    }

    /// The log of a process that has not started: empty and closed.
    pub fn none() -> CapturedLog {
        CapturedLog::new(true)
    }

    fn new(closed: bool) -> CapturedLog {
        CapturedLog {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    text: String::new(),
                    closed,
                }),
                grew: Condvar::new(),
            }),
        }
    }

    /// Everything read so far.
    pub fn text(&self) -> String {
        self.shared.lock().text.clone()
    }

    /// The first line so far that `matches`, waiting up to `timeout` for it; `Err` with the
    /// text so far if it has not come by then or the stream closed without it.
    pub fn wait_for_line(
        &self,
        matches: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Result<String, String> {
        let state = self.wait(timeout, |text| text.lines().any(&matches));
        state
            .text
            .lines()
            .find(|l| matches(l))
            .map(str::to_string)
            .ok_or_else(|| state.text.clone())
    }

    /// Wait (up to `timeout`) for the stream to close, as it does once the process has exited;
    /// then everything it wrote. A process's children that keep the stream open only make
    /// this wait the whole `timeout`.
    pub fn finish(&self, timeout: Duration) -> String {
        self.wait(timeout, |_| false).text.clone()
    }

    /// Wait until the text so far is `enough`, the stream closes or `timeout` passes.
    fn wait(&self, timeout: Duration, enough: impl Fn(&str) -> bool) -> MutexGuard<'_, State> {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if enough(&state.text) || state.closed || left.is_zero() {
                return state;
            }
            state = self
                .shared
                .grew
                .wait_timeout(state, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
