//! Authentication building blocks: passwords, session tokens, the cookie, lockout, rate limits,
//! mail throttling and the setup code.

pub mod cookie;
pub mod csrf;
pub mod lockout;
pub mod mail_throttle;
pub mod password;
pub mod ratelimit;
pub mod redirect;
pub mod session;
pub mod session_cache;
pub mod setup_code;
