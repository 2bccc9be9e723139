#![allow(clippy::unwrap_used, clippy::expect_used)]
//! One integration-test binary (one link step): each module covers an area against the real
//! `authgate` binary on an ephemeral loopback port.

mod accounts;
mod beside;
mod browser;
mod confusion;
mod crash;
mod database_tls;
mod durability;
mod escalation;
mod fixtures;
mod forward_auth;
mod hostile;
mod lifecycle;
mod limits;
mod lookalikes;
mod mail;
mod mail_limits;
mod migrate_store;
mod oidc;
mod operations;
mod pages;
mod portal;
mod postgres_fixture;
mod proxying;
mod second_factor;
mod several;
mod support;
mod token_pages;
mod tokens;
mod tokens_git;
mod tokens_ops;
