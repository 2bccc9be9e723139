//! Sign-in with outside providers: the authorization code flow with PKCE against OpenID Connect
//! providers (discovery, ID token checked against the provider's keys) and plain OAuth2
//! providers (identity from the userinfo endpoint).
//!
//! Every request to a provider runs on a small runtime of its own, never on the threads that
//! proxy traffic, with a timeout per request. This module knows nothing of users or sessions:
//! it turns a callback into a verified [`ExternalIdentity`]; the API decides what it means.
//!
//! Here: the configured providers ([`Oidc`], [`Provider`]), their runtime, what a sign-in gives
//! back or why it failed, and the two entry points the API calls, [`Oidc::authorize`] and
//! [`Oidc::finish`], which pick the flow for the provider's kind. The flows themselves live in
//! `code_flow` (OpenID Connect) and `oauth2` (plain OAuth2), discovery documents and keys in
//! `discovery`, the HTTP client in `fetch`, and sign-ins awaiting their callback in [`flows`].

mod code_flow;
mod discovery;
mod fetch;
pub mod flows;
mod oauth2;

use std::sync::Arc;
use std::time::Duration;

use openidconnect::{AuthType, RedirectUrl, RequestTokenError};

use crate::config::{OidcProviderConfig, ProviderKind, TokenAuth};
use discovery::DiscoveryCache;
use fetch::ProviderHttp;
use flows::Flows;

/// Sign-ins in progress kept at most, and how long one may take.
const MAX_FLOWS: usize = 10_000;
/// Sign-ins one client (IPv4 address or IPv6 /64) may have in progress at once.
const FLOWS_PER_CLIENT: usize = 32;
const FLOW_TTL: Duration = Duration::from_secs(600);

/// Who the provider says signed in, after every check passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalIdentity {
    pub provider: String,
    /// The provider's stable id for the person (`sub`, or the configured claim).
    pub subject: String,
    /// Lower-cased.
    pub email: Option<String>,
    /// The provider vouches for the address.
    pub email_verified: bool,
    pub name: Option<String>,
    pub username: Option<String>,
    /// Google's `hd`: the Workspace domain that manages the account (lower-cased), if any.
    pub hosted_domain: Option<String>,
}

/// Why a sign-in at a provider did not produce an identity.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The provider could not be reached, timed out, or answered with a server error.
    #[error("{0}")]
    Unavailable(String),
    /// The provider refused, or its answer failed a check (state, code, signature, issuer,
    /// audience, expiry, nonce). The message is safe to show; details are logged.
    #[error("{0}")]
    Refused(String),
}

/// Everything needed to send a browser to the provider.
pub struct Authorization {
    pub url: url::Url,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// One configured provider with what was learnt about it.
pub struct Provider {
    pub config: OidcProviderConfig,
    http: ProviderHttp,
    discovery: DiscoveryCache,
}

/// The configured providers, the flows in progress, and the runtime their requests run on.
pub struct Oidc {
    providers: Vec<Arc<Provider>>,
    pub flows: Flows,
    runtime: Option<tokio::runtime::Handle>,
}

impl Oidc {
    /// Set up the providers; starts the provider runtime only when there is one.
    pub fn new(configs: &[OidcProviderConfig]) -> Result<Oidc, String> {
        let providers = configs
            .iter()
            .map(|c| Provider::new(c).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let runtime = if providers.is_empty() {
            None
        } else {
            Some(start_runtime()?)
        };
        Ok(Oidc {
            providers,
            flows: Flows::new(MAX_FLOWS, FLOWS_PER_CLIENT, FLOW_TTL),
            runtime,
        })
    }

    /// The providers in file order.
    pub fn providers(&self) -> &[Arc<Provider>] {
        &self.providers
    }

    /// A provider by name.
    pub fn provider(&self, name: &str) -> Option<&Arc<Provider>> {
        self.providers.iter().find(|p| p.config.name == name)
    }

    /// Run a provider request on the provider runtime.
    async fn run<T: Send + 'static>(
        &self,
        job: impl std::future::Future<Output = Result<T, OidcError>> + Send + 'static,
    ) -> Result<T, OidcError> {
        let Some(rt) = &self.runtime else {
            return Err(OidcError::Unavailable("no provider is configured".into()));
        };
        rt.spawn(job).await.map_err(|e| {
            // (A panic's message stays in the log.)
            tracing::error!(error = %e, "provider task failed");
            OidcError::Unavailable(
                "the sign-in could not be completed; try again in a moment".into(),
            )
        })?
    }

    /// The provider URL to send a browser to, with fresh `state`, `nonce` and PKCE verifier.
    pub async fn authorize(&self, provider: &Arc<Provider>) -> Result<Authorization, OidcError> {
        let p = Arc::clone(provider);
        self.run(async move { p.authorize().await }).await
    }

