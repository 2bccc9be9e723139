//! Discovery documents and signing keys of OpenID Connect providers: fetched on first use,
//! cached, fetched again when stale by one request at a time (sign-ins go on with the stale
//! document meanwhile, or when that fails), an outage without any document remembered for a few
//! seconds, and the keys fetched again, within limits, for an ID token signed with an unknown
//! key id.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use openidconnect::core::{CoreJsonWebKeySet, CoreProviderMetadata};
use openidconnect::IssuerUrl;

use super::{error_chain, unavailable, OidcError, Provider};

/// Discovery documents are fetched again after this long (keys on demand, see below).
const METADATA_TTL: Duration = Duration::from_secs(24 * 3600);
/// After a failed discovery, sign-ins answer "unavailable" at once for this long.
const FAILURE_BACKOFF: Duration = Duration::from_secs(5);
/// An unknown key id refetches the provider's keys at most this often.
const JWKS_MIN_REFRESH: Duration = Duration::from_secs(1);

/// A discovered OpenID Connect provider.
#[derive(Clone)]
pub(super) struct Discovered {
    pub(super) metadata: CoreProviderMetadata,
    fetched: Instant,
    keys_fetched: Instant,
}

/// What was learnt of a provider's discovery document and keys, and when they were last sent
/// for.
pub(super) struct DiscoveryCache {
    document: RwLock<Option<Discovered>>,
    metadata_ttl: Duration,
    /// How long a failure (or a refresh started) holds off the next try.
    retry_after: Duration,
    /// When the last discovery without a document to fall back on failed.
    failed_at: RwLock<Option<Instant>>,
    /// When a stale document was last sent for again, and whether that is still under way
    /// (one request at a time refreshes it).
    refreshed_at: RwLock<Option<Instant>>,
    refreshing: AtomicBool,
    /// When the keys were last sent for, whether that worked or not.
    keys_tried_at: RwLock<Option<Instant>>,
}

impl DiscoveryCache {
    /// Nothing learnt yet.
    pub(super) fn new() -> DiscoveryCache {
        DiscoveryCache {
            document: RwLock::new(None),
            metadata_ttl: METADATA_TTL,
            retry_after: FAILURE_BACKOFF,
            failed_at: RwLock::new(None),
            refreshed_at: RwLock::new(None),
            refreshing: AtomicBool::new(false),
            keys_tried_at: RwLock::new(None),
        }
    }
}

/// Marks a discovery refresh under way; clears the mark when dropped.
struct Refreshing<'a>(&'a AtomicBool);

impl Drop for Refreshing<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Provider {
    /// The discovery document: fetched once, again after a day. While a stale document is
    /// being fetched again (by one request at a time, at most every few seconds), or when that
    /// fails, sign-ins go on with it. Without any document, a failure is remembered for a few
    /// seconds so an outage answers at once instead of queuing requests behind timeouts.
    pub(super) async fn discovered(&self, issuer: &str) -> Result<Discovered, OidcError> {
        let name = &self.config.name;
        let cache = &self.discovery;
        let cached = cache
            .document
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match &cached {
            Some(d) if d.fetched.elapsed() < cache.metadata_ttl => return Ok(d.clone()),
            Some(d) => {
                let mut last = cache
                    .refreshed_at
                    .write()
                    .unwrap_or_else(|p| p.into_inner());
                if last.is_some_and(|t| t.elapsed() < cache.retry_after)
                    || cache.refreshing.swap(true, Ordering::AcqRel)
                {
                    return Ok(d.clone());
                }
                *last = Some(Instant::now());
            }
            None => {
                let recently_failed = cache
                    .failed_at
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .is_some_and(|t| t.elapsed() < cache.retry_after);
                if recently_failed {
                    return Err(OidcError::Unavailable(
                        "cannot reach the sign-in provider right now; try again in a moment".into(),
                    ));
                }
            }
        }
        // Ends the refresh however this request ends (an error, or the caller giving up).
        let _refresh = cached.as_ref().map(|_| Refreshing(&cache.refreshing));
        let issuer_url =
            IssuerUrl::new(issuer.to_string()).map_err(|e| unavailable(name, "bad issuer", e))?;
        match CoreProviderMetadata::discover_async(issuer_url, &self.http).await {
            Ok(metadata) => {
                let d = Discovered {
                    metadata,
                    fetched: Instant::now(),
                    keys_fetched: Instant::now(),
                };
                *cache.document.write().unwrap_or_else(|p| p.into_inner()) = Some(d.clone());
                Ok(d)
            }
            Err(e) => {
                let detail = error_chain(&e);
                match cached {
                    // Stale beats nothing: keep signing in with what we knew.
                    Some(d) => {
                        tracing::warn!(provider = %name, error = %detail, "discovery refresh failed; keeping the previous document");
                        Ok(d)
                    }
                    None => {
                        *cache.failed_at.write().unwrap_or_else(|p| p.into_inner()) =
                            Some(Instant::now());
                        Err(unavailable(name, "discovery failed", detail))
                    }
                }
            }
        }
    }

