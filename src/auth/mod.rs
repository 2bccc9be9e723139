//! The sign-in core: the one [`authenticator::Authenticator`] (credentials → principal), the
//! one sign-in policy ([`signin`]), passwords, passkeys, session tokens, the cookie, lockout and
//! limits, the setup code.

pub mod api_token;
pub mod authenticator;
pub mod cookie;
pub mod csrf;
pub mod limits;
pub mod passkey;
pub mod password;
pub mod redirect;
pub mod sealing;
pub mod second_factor;
pub mod session;
pub mod session_cache;
pub mod setup_code;
pub mod signin;
pub mod totp;