    /// Redeem the code of a callback and verify what comes back.
    pub async fn finish(
        &self,
        provider: &Arc<Provider>,
        code: String,
        nonce: String,
        pkce_verifier: String,
    ) -> Result<ExternalIdentity, OidcError> {
        let p = Arc::clone(provider);
        self.run(async move { p.finish(code, nonce, pkce_verifier).await })
            .await
    }
}

/// A runtime of its own for provider requests, on one thread that lives as long as the process.
fn start_runtime() -> Result<tokio::runtime::Handle, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("authgate-oidc")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the provider runtime: {e}"))?;
    let handle = rt.handle().clone();
    std::thread::Builder::new()
        .name("authgate-oidc-main".into())
        .spawn(move || rt.block_on(std::future::pending::<()>()))
        .map_err(|e| format!("cannot start the provider runtime: {e}"))?;
    Ok(handle)
}

fn unavailable(provider: &str, what: &str, e: impl std::fmt::Display) -> OidcError {
    tracing::warn!(provider, error = %e, "{what}");
    OidcError::Unavailable(format!(
        "cannot reach the sign-in provider right now ({what}); try again in a moment"
    ))
}

fn refused(provider: &str, what: &str, e: impl std::fmt::Display) -> OidcError {
    tracing::warn!(provider, error = %e, "sign-in refused: {what}");
    OidcError::Refused(format!("the sign-in provider's answer was refused: {what}"))
}

/// An error with its sources, for the log.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut detail = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        detail.push_str(&format!(": {s}"));
        source = s.source();
    }
    detail
}

/// Classify a failed token request.
fn token_error<RE: std::error::Error + 'static, T: openidconnect::ErrorResponse + 'static>(
    provider: &str,
    e: RequestTokenError<RE, T>,
) -> OidcError {
    match e {
        RequestTokenError::ServerResponse(r) => refused(provider, "the code was not accepted", r),
        RequestTokenError::Request(r) => {
            unavailable(provider, "token request failed", error_chain(&r))
        }
        RequestTokenError::Parse(p, _) => refused(provider, "unreadable token response", p),
        RequestTokenError::Other(o) => refused(provider, "unexpected token response", o),
    }
}

impl Provider {
    fn new(c: &OidcProviderConfig) -> Result<Provider, String> {
        let urls: Vec<&url::Url> = match &c.kind {
            ProviderKind::Discovery { issuer, .. } => vec![issuer],
            ProviderKind::OAuth2 {
                authorization_url,
                token_url,
                userinfo_url,
                ..
            } => vec![authorization_url, token_url, userinfo_url],
        };
        for u in urls {
            let loopback = match u.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                Some(url::Host::Domain(d)) => d == "localhost",
                None => false,
            };
            if u.scheme() == "http" && !loopback {
                tracing::warn!(provider = %c.name, url = %u, "this provider is reached over plain HTTP: its client secret and tokens cross the network unencrypted");
            }
        }
        let http = ProviderHttp::new(c.timeout)
            .map_err(|e| format!("provider {}: HTTP client: {e}", c.name))?;
        Ok(Provider {
            config: c.clone(),
            http,
            discovery: DiscoveryCache::new(),
        })
    }

    fn redirect_url(&self) -> Result<RedirectUrl, OidcError> {
        RedirectUrl::new(self.config.redirect_url.to_string())
            .map_err(|e| OidcError::Unavailable(format!("bad redirect_url: {e}")))
    }

    fn auth_type(&self) -> AuthType {
        match self.config.token_auth {
            TokenAuth::Basic => AuthType::BasicAuth,
            TokenAuth::Post => AuthType::RequestBody,
        }
    }

    /// Start a sign-in with the flow of this provider's kind.
    async fn authorize(&self) -> Result<Authorization, OidcError> {
        match &self.config.kind {
            ProviderKind::Discovery { issuer_id, .. } => self.authorize_oidc(issuer_id).await,
            ProviderKind::OAuth2 {
                authorization_url, ..
            } => self.authorize_oauth2(authorization_url),
        }
    }

    /// Finish a sign-in with the flow of this provider's kind.
    async fn finish(
        &self,
        code: String,
        nonce: String,
        verifier: String,
    ) -> Result<ExternalIdentity, OidcError> {
        match &self.config.kind {
            ProviderKind::Discovery { issuer_id, .. } => {
                let issuer = issuer_id.clone();
                self.finish_oidc(&issuer, code, nonce, verifier).await
            }
            ProviderKind::OAuth2 {
                token_url,
                userinfo_url,
                emails_url,
                ..
            } => {
                let (token_url, userinfo_url, emails_url) =
                    (token_url.clone(), userinfo_url.clone(), emails_url.clone());
                self.finish_oauth2(
                    &token_url,
                    &userinfo_url,
                    emails_url.as_ref(),
                    code,
                    verifier,
                )
                .await
            }
        }
    }
}
