//! The one credential check: the session a request presents (the cookie, or a session as a
//! bearer token when enabled) resolves here to a [`Principal`], and an API token to a
//! [`LiveToken`], from memory when it was checked before and nothing that could end it was
//! announced since, else with one store read; never a write (last-seen and last-use times go
//! to the maintenance task in batches) and never a password hash. The proxy, forward auth and
//! the API all use it; only the proxy and forward auth accept tokens.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;

use http::header::AUTHORIZATION;
use http::HeaderMap;
use tokio::sync::mpsc;

use crate::auth::api_token::{self, LiveToken};
use crate::auth::cookie;
use crate::auth::session::{self, Identity};
use crate::auth::session_cache::{CredentialCache, LiveSession, SessionCache};
use crate::metrics::{Metrics, StoreOp};
use crate::store::{SessionKey, SessionStage, Store, StoreError};

/// Last-seen is written at most this often per session.
pub const TOUCH_INTERVAL_SECS: i64 = 60;
/// Live sessions kept in memory at most.
const SESSION_CACHE_ENTRIES: usize = 65_536;
/// Live API tokens kept in memory at most.
const TOKEN_CACHE_ENTRIES: usize = 16_384;
/// Pending last-seen updates held at most; beyond that updates are dropped (they are advisory).
const TOUCH_QUEUE: usize = 8192;

/// What was used, for a last-seen (session) or last-use (token) update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Used {
    Session(SessionKey),
    Token(SessionKey),
}

/// A last-seen or last-use update waiting to be written.
pub type Touch = (Used, i64);

/// Who a request is from: a live session. (Which header carried it does not matter to anyone:
/// what never reaches an upstream is decided from the request's headers alone, in
/// [`crate::auth::api_token::credential_headers`].)
#[derive(Debug, Clone)]
pub struct Principal {
    pub live: Arc<LiveSession>,
}

impl Deref for Principal {
    type Target = LiveSession;
    fn deref(&self) -> &LiveSession {
        &self.live
    }
}

impl Principal {
    /// The identity upstreams are told.
    pub fn identity(&self) -> &Identity {
        &self.live.identity
    }

    /// What the session still lacks (a second factor, or enrolling one).
    pub fn stage(&self) -> SessionStage {
        self.live.session.stage
    }

    /// A complete session: everything may accept it. Any other is accepted only by the
    /// endpoints that complete it.
    pub fn complete(&self) -> bool {
        self.stage() == SessionStage::Complete
    }
}

/// Resolves credentials to principals.
pub struct Authenticator {
    store: Store,
    cache: Arc<SessionCache>,
    tokens: Arc<CredentialCache<LiveToken>>,
    token_header: Option<http::HeaderName>,
    cookie_name: String,
    bearer: bool,
    idle_secs: i64,
    metrics: Arc<Metrics>,
    touches: mpsc::Sender<Touch>,
    touch_rx: std::sync::Mutex<Option<mpsc::Receiver<Touch>>>,
}

impl Authenticator {
    /// A session check over `store`, listening to its announcements.
    pub fn new(
        store: Store,
        session: &crate::config::SessionConfig,
        metrics: Arc<Metrics>,
    ) -> Authenticator {
        let cache = Arc::new(SessionCache::new(SESSION_CACHE_ENTRIES));
        store.events().listen(cache.clone());
        let tokens = Arc::new(CredentialCache::new(TOKEN_CACHE_ENTRIES));
        store.events().listen(tokens.clone());
        let (tx, rx) = mpsc::channel(TOUCH_QUEUE);
        Authenticator {
            store,
            cache,
            tokens,
            token_header: session.token_header.clone(),
            cookie_name: cookie::wire_name(session),
            bearer: session.bearer,
            idle_secs: i64::try_from(session.idle_timeout.as_secs()).unwrap_or(i64::MAX),
            metrics,
            touches: tx,
            touch_rx: std::sync::Mutex::new(Some(rx)),
        }
    }

    /// The idle timeout in seconds.
    pub fn idle_secs(&self) -> i64 {
        self.idle_secs
    }

    /// The storage keys of the session tokens a request presents (cookie first, then bearer
    /// when enabled), well-formed ones only: what a logout ends or a new sign-in replaces.
    pub fn presented_keys(&self, headers: &HeaderMap) -> Vec<SessionKey> {
        self.presented(headers)
            .filter_map(session::key_for)
            .collect()
    }

