//! Logging to stderr with `tracing`: human-readable or JSON. `RUST_LOG` overrides the level.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Install the global subscriber (also receives Pingora's `log` records). Safe to call twice.
pub fn init(format: LogFormat, level: &str) {
    // Pingora's connection pool logs an error whenever it loses a race for a pooled upstream
    // connection (about one reuse in a few hundred under load); the request simply opens a
    // new connection, so that line is noise. RUST_LOG or an explicit directive overrides this.
    let with_defaults = if level.contains("pingora_core::connectors") {
        level.to_string()
    } else {
        format!("{level},pingora_core::connectors=off")
    };
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&with_defaults))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Human => builder.try_init(),
    };
}