    /// The provider's keys again, for a key id `d` does not know (the provider rotated keys):
    /// the cached keys if another request fetched them since `d` was read, else fetched now,
    /// at most once per [`JWKS_MIN_REFRESH`] whether that works or not. `None` if it is too
    /// soon to ask again.
    pub(super) async fn refresh_keys(
        &self,
        d: &Discovered,
    ) -> Result<Option<Discovered>, OidcError> {
        let cache = &self.discovery;
        {
            let cached = cache.document.read().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = cached.as_ref().filter(|c| c.keys_fetched > d.keys_fetched) {
                return Ok(Some(c.clone()));
            }
            let mut tried = cache
                .keys_tried_at
                .write()
                .unwrap_or_else(|p| p.into_inner());
            if d.keys_fetched.elapsed() < JWKS_MIN_REFRESH
                || tried.is_some_and(|t| t.elapsed() < JWKS_MIN_REFRESH)
            {
                return Ok(None);
            }
            *tried = Some(Instant::now());
        }
        let keys = CoreJsonWebKeySet::fetch_async(d.metadata.jwks_uri(), &self.http)
            .await
            .map_err(|e| {
                unavailable(&self.config.name, "key set refresh failed", error_chain(&e))
            })?;
        let mut cached = cache.document.write().unwrap_or_else(|p| p.into_inner());
        // Only the keys change: the document may have been refreshed meanwhile.
        let mut fresh = cached.clone().unwrap_or_else(|| d.clone());
        fresh.metadata = fresh.metadata.set_jwks(keys);
        fresh.keys_fetched = Instant::now();
        *cached = Some(fresh.clone());
        tracing::info!(provider = %self.config.name, "signing keys refreshed");
        Ok(Some(fresh))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
    use std::sync::Arc;

    const SERVE: u8 = 0;
    const FAIL: u8 = 1;
    const HUGE: u8 = 2;
    const SLOW: u8 = 3;

    /// A provider stand-in on loopback: serves a discovery document and an empty key set,
    /// or fails with 503, or answers discovery with a valid document padded over the limit (no
    /// length given), or slowly. Counts the discovery and key set requests.
    struct Stub {
        issuer: String,
        discoveries: Arc<AtomicUsize>,
        key_sets: Arc<AtomicUsize>,
        mode: Arc<AtomicU8>,
    }

    fn stub() -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let issuer = format!("http://{}", listener.local_addr().expect("addr"));
        let (discoveries, mode) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicU8::new(SERVE)),
        );
        let key_sets = Arc::new(AtomicUsize::new(0));
        let (d, m, iss) = (Arc::clone(&discoveries), Arc::clone(&mode), issuer.clone());
        let k = Arc::clone(&key_sets);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let discovery = head.contains("/.well-known/openid-configuration");
                if discovery {
                    d.fetch_add(1, Ordering::SeqCst);
                } else {
                    k.fetch_add(1, Ordering::SeqCst);
                }
                if discovery && m.load(Ordering::SeqCst) == SLOW {
                    std::thread::sleep(Duration::from_millis(300));
                }
                let body = if discovery {
                    format!(
                        r#"{{"issuer":"{iss}","authorization_endpoint":"{iss}/auth","token_endpoint":"{iss}/token","jwks_uri":"{iss}/jwks","response_types_supported":["code"],"subject_types_supported":["public"],"id_token_signing_alg_values_supported":["RS256"]}}"#
                    )
                } else {
                    r#"{"keys":[]}"#.to_string()
                };
                let _ = match m.load(Ordering::SeqCst) {
                    FAIL => stream.write_all(
                        b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    ),
                    HUGE if discovery => stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n")
                        .and_then(|_| {
                            // A valid document, padded past the limit.
                            let padded = format!(
                                r#"{{"x_padding":"{}",{}"#,
                                "a".repeat(2 << 20),
                                &body[1..]
                            );
                            stream.write_all(padded.as_bytes())
                        }),
                    _ => stream.write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    ),
                };
            }
        });
        Stub {
            issuer,
            discoveries,
            key_sets,
            mode,
        }
    }

    fn provider(issuer: &str) -> Provider {
        let config = crate::config::Config::from_toml(&format!(
            "[[oidc]]\nname = \"corp\"\nissuer = \"{issuer}\"\nclient_id = \"c\"\nclient_secret = \"s\"\ntimeout = \"5s\"\n"
        ))
        .expect("config");
        Provider::new(&config.oidc[0]).expect("provider")
    }

    fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn a_stale_document_is_fetched_again_by_one_request_and_kept_when_that_fails() {
        let stub = stub();
        let mut p = provider(&stub.issuer);
        p.discovery.metadata_ttl = Duration::ZERO; // every document is stale at once
        let count = || stub.discoveries.load(Ordering::SeqCst);
        block_on(async {
            p.discovered(&stub.issuer).await.expect("first fetch");
            assert_eq!(count(), 1);
            p.discovered(&stub.issuer).await.expect("refresh");
            assert_eq!(count(), 2);
            // Another request right after goes on with the stale document.
            p.discovered(&stub.issuer).await.expect("stale");
            assert_eq!(count(), 2);
            // The provider fails: the next refresh keeps the document it had.
            stub.mode.store(FAIL, Ordering::SeqCst);
            *p.discovery.refreshed_at.write().expect("lock") = None;
            p.discovered(&stub.issuer).await.expect("kept");
            assert_eq!(count(), 3);
            p.discovered(&stub.issuer).await.expect("kept");
            assert_eq!(count(), 3, "no request queues behind a failing provider");
        });
    }

    #[test]
    fn one_stale_refresh_runs_at_a_time_however_long_it_takes() {
        let stub = stub();
        let mut p = provider(&stub.issuer);
        p.discovery.metadata_ttl = Duration::ZERO;
        p.discovery.retry_after = Duration::ZERO; // only the refresh under way holds others off
        block_on(async {
            p.discovered(&stub.issuer).await.expect("first fetch");
            stub.mode.store(SLOW, Ordering::SeqCst);
            let (a, b) = tokio::join!(p.discovered(&stub.issuer), p.discovered(&stub.issuer));
            assert!(a.is_ok() && b.is_ok());
        });
        assert_eq!(stub.discoveries.load(Ordering::SeqCst), 2);
        assert!(
            !p.discovery.refreshing.load(Ordering::SeqCst),
            "the mark is cleared"
        );
    }

    #[test]
    fn keys_another_request_fetched_are_used_and_fetching_is_limited() {
        let stub = stub();
        let p = provider(&stub.issuer);
        let keys = || stub.key_sets.load(Ordering::SeqCst);
        block_on(async {
            let old = p.discovered(&stub.issuer).await.expect("discovery");
            let at_start = keys();
            // Just discovered: too soon to ask for the keys again.
            assert!(p.refresh_keys(&old).await.expect("refresh").is_none());
            std::thread::sleep(JWKS_MIN_REFRESH + Duration::from_millis(100));
            let fresh = p
                .refresh_keys(&old)
                .await
                .expect("refresh")
                .expect("fetched");
            assert_eq!(keys(), at_start + 1);
            // A request still holding the old copy gets the keys fetched meanwhile.
            let again = p
                .refresh_keys(&old)
                .await
                .expect("refresh")
                .expect("cached");
            assert_eq!(again.keys_fetched, fresh.keys_fetched);
            assert_eq!(keys(), at_start + 1);
            // Holding the newest copy, it is too soon to fetch again.
            assert!(p.refresh_keys(&fresh).await.expect("refresh").is_none());
            assert_eq!(keys(), at_start + 1);
        });
    }

    #[test]
    fn without_a_document_a_failure_answers_at_once_for_a_while() {
        let stub = stub();
        stub.mode.store(FAIL, Ordering::SeqCst);
        let p = provider(&stub.issuer);
        block_on(async {
            assert!(matches!(
                p.discovered(&stub.issuer).await,
                Err(OidcError::Unavailable(_))
            ));
            assert!(matches!(
                p.discovered(&stub.issuer).await,
                Err(OidcError::Unavailable(_))
            ));
        });
        assert_eq!(stub.discoveries.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn an_answer_over_the_limit_is_refused_not_read_whole() {
        let stub = stub();
        stub.mode.store(HUGE, Ordering::SeqCst);
        let p = provider(&stub.issuer);
        let result = block_on(p.discovered(&stub.issuer));
        assert!(matches!(result, Err(OidcError::Unavailable(_))));
        assert_eq!(stub.discoveries.load(Ordering::SeqCst), 1);
        // The same provider, answering normally, is fine.
        stub.mode.store(SERVE, Ordering::SeqCst);
        *p.discovery.failed_at.write().expect("lock") = None;
        assert!(block_on(p.discovered(&stub.issuer)).is_ok());
    }
}
