//! The one error type every endpoint answers with, and its mapping to status and code.

use std::collections::BTreeMap;

use http::{HeaderValue, StatusCode};

/// Field name → problem, for validation errors.
pub type FieldErrors = BTreeMap<String, String>;

/// What a 401 for a route that accepts tokens says in `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The realm clients show (the site's name, reduced to safe characters).
    pub realm: String,
    pub basic: bool,
    /// A token was presented and refused (RFC 6750 `error="invalid_token"`).
    pub invalid_token: bool,
}

impl Challenge {
    pub fn new(title: &str, basic: bool, invalid_token: bool) -> Challenge {
        let realm: String = title
            .chars()
            .filter(|c| c.is_ascii_graphic() || *c == ' ')
            .filter(|c| *c != '"' && *c != '\\')
            .take(64)
            .collect();
        Challenge {
            realm: if realm.trim().is_empty() {
                "authgate".into()
            } else {
                realm.trim().to_string()
            },
            basic,
            invalid_token,
        }
    }

    /// The `WWW-Authenticate` value: Bearer first, then Basic where offered.
    pub fn header_values(&self) -> Vec<HeaderValue> {
        let realm = &self.realm;
        let mut bearer = format!("Bearer realm=\"{realm}\"");
        if self.invalid_token {
            bearer.push_str(
                ", error=\"invalid_token\", error_description=\"the token is unknown, expired or revoked\"",
            );
        }
        // One header with both challenges (RFC 9110 allows a list): nginx's auth_request
        // passes only the first WWW-Authenticate of a check on, and git or curl offer Basic
        // only when it is asked for.
        if self.basic {
            bearer.push_str(&format!(", Basic realm=\"{realm}\", charset=\"UTF-8\""));
        }
        HeaderValue::from_str(&bearer).into_iter().collect()
    }
}

