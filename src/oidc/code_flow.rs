//! The OpenID Connect authorization code flow: the authorization URL with PKCE, `state` and
//! `nonce`; the code exchanged for tokens; the ID token checked against the provider's keys
//! (refetched once for an unknown key id), its `at_hash` against the access token; and claims
//! the ID token lacks filled in from the userinfo endpoint.

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreUserInfoClaims};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, Scope,
    SignatureVerificationError, TokenResponse,
};
use serde_json::Value;

use super::discovery::Discovered;
use super::{
    refused, token_error, unavailable, Authorization, ExternalIdentity, OidcError, Provider,
};

impl Provider {
    /// The scopes to ask for besides `openid`, which the library always adds.
    fn scopes(&self) -> impl Iterator<Item = Scope> + '_ {
        self.config
            .scopes
            .iter()
            .filter(|s| s.as_str() != "openid")
            .map(|s| Scope::new(s.clone()))
    }

    /// The provider URL to send a browser to, with fresh `state`, `nonce` and PKCE verifier.
    pub(super) async fn authorize_oidc(&self, issuer: &str) -> Result<Authorization, OidcError> {
        let cfg = &self.config;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let d = self.discovered(issuer).await?;
        let client = CoreClient::from_provider_metadata(
            d.metadata,
            ClientId::new(cfg.client_id.clone()),
            Some(ClientSecret::new(cfg.client_secret.0.clone())),
        )
        .set_redirect_uri(self.redirect_url()?);
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scopes(self.scopes())
            .set_pkce_challenge(challenge)
            .url();
        Ok(Authorization {
            url,
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Redeem the code and check the ID token that comes back: signature, issuer, audience,
    /// expiry, nonce and the access token's hash.
    pub(super) async fn finish_oidc(
        &self,
        issuer: &str,
        code: String,
        nonce: String,
        verifier: String,
    ) -> Result<ExternalIdentity, OidcError> {
        let cfg = &self.config;
        let name = cfg.name.as_str();
        let mut d = self.discovered(issuer).await?;
        let client_for = |d: &Discovered| -> Result<_, OidcError> {
            Ok(CoreClient::from_provider_metadata(
                d.metadata.clone(),
                ClientId::new(cfg.client_id.clone()),
                Some(ClientSecret::new(cfg.client_secret.0.clone())),
            )
            .set_redirect_uri(self.redirect_url()?)
            .set_auth_type(self.auth_type()))
        };
        let client = client_for(&d)?;
        let response = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| unavailable(name, "the provider has no token endpoint", e))?
            .set_pkce_verifier(PkceCodeVerifier::new(verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| token_error(name, e))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| refused(name, "no ID token", "the token response has no id_token"))?;
        let nonce = Nonce::new(nonce);
        let mut client = client;
        let claims = loop {
            let checked = {
                let verifier = client.id_token_verifier();
                id_token.claims(&verifier, &nonce).cloned()
            };
            match checked {
                Ok(c) => break c,
                Err(ClaimsVerificationError::SignatureVerification(
                    SignatureVerificationError::NoMatchingKey,
                )) => match self.refresh_keys(&d).await? {
                    Some(fresh) => {
                        d = fresh;
                        client = client_for(&d)?;
                    }
                    None => {
                        return Err(refused(
                            name,
                            "the ID token is signed with an unknown key",
                            "no matching key after refresh",
                        ))
                    }
                },
                Err(e) => {
                    let what = match &e {
                        ClaimsVerificationError::InvalidAudience(_) => {
                            "the ID token is for another client"
                        }
                        ClaimsVerificationError::InvalidIssuer(_) => {
                            "the ID token is from another issuer"
                        }
                        ClaimsVerificationError::InvalidNonce(_) => {
                            "the ID token's nonce does not match"
                        }
                        ClaimsVerificationError::Expired(_) => "the ID token has expired",
                        ClaimsVerificationError::SignatureVerification(_) => {
                            "the ID token's signature is invalid"
                        }
                        _ => "the ID token is invalid",
                    };
                    return Err(refused(name, what, e));
                }
            }
        };
        // The access token must be the one the ID token was issued with.
        if let Some(expected) = claims.access_token_hash() {
            let verifier = client.id_token_verifier();
            let alg = id_token
                .signing_alg()
                .map_err(|e| refused(name, "the ID token's algorithm is unusable", e))?;
            let key = id_token
                .signing_key(&verifier)
                .map_err(|e| refused(name, "the ID token's key is unusable", e))?;
            let actual = AccessTokenHash::from_token(response.access_token(), alg, key)
                .map_err(|e| refused(name, "the access token hash cannot be checked", e))?;
            if actual != *expected {
                return Err(refused(
                    name,
                    "the access token does not belong to the ID token",
                    "at_hash mismatch",
                ));
            }
        }
        let mut identity = ExternalIdentity {
            provider: cfg.name.clone(),
            subject: claims.subject().as_str().to_string(),
            email: claims.email().map(|e| e.as_str().trim().to_lowercase()),
            email_verified: claims.email_verified().unwrap_or(false),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_string()),
            username: claims.preferred_username().map(|u| u.as_str().to_string()),
            hosted_domain: unmodelled_claim(&id_token.to_string(), "hd"),
        };
        if identity.email.is_none() && client.user_info_url().is_some() {
            // Some providers put the address in the userinfo answer only.
            let info: CoreUserInfoClaims = client
                .user_info(
                    response.access_token().clone(),
                    Some(claims.subject().clone()),
                )
                .map_err(|e| unavailable(name, "userinfo", e))?
                .request_async(&self.http)
                .await
                .map_err(|e| match e {
                    openidconnect::UserInfoError::Request(r) => {
                        unavailable(name, "userinfo request failed", r)
                    }
                    other => refused(name, "the userinfo answer was refused", other),
                })?;
            identity.email = info.email().map(|e| e.as_str().trim().to_lowercase());
            identity.email_verified = info.email_verified().unwrap_or(false);
            if identity.name.is_none() {
                identity.name = info
                    .name()
                    .and_then(|n| n.get(None))
                    .map(|n| n.as_str().to_string());
            }
            if identity.username.is_none() {
                identity.username = info.preferred_username().map(|u| u.as_str().to_string());
            }
        }
        Ok(identity)
    }
}

/// A string claim the library does not model (Google's `hd`), lower-cased, read from the
/// payload of an ID token whose signature and claims were already verified.
fn unmodelled_claim(jwt: &str, name: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let value = claims.get(name)?.as_str()?.trim().to_lowercase();
    (!value.is_empty()).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmodelled_claims_are_read_from_the_payload() {
        use base64::Engine as _;
        let enc = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let jwt = format!(
            "{}.{}.sig",
            enc(r#"{"alg":"RS256"}"#),
            enc(r#"{"sub":"1","hd":"Corp.Example","n":3}"#)
        );
        assert_eq!(
            unmodelled_claim(&jwt, "hd").as_deref(),
            Some("corp.example")
        );
        assert_eq!(unmodelled_claim(&jwt, "n"), None);
        assert_eq!(unmodelled_claim(&jwt, "missing"), None);
        assert_eq!(unmodelled_claim("not-a-jwt", "hd"), None);
        assert_eq!(unmodelled_claim("a.!!!.c", "hd"), None);
    }
}
