//! authgate: an authentication gateway on Pingora and redb.
//!
//! A request travels: listener ([`server`]) → [`proxy`] decides (local API, or upstream after
//! the session check and the route's [`policy`]) → [`api`] handler or upstream → one response
//! writer.

pub mod access;
#[cfg(feature = "count-allocations")]
pub mod alloc_count;
pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
pub mod ext_authz;
pub mod logging;
pub mod mail;
pub mod metrics;
pub mod net;
pub mod oidc;
pub mod pages;
pub mod policy;
pub mod proxy;
pub mod server;
pub mod service_manager;
pub mod store;
pub mod tls;
pub mod trust;

#[cfg(test)]
mod layout;
