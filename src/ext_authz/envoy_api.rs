//! Envoy's external authorization messages, generated from `proto/` by `build.rs`.
#![allow(clippy::all, clippy::pedantic, missing_docs, rustdoc::all)]

include!(concat!(env!("OUT_DIR"), "/envoy_api.rs"));
