//! `[[oidc]]`: sign-in providers (OpenID Connect with discovery, or plain OAuth2 with explicit
//! endpoints), with built-in presets for Google and GitHub.

use std::time::Duration;

use serde::Deserialize;

use super::model::PublicUrl;
use super::secrets::Secret;
use super::validate::Validator;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOidc {
    name: String,
    #[serde(default)]
    display_name: String,
    /// `google` or `github`; defaults to the name when that is one of them.
    #[serde(default)]
    preset: String,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    authorization_url: String,
    #[serde(default)]
    token_url: String,
    #[serde(default)]
    userinfo_url: String,
    /// GitHub-style list of a user's addresses (`[{email, primary, verified}]`).
    #[serde(default)]
    emails_url: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
    #[serde(default)]
    client_secret_file: String,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    allowed_domains: Vec<String>,
    #[serde(default)]
    default_groups: Vec<String>,
    #[serde(default = "yes")]
    auto_register: bool,
    #[serde(default)]
    link_by_email: bool,
    #[serde(default)]
    redirect_url: String,
    #[serde(default)]
    token_auth: Option<TokenAuth>,
    #[serde(default = "ten_seconds")]
    timeout: String,
    #[serde(default)]
    subject_claim: String,
    #[serde(default)]
    email_claim: String,
    #[serde(default)]
    name_claim: String,
    #[serde(default)]
    username_claim: String,
    #[serde(default)]
    check_hosted_domain: Option<bool>,
}

fn yes() -> bool {
    true
}
fn ten_seconds() -> String {
    "10s".into()
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TokenAuth {
    /// `client_secret_basic`: HTTP Basic authentication.
    Basic,
    /// `client_secret_post`: id and secret in the form body.
    Post,
}

/// Where a provider's endpoints come from.
// One per configured provider, read at start-up: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenID Connect: endpoints and keys from `{issuer}/.well-known/openid-configuration`;
    /// identities come from the verified ID token (and the userinfo endpoint for missing claims).
    Discovery {
        issuer: url::Url,
        /// The issuer exactly as written (the ID token's `iss` must equal it, trailing slash
        /// included: some providers have one).
        issuer_id: String,
    },
    /// Plain OAuth2 (no ID token): identities come from the userinfo endpoint.
    OAuth2 {
        authorization_url: url::Url,
        token_url: url::Url,
        userinfo_url: url::Url,
        emails_url: Option<url::Url>,
    },
}

/// Which userinfo / ID token claims hold what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    pub subject: String,
    pub email: String,
    pub name: String,
    pub username: String,
}

/// One validated `[[oidc]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcProviderConfig {
    /// Used in paths: `/auth/oauth/{name}`.
    pub name: String,
    pub display_name: String,
    pub kind: ProviderKind,
    pub client_id: String,
    pub client_secret: Secret,
    pub scopes: Vec<String>,
    /// Lower-case email domains; empty: any.
    pub allowed_domains: Vec<String>,
    pub default_groups: Vec<String>,
    pub auto_register: bool,
    pub link_by_email: bool,
    /// The callback URL registered with the provider.
    pub redirect_url: url::Url,
    pub token_auth: TokenAuth,
    /// Each request to the provider (connect included) gives up after this long.
    pub timeout: Duration,
    pub claims: ClaimNames,
    /// `allowed_domains` is also checked against the ID token's `hd` claim (Google: the
    /// Workspace organisation that manages the account, which an address alone does not show).
    /// On by default for Google's issuer, whatever the provider is called.
    pub hosted_domain: bool,
}

struct Preset {
    display_name: &'static str,
    issuer: Option<&'static str>,
    authorization_url: &'static str,
    token_url: &'static str,
    userinfo_url: &'static str,
    emails_url: &'static str,
    scopes: &'static [&'static str],
    token_auth: TokenAuth,
    subject: &'static str,
    username: &'static str,
}

