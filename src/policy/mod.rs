//! Who may reach what, without Pingora: path normalisation, hosts, the route model with its
//! matching and access decision, and the plan of headers an upstream receives.

pub mod headers;
pub mod host;
pub mod path;
pub mod routes;