    fn presented<'h>(&self, headers: &'h HeaderMap) -> impl Iterator<Item = &'h str> + 'h {
        let cookies = cookie::session_token_refs(headers, &self.cookie_name);
        let bearer = if self.bearer {
            bearer_token(headers)
        } else {
            None
        };
        cookies.into_iter().chain(bearer)
    }

    /// The first presented credential that names a live session. A store failure is an error
    /// so callers fail closed. Queues a last-seen update when one is due; never writes itself.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        now: i64,
    ) -> Result<Option<Principal>, StoreError> {
        for token in self.presented(headers) {
            let Some(key) = session::key_for(token) else {
                continue;
            };
            if let Some(hit) = self.cache.get(&key, now, self.idle_secs) {
                self.note_activity(Used::Session(key), hit.last_seen, now);
                return Ok(Some(Principal { live: hit.live }));
            }
            // Taken before the read: an announcement after it makes what we read unusable.
            let seq = self.cache.sequence();
            let started = Instant::now();
            let found = self.store.get_session(&key).await;
            self.metrics
                .store_time(StoreOp::SessionCheck, started.elapsed());
            let Some((stored, user)) = found? else {
                continue;
            };
            if !session::is_live(&stored, &user, self.idle_secs, now) {
                continue;
            }
            let live = Arc::new(LiveSession {
                key,
                identity: Identity::from_user(&user).with_methods(&stored.amr),
                valid_until: stored.expires_at.min(user.expires_at.unwrap_or(i64::MAX)),
                session: stored,
                user,
            });
            self.note_activity(Used::Session(key), live.session.last_seen, now);
            if self.store.may_keep_copies() {
                self.cache.insert(Arc::clone(&live), seq);
            }
            return Ok(Some(Principal { live }));
        }
        Ok(None)
    }

    /// The header that may carry an API token, besides `Authorization`.
    pub fn token_header(&self) -> Option<&http::HeaderName> {
        self.token_header.as_ref()
    }

    /// The live API token `token` names, if any (unknown, malformed, expired, revoked, or an
    /// owner who may not use it: `None`). A store failure is an error so callers fail closed.
    pub async fn check_token(
        &self,
        token: &str,
        now: i64,
    ) -> Result<Option<Arc<LiveToken>>, StoreError> {
        let Some(key) = api_token::key_for(token) else {
            return Ok(None);
        };
        if let Some(hit) = self.tokens.get(&key, now, i64::MAX) {
            self.note_activity(Used::Token(key), hit.last_seen, now);
            return Ok(Some(hit.live));
        }
        let seq = self.tokens.sequence();
        let started = Instant::now();
        let found = self.store.find_api_token(&key).await;
        self.metrics
            .store_time(StoreOp::SessionCheck, started.elapsed());
        let Some((record, user)) = found? else {
            return Ok(None);
        };
        let Some(live) = LiveToken::check(key, record, user, now) else {
            return Ok(None);
        };
        let live = Arc::new(live);
        // Kept first, so that a use queued now is noted on the kept copy (not queued again
        // by the next request).
        if self.store.may_keep_copies() {
            self.tokens.insert(Arc::clone(&live), seq);
        }
        self.note_activity(
            Used::Token(key),
            crate::auth::session_cache::Cached::last_seen(&*live),
            now,
        );
        Ok(Some(live))
    }

    /// Queue a last-seen or last-use update when one is due (at most once a minute each).
    fn note_activity(&self, used: Used, last_seen: i64, now: i64) {
        if now - last_seen >= TOUCH_INTERVAL_SECS && self.touches.try_send((used, now)).is_ok() {
            match used {
                Used::Session(key) => self.cache.seen(&key, now),
                Used::Token(key) => self.tokens.seen(&key, now),
            }
        }
    }

    /// The receiving end of last-seen updates, for the maintenance task (taken once).
    pub fn take_touch_receiver(&self) -> Option<mpsc::Receiver<Touch>> {
        self.touch_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Sessions held in memory now.
    pub fn remembered(&self) -> usize {
        self.cache.len()
    }
}

/// The token of an `Authorization: Bearer` header.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}