fn preset(word: &str) -> Option<Preset> {
    match word {
        "google" => Some(Preset {
            display_name: "Google",
            issuer: Some("https://accounts.google.com"),
            authorization_url: "",
            token_url: "",
            userinfo_url: "",
            emails_url: "",
            scopes: &["openid", "email", "profile"],
            token_auth: TokenAuth::Basic,
            subject: "sub",
            username: "",
        }),
        "github" => Some(Preset {
            display_name: "GitHub",
            issuer: None,
            authorization_url: "https://github.com/login/oauth/authorize",
            token_url: "https://github.com/login/oauth/access_token",
            userinfo_url: "https://api.github.com/user",
            emails_url: "https://api.github.com/user/emails",
            scopes: &["read:user", "user:email"],
            token_auth: TokenAuth::Post,
            subject: "id",
            username: "login",
        }),
        _ => None,
    }
}

/// Whether a provider name can be used in paths.
fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric()
}

/// The environment variable that may hold a provider's client secret.
pub fn secret_env_name(name: &str) -> String {
    format!(
        "AUTHGATE_OIDC_{}_CLIENT_SECRET",
        name.to_ascii_uppercase().replace('-', "_")
    )
}

impl Validator {
    fn provider_url(&mut self, key: &str, text: &str) -> Option<url::Url> {
        match url::Url::parse(text.trim()) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
                if !u.username().is_empty() || u.password().is_some() {
                    self.problem(key, "must not contain credentials");
                    return None;
                }
                Some(u)
            }
            Ok(_) => {
                self.problem(key, format!("{text:?} is not an http(s) URL"));
                None
            }
            Err(e) => {
                self.problem(key, format!("{text:?} is not a URL: {e}"));
                None
            }
        }
    }

    pub(super) fn oidc(
        &mut self,
        raw: Vec<RawOidc>,
        public_url: &PublicUrl,
        prefix: &str,
    ) -> Vec<OidcProviderConfig> {
        let mut out: Vec<OidcProviderConfig> = Vec::new();
        for (i, r) in raw.into_iter().enumerate() {
            let at = |k: &str| format!("oidc[{i}].{k}");
            let name = r.name.trim().to_string();
            if !valid_name(&name) {
                self.problem(
                    &at("name"),
                    format!("{name:?} must be 1 to 32 of a-z, 0-9, '-', '_' (it is used in paths)"),
                );
                continue;
            }
            if out.iter().any(|p| p.name == name) {
                self.problem(
                    &at("name"),
                    format!("provider {name:?} is configured twice"),
                );
                continue;
            }
            let preset_word = if r.preset.is_empty() {
                name.as_str()
            } else {
                r.preset.as_str()
            };
            let preset = preset(preset_word);
            if preset.is_none() && !r.preset.is_empty() {
                self.problem(
                    &at("preset"),
                    format!("{:?} is not one of \"google\", \"github\"", r.preset),
                );
            }
            let explicit = !r.authorization_url.is_empty()
                || !r.token_url.is_empty()
                || !r.userinfo_url.is_empty();
            if !r.issuer.is_empty() && explicit {
                self.problem(
                    &at("issuer"),
                    "set either issuer (OpenID Connect discovery) or authorization_url, token_url and userinfo_url, not both",
                );
            }
            let kind = if !r.issuer.is_empty() {
                self.provider_url(&at("issuer"), &r.issuer)
                    .map(|issuer| ProviderKind::Discovery {
                        issuer,
                        issuer_id: r.issuer.trim().to_string(),
                    })
            } else if explicit {
                let a = self.provider_url(&at("authorization_url"), &r.authorization_url);
                let t = self.provider_url(&at("token_url"), &r.token_url);
                let u = self.provider_url(&at("userinfo_url"), &r.userinfo_url);
                let e = if r.emails_url.is_empty() {
                    None
                } else {
                    self.provider_url(&at("emails_url"), &r.emails_url)
                };
                match (a, t, u) {
                    (Some(authorization_url), Some(token_url), Some(userinfo_url)) => {
                        Some(ProviderKind::OAuth2 {
                            authorization_url,
                            token_url,
                            userinfo_url,
                            emails_url: e,
                        })
                    }
                    _ => None,
                }
            } else if let Some(p) = &preset {
                match p.issuer {
                    Some(issuer) => {
                        url::Url::parse(issuer)
                            .ok()
                            .map(|url| ProviderKind::Discovery {
                                issuer: url,
                                issuer_id: issuer.to_string(),
                            })
                    }
                    None => match (
                        url::Url::parse(p.authorization_url),
                        url::Url::parse(p.token_url),
                        url::Url::parse(p.userinfo_url),
                    ) {
                        (Ok(authorization_url), Ok(token_url), Ok(userinfo_url)) => {
                            Some(ProviderKind::OAuth2 {
                                authorization_url,
                                token_url,
                                userinfo_url,
                                emails_url: url::Url::parse(p.emails_url).ok(),
                            })
                        }
                        _ => None,
                    },
                }
            } else {
                self.problem(
                    &at("issuer"),
                    "needs issuer (OpenID Connect discovery) or authorization_url, token_url and userinfo_url",
                );
                None
            };
            if r.client_id.trim().is_empty() {
                self.problem(&at("client_id"), "must be set");
            }
            let env = secret_env_name(&name);
            let secret = self.secret(
                &at("client_secret"),
                &r.client_secret,
                &r.client_secret_file,
                &env,
            );
            if secret.is_none() {
                self.problem(
                    &at("client_secret"),
                    format!("must be set (inline, client_secret_file or {env})"),
                );
            }
            let discovery = matches!(kind, Some(ProviderKind::Discovery { .. }));
            let google = matches!(&kind, Some(ProviderKind::Discovery { issuer, .. })
                if issuer.host_str() == Some("accounts.google.com"));
            let hosted_domain = r.check_hosted_domain.unwrap_or(google);
            if hosted_domain && !discovery && kind.is_some() {
                self.problem(
                    &at("check_hosted_domain"),
                    "only for OpenID Connect providers (the hd claim is in the ID token)",
                );
            }
            if discovery {
                // An OpenID Connect identity is the ID token's `sub` and standard claims.
                for (key, given) in [
                    ("emails_url", &r.emails_url),
                    ("subject_claim", &r.subject_claim),
                    ("email_claim", &r.email_claim),
                    ("name_claim", &r.name_claim),
                    ("username_claim", &r.username_claim),
                ] {
                    if !given.trim().is_empty() {
                        self.problem(
                            &at(key),
                            "only for plain OAuth2 providers (authorization_url, token_url, userinfo_url); an OpenID Connect provider's identity comes from its ID token",
                        );
                    }
                }
            }
            let mut scopes: Vec<String> = match r.scopes {
                Some(s) => s.iter().map(|s| s.trim().to_string()).collect(),
                None => match &preset {
                    Some(p) => p.scopes.iter().map(|s| s.to_string()).collect(),
                    None if discovery => vec!["openid".into(), "email".into(), "profile".into()],
                    None => Vec::new(),
                },
            };
            if scopes.iter().any(|s| s.is_empty() || s.contains(' ')) {
                self.problem(
                    &at("scopes"),
                    "scopes must be non-empty words without spaces",
                );
            }
            if discovery && !scopes.iter().any(|s| s == "openid") {
                scopes.insert(0, "openid".into());
            }
            let mut allowed_domains = Vec::new();
            for (j, d) in r.allowed_domains.iter().enumerate() {
                let d = d
                    .trim()
                    .trim_start_matches('@')
                    .trim_end_matches('.')
                    .to_lowercase();
                // Addresses are stored with the domain in its IDNA ASCII form.
                let d = idna::domain_to_ascii(&d).unwrap_or(d);
                if d.is_empty()
                    || !d.contains('.')
                    || !d
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
                {
                    self.problem(
                        &format!("oidc[{i}].allowed_domains[{j}]"),
                        format!("{d:?} is not a domain name"),
                    );
                } else {
                    allowed_domains.push(d);
                }
            }
            let mut default_groups: Vec<String> = Vec::new();
            for (j, g) in r.default_groups.iter().enumerate() {
                match crate::store::group_name(g) {
                    Err(problem) => {
                        self.problem(&format!("oidc[{i}].default_groups[{j}]"), problem)
                    }
                    Ok(g) if !default_groups.contains(&g) => default_groups.push(g),
                    Ok(_) => {}
                }
            }
            let callback = format!("{prefix}/oauth/{name}/callback");
            let alias = format!("{prefix}/{name}/callback");
            let redirect_url = if r.redirect_url.is_empty() {
                url::Url::parse(&format!("{}{callback}", public_url.origin)).ok()
            } else {
                self.provider_url(&at("redirect_url"), &r.redirect_url)
                    .and_then(|u| {
                        let ok = u.path() == callback || (name == "google" && u.path() == alias);
                        if ok && u.query().is_none() && u.fragment().is_none() {
                            Some(u)
                        } else {
                            self.problem(
                                &at("redirect_url"),
                                format!("must end in the path {callback:?} (no query)"),
                            );
                            None
                        }
                    })
            };
            let claim = |given: &str, preset_value: Option<&str>, default: &str| -> String {
                if !given.trim().is_empty() {
                    given.trim().to_string()
                } else {
                    preset_value
                        .filter(|v| !v.is_empty())
                        .unwrap_or(default)
                        .to_string()
                }
            };
            let claims = ClaimNames {
                subject: claim(&r.subject_claim, preset.as_ref().map(|p| p.subject), "sub"),
                email: claim(&r.email_claim, None, "email"),
                name: claim(&r.name_claim, None, "name"),
                username: claim(
                    &r.username_claim,
                    preset.as_ref().map(|p| p.username),
                    "preferred_username",
                ),
            };
            let timeout = self.duration(&at("timeout"), &r.timeout);
            let display_name = if !r.display_name.trim().is_empty() {
                r.display_name.trim().chars().take(64).collect()
            } else if let Some(p) = &preset {
                p.display_name.to_string()
            } else {
                name.clone()
            };
            let (Some(kind), Some(client_secret), Some(redirect_url)) =
                (kind, secret, redirect_url)
            else {
                continue;
            };
            out.push(OidcProviderConfig {
                display_name,
                kind,
                client_id: r.client_id.trim().to_string(),
                client_secret,
                scopes,
                allowed_domains,
                default_groups,
                auto_register: r.auto_register,
                link_by_email: r.link_by_email,
                redirect_url,
                token_auth: r
                    .token_auth
                    .or(preset.as_ref().map(|p| p.token_auth))
                    .unwrap_or(TokenAuth::Basic),
                timeout,
                claims,
                hosted_domain,
                name,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ProviderKind, TokenAuth};

    fn problems(text: &str) -> Vec<String> {
        match Config::from_toml(text) {
            Ok(_) => Vec::new(),
            Err(e) => {
                e.0.iter()
                    .map(|p| format!("{}: {}", p.key, p.message))
                    .collect()
            }
        }
    }

    #[test]
    fn presets_fill_in_google_and_github() {
        let c = Config::from_toml(
            "[[oidc]]\nname = \"google\"\nclient_id = \"g\"\nclient_secret = \"s\"\n\
             [[oidc]]\nname = \"github\"\nclient_id = \"h\"\nclient_secret = \"t\"\nallowed_domains = [\"@Example.com\", \"Bücher.de\"]\n",
        )
        .expect("valid");
        let g = &c.oidc[0];
        assert_eq!(g.display_name, "Google");
        assert!(
            matches!(&g.kind, ProviderKind::Discovery { issuer_id, .. } if issuer_id == "https://accounts.google.com")
        );
        assert_eq!(g.scopes, ["openid", "email", "profile"]);
        assert_eq!(
            g.redirect_url.as_str(),
            "http://127.0.0.1:8080/auth/oauth/google/callback"
        );
        let h = &c.oidc[1];
        assert!(matches!(
            &h.kind,
            ProviderKind::OAuth2 {
                emails_url: Some(_),
                ..
            }
        ));
        assert_eq!(h.token_auth, TokenAuth::Post);
        assert_eq!(
            (h.claims.subject.as_str(), h.claims.username.as_str()),
            ("id", "login")
        );
        assert_eq!(h.allowed_domains, ["example.com", "xn--bcher-kva.de"]);
        assert!(h.auto_register && !h.link_by_email);
        assert!(g.hosted_domain && !h.hosted_domain);
        // Google's issuer under another name checks `hd` too; another issuer named google
        // does not, unless asked; plain OAuth2 cannot.
        let c = Config::from_toml(
            "[[oidc]]\nname = \"workspace\"\nissuer = \"https://accounts.google.com\"\nclient_id = \"g\"\nclient_secret = \"s\"\n\
             [[oidc]]\nname = \"google\"\nissuer = \"https://id.example.com\"\nclient_id = \"g\"\nclient_secret = \"s\"\n\
             [[oidc]]\nname = \"corp\"\nissuer = \"https://id.example.com\"\nclient_id = \"g\"\nclient_secret = \"s\"\ncheck_hosted_domain = true\n",
        )
        .expect("valid");
        let checks: Vec<bool> = c.oidc.iter().map(|p| p.hosted_domain).collect();
        assert_eq!(checks, [true, false, true]);
        let p = problems(
            "[[oidc]]\nname = \"github\"\nclient_id = \"x\"\nclient_secret = \"y\"\ncheck_hosted_domain = true\n",
        );
        assert!(
            p.iter()
                .any(|m| m.starts_with("oidc[0].check_hosted_domain")),
            "{p:?}"
        );
    }

    #[test]
    fn generic_providers_need_endpoints_a_secret_and_a_path_safe_name() {
        let p = problems("[[oidc]]\nname = \"Corp SSO\"\nclient_id = \"x\"\n");
        assert!(p.iter().any(|m| m.starts_with("oidc[0].name")), "{p:?}");
        let p = problems("[[oidc]]\nname = \"corp\"\nclient_id = \"x\"\nclient_secret = \"y\"\n");
        assert!(p.iter().any(|m| m.starts_with("oidc[0].issuer")), "{p:?}");
        let p = problems("[[oidc]]\nname = \"corp\"\nissuer = \"https://id.example.com\"\n");
        assert!(
            p.iter().any(|m| m.starts_with("oidc[0].client_id")),
            "{p:?}"
        );
        assert!(
            p.iter().any(|m| m.starts_with("oidc[0].client_secret")),
            "{p:?}"
        );
        let p = problems(
            "[[oidc]]\nname = \"corp\"\nissuer = \"https://id.example.com\"\nclient_id = \"x\"\nclient_secret = \"y\"\n\
             token_url = \"https://id.example.com/token\"\n",
        );
        assert!(p.iter().any(|m| m.contains("not both")), "{p:?}");
        let p = problems(
            "[[oidc]]\nname = \"corp\"\nissuer = \"https://id.example.com\"\nclient_id = \"x\"\nclient_secret = \"y\"\n\
             redirect_url = \"https://gw.example.com/elsewhere\"\n",
        );
        assert!(
            p.iter().any(|m| m.starts_with("oidc[0].redirect_url")),
            "{p:?}"
        );
        let p = problems(
            "[[oidc]]\nname = \"a\"\nissuer = \"https://id.example.com\"\nclient_id = \"x\"\nclient_secret = \"y\"\n\
             [[oidc]]\nname = \"a\"\nissuer = \"https://id.example.com\"\nclient_id = \"x\"\nclient_secret = \"y\"\n",
        );
        assert!(p.iter().any(|m| m.contains("configured twice")), "{p:?}");
        // Claim names and an emails URL mean nothing for an OpenID Connect provider.
        let p = problems(
            "[[oidc]]\nname = \"google\"\nclient_id = \"x\"\nclient_secret = \"y\"\nemail_claim = \"mail\"\n\
             [[oidc]]\nname = \"corp\"\nissuer = \"https://id.example.com\"\nclient_id = \"x\"\nclient_secret = \"y\"\n\
             subject_claim = \"oid\"\nemails_url = \"https://id.example.com/emails\"\n",
        );
        for key in [
            "oidc[0].email_claim",
            "oidc[1].subject_claim",
            "oidc[1].emails_url",
        ] {
            assert!(p.iter().any(|m| m.starts_with(key)), "{key}: {p:?}");
        }
        assert!(problems(
            "[[oidc]]\nname = \"github\"\nclient_id = \"x\"\nclient_secret = \"y\"\nusername_claim = \"name\"\n"
        )
        .is_empty());
        let c = Config::from_toml(
            "[[oidc]]\nname = \"corp\"\nissuer = \"https://id.example.com\"\nclient_id = \"x\"\nclient_secret = \"y\"\nscopes = [\"email\"]\n",
        )
        .expect("valid");
        assert_eq!(c.oidc[0].scopes, ["openid", "email"]);
        assert!(!format!("{:?}", c.oidc[0]).contains("\"y\""));
    }

    #[test]
    fn native_signin_off_needs_a_provider() {
        let p = problems("[auth]\nnative_signin = false\n");
        assert!(
            p.iter().any(|m| m.starts_with("auth.native_signin")),
            "{p:?}"
        );
        assert!(problems(
            "[auth]\nnative_signin = false\n[[oidc]]\nname = \"google\"\nclient_id = \"g\"\nclient_secret = \"s\"\n"
        )
        .is_empty());
    }
}
