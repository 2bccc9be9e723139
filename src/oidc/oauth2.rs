//! Plain OAuth2 providers such as GitHub: no ID token, so the identity is read from the
//! userinfo endpoint with the access token the code was exchanged for, and the address from
//! the emails endpoint where the provider has one.

use ::oauth2::basic::BasicClient;
use openidconnect::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, Scope, TokenUrl,
};
use serde_json::Value;

use super::{
    fetch, refused, token_error, unavailable, Authorization, ExternalIdentity, OidcError, Provider,
};

impl Provider {
    /// The provider URL to send a browser to, with a fresh `state` and PKCE verifier (no nonce:
    /// there is no ID token to carry one).
    pub(super) fn authorize_oauth2(
        &self,
        authorization_url: &url::Url,
    ) -> Result<Authorization, OidcError> {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let client = BasicClient::new(ClientId::new(self.config.client_id.clone()))
            .set_auth_uri(AuthUrl::from_url(authorization_url.clone()))
            .set_redirect_uri(self.redirect_url()?);
        let (url, state) = client
            .authorize_url(CsrfToken::new_random)
            .add_scopes(self.config.scopes.iter().map(|s| Scope::new(s.clone())))
            .set_pkce_challenge(challenge)
            .url();
        Ok(Authorization {
            url,
            state: state.secret().clone(),
            nonce: String::new(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Redeem the code, then read who signed in from the userinfo (and emails) endpoint.
    pub(super) async fn finish_oauth2(
        &self,
        token_url: &url::Url,
        userinfo_url: &url::Url,
        emails_url: Option<&url::Url>,
        code: String,
        verifier: String,
    ) -> Result<ExternalIdentity, OidcError> {
        let cfg = &self.config;
        let name = cfg.name.as_str();
        let client = BasicClient::new(ClientId::new(cfg.client_id.clone()))
            .set_client_secret(ClientSecret::new(cfg.client_secret.0.clone()))
            .set_token_uri(TokenUrl::from_url(token_url.clone()))
            .set_redirect_uri(self.redirect_url()?)
            .set_auth_type(self.auth_type());
        let response = client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| token_error(name, e))?;
        let token = response.access_token().secret().clone();
        let info = self.get_json(userinfo_url, &token).await?;
        let claim = |key: &str| -> Option<String> {
            match info.get(key)? {
                Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        };
        let subject = claim(&cfg.claims.subject).ok_or_else(|| {
            refused(
                name,
                "the userinfo answer has no subject",
                format!("claim {:?} missing", cfg.claims.subject),
            )
        })?;
        let mut email = claim(&cfg.claims.email).map(|e| e.to_lowercase());
        let mut verified = match info.get("email_verified") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true",
            _ => false,
        };
        if let Some(url) = emails_url {
            // GitHub style: [{"email", "primary", "verified"}]; the primary verified address wins.
            let list = self.get_json(url, &token).await?;
            let entries: Vec<(String, bool, bool)> = list
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|e| {
                            Some((
                                e.get("email")?.as_str()?.trim().to_lowercase(),
                                e.get("primary").and_then(Value::as_bool).unwrap_or(false),
                                e.get("verified").and_then(Value::as_bool).unwrap_or(false),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            if let Some((e, _, _)) = entries.iter().find(|(_, primary, v)| *primary && *v) {
                email = Some(e.clone());
                verified = true;
            } else if let Some(current) = &email {
                verified = entries.iter().any(|(e, _, v)| e == current && *v);
            }
        }
        Ok(ExternalIdentity {
            provider: cfg.name.clone(),
            subject,
            email,
            email_verified: verified,
            name: claim(&cfg.claims.name),
            username: claim(&cfg.claims.username),
            hosted_domain: None,
        })
    }

    /// GET a JSON document with the access token, bounded in size.
    async fn get_json(&self, url: &url::Url, token: &str) -> Result<Value, OidcError> {
        let name = self.config.name.as_str();
        let mut response = self
            .http
            .client()
            .get(url.clone())
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| unavailable(name, "userinfo request failed", e))?;
        let status = response.status();
        if status.is_server_error() {
            return Err(unavailable(name, "userinfo request failed", status));
        }
        if !status.is_success() {
            return Err(refused(name, "the userinfo request was refused", status));
        }
        let body = fetch::read_body(&mut response)
            .await
            .map_err(|e| unavailable(name, "userinfo request failed", e))?
            .ok_or_else(|| {
                refused(
                    name,
                    "the userinfo answer is too large",
                    format!("over {} bytes", fetch::MAX_BODY),
                )
            })?;
        serde_json::from_slice(&body)
            .map_err(|e| refused(name, "the userinfo answer is not JSON", e))
    }
}