/// Every client-visible outcome that is not a success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    Validation {
        message: String,
        fields: FieldErrors,
    },
    #[error("the token is invalid, used or expired")]
    InvalidToken,
    #[error("authentication required")]
    Unauthorized,
    /// No valid session, on a route that also accepts API tokens: the answer says how to
    /// authenticate (`WWW-Authenticate`).
    #[error("{}", if .0.invalid_token { "the API token is unknown, expired or revoked" } else { "authentication required: sign in, or present an API token" })]
    CredentialsRequired(Challenge),
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("{0}")]
    Forbidden(String),
    #[error("email address not verified")]
    EmailNotVerified,
    #[error("account awaiting approval")]
    AccountPending,
    #[error("account disabled")]
    AccountDisabled,
    #[error("registration is disabled")]
    RegistrationDisabled,
    #[error("an invite is required to register")]
    InviteRequired,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    #[error("setup has already been completed")]
    AlreadySetup,
    #[error("this gateway has no owner yet: set it up first")]
    SetupRequired,
    #[error("setup from another machine needs the setup code: it is in the gateway's log, or run `authgate setup-code` on its host")]
    SetupCodeRequired,
    #[error("this page needs two-step verification: verify with a second factor first")]
    SecondFactorRequired,
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("request headers too large or too many")]
    HeadersTooLarge,
    #[error("unsupported media type: send application/json")]
    UnsupportedMediaType,
    #[error("account temporarily locked after too many failed attempts")]
    AccountLocked { retry_after_secs: u64 },
    #[error("too many attempts, try again later")]
    RateLimited { retry_after_secs: u64 },
    #[error("service temporarily unavailable, try again shortly")]
    ServiceUnavailable { retry_after_secs: u64 },
    #[error("mail is not configured on this gateway")]
    SmtpNotConfigured,
    /// A sign-in provider refused, or its answer failed a check.
    #[error("{0}")]
    SignInRefused(String),
    /// A sign-in provider could not be reached or answered with a server error.
    #[error("{0}")]
    ProviderUnavailable(String),
    /// The upstream could not be reached or failed (proxied requests only).
    #[error("the upstream service is unavailable")]
    BadGateway,
    /// The upstream did not answer in time (proxied requests only).
    #[error("the upstream service did not answer in time")]
    GatewayTimeout,
    /// A bug or an unexpected failure; the detail is logged, never sent.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// A validation error about one field.
    pub fn field(name: &str, problem: impl Into<String>) -> Self {
        let mut fields = FieldErrors::new();
        fields.insert(name.to_string(), problem.into());
        ApiError::Validation {
            message: "validation failed".into(),
            fields,
        }
    }

    /// A validation error about the request as a whole (e.g. malformed JSON).
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::Validation {
            message: message.into(),
            fields: FieldErrors::new(),
        }
    }

    /// HTTP status for this outcome.
    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            Validation { .. } | InvalidToken => StatusCode::BAD_REQUEST,
            Unauthorized | CredentialsRequired(_) | InvalidCredentials | SignInRefused(_) => {
                StatusCode::UNAUTHORIZED
            }
            Forbidden(_) | EmailNotVerified | AccountPending | AccountDisabled
            | RegistrationDisabled | InviteRequired | SetupRequired | SetupCodeRequired
            | SecondFactorRequired => StatusCode::FORBIDDEN,
            NotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Conflict(_) | AlreadySetup => StatusCode::CONFLICT,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AccountLocked { .. } => StatusCode::LOCKED,
            RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ServiceUnavailable { .. } | SmtpNotConfigured | ProviderUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            BadGateway => StatusCode::BAD_GATEWAY,
            GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The machine-readable code of the JSON envelope.
    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            Validation { .. } => "VALIDATION_ERROR",
            InvalidToken => "INVALID_TOKEN",
            Unauthorized | CredentialsRequired(_) | SignInRefused(_) => "UNAUTHORIZED",
            InvalidCredentials => "INVALID_CREDENTIALS",
            Forbidden(_) => "FORBIDDEN",
            EmailNotVerified => "EMAIL_NOT_VERIFIED",
            AccountPending => "ACCOUNT_PENDING",
            AccountDisabled => "ACCOUNT_DISABLED",
            RegistrationDisabled => "REGISTRATION_DISABLED",
            InviteRequired => "INVITE_REQUIRED",
            NotFound => "NOT_FOUND",
            MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Conflict(_) => "CONFLICT",
            AlreadySetup => "ALREADY_SETUP",
            SetupRequired => "SETUP_REQUIRED",
            SetupCodeRequired => "SETUP_CODE_REQUIRED",
            SecondFactorRequired => "SECOND_FACTOR_REQUIRED",
            PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            HeadersTooLarge => "HEADERS_TOO_LARGE",
            UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            AccountLocked { .. } => "ACCOUNT_LOCKED",
            RateLimited { .. } => "RATE_LIMITED",
            ServiceUnavailable { .. } | ProviderUnavailable(_) => "SERVICE_UNAVAILABLE",
            SmtpNotConfigured => "SMTP_NOT_CONFIGURED",
            Internal(_) => "INTERNAL_ERROR",
            BadGateway => "BAD_GATEWAY",
            GatewayTimeout => "GATEWAY_TIMEOUT",
        }
    }

    /// Seconds for a `Retry-After` header, where the outcome has one.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::AccountLocked { retry_after_secs }
            | ApiError::RateLimited { retry_after_secs }
            | ApiError::ServiceUnavailable { retry_after_secs } => Some((*retry_after_secs).max(1)),
            ApiError::ProviderUnavailable(_) => Some(5),
            _ => None,
        }
    }

    /// The `WWW-Authenticate` values the answer carries.
    pub fn challenge(&self) -> Vec<HeaderValue> {
        match self {
            ApiError::CredentialsRequired(c) => c.header_values(),
            _ => Vec::new(),
        }
    }

    /// The message a client is shown. An internal error's detail is logged here, once, and
    /// never shown: every writer of an error (JSON, a page, a form's answer) goes through this.
    pub fn client_message(&self) -> String {
        match self {
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                "internal error".to_string()
            }
            other => other.to_string(),
        }
    }

    /// Field problems, for validation errors only.
    pub fn fields(&self) -> Option<&FieldErrors> {
        match self {
            ApiError::Validation { fields, .. } if !fields.is_empty() => Some(fields),
            _ => None,
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Unavailable(detail) => {
                tracing::error!(error = %detail, "storage failure");
                ApiError::ServiceUnavailable {
                    retry_after_secs: 5,
                }
            }
            crate::store::StoreError::Corrupt(detail) => ApiError::Internal(detail),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses_match_the_contract() {
        let cases: Vec<(ApiError, u16, &str)> = vec![
            (ApiError::invalid("x"), 400, "VALIDATION_ERROR"),
            (ApiError::InvalidToken, 400, "INVALID_TOKEN"),
            (ApiError::Unauthorized, 401, "UNAUTHORIZED"),
            (ApiError::InvalidCredentials, 401, "INVALID_CREDENTIALS"),
            (ApiError::Forbidden("x".into()), 403, "FORBIDDEN"),
            (ApiError::AccountPending, 403, "ACCOUNT_PENDING"),
            (ApiError::RegistrationDisabled, 403, "REGISTRATION_DISABLED"),
            (ApiError::AlreadySetup, 409, "ALREADY_SETUP"),
            (ApiError::SetupRequired, 403, "SETUP_REQUIRED"),
            (ApiError::SetupCodeRequired, 403, "SETUP_CODE_REQUIRED"),
            (ApiError::PayloadTooLarge, 413, "PAYLOAD_TOO_LARGE"),
            (
                ApiError::UnsupportedMediaType,
                415,
                "UNSUPPORTED_MEDIA_TYPE",
            ),
            (
                ApiError::AccountLocked {
                    retry_after_secs: 3,
                },
                423,
                "ACCOUNT_LOCKED",
            ),
            (
                ApiError::RateLimited {
                    retry_after_secs: 3,
                },
                429,
                "RATE_LIMITED",
            ),
            (
                ApiError::ServiceUnavailable {
                    retry_after_secs: 1,
                },
                503,
                "SERVICE_UNAVAILABLE",
            ),
            (
                ApiError::Internal("secret detail".into()),
                500,
                "INTERNAL_ERROR",
            ),
        ];
        for (err, status, code) in cases {
            assert_eq!(err.status().as_u16(), status, "{code}");
            assert_eq!(err.code(), code);
        }
        assert_eq!(
            ApiError::Internal("secret".into()).to_string(),
            "internal error"
        );
        assert_eq!(
            ApiError::AccountLocked {
                retry_after_secs: 0
            }
            .retry_after(),
            Some(1)
        );
    }

    #[test]
    fn challenges_name_the_realm_safely() {
        let shown = |c: Challenge| -> Vec<String> {
            c.header_values()
                .iter()
                .map(|v| v.to_str().unwrap_or("").to_string())
                .collect()
        };
        assert_eq!(
            shown(Challenge::new("Home \"Lab\"\\ é", true, false)),
            ["Bearer realm=\"Home Lab\", Basic realm=\"Home Lab\", charset=\"UTF-8\""]
        );
        assert_eq!(
            shown(Challenge::new("", false, true)),
            ["Bearer realm=\"authgate\", error=\"invalid_token\", error_description=\"the token is unknown, expired or revoked\""]
        );
    }
}
