//! The `authgate` command: wires the CLI to the library.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use authgate::config::{Config, DEFAULT_PATHS};

/// The configuration shipped with authgate, used when no file is found.
const EMBEDDED_CONFIG: &str = include_str!("../config.toml");

#[derive(Parser)]
#[command(
    name = "authgate",
    version,
    about = "Authentication gateway: login in front of web apps"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Args)]
struct ConfigArg {
    /// Config file (default: $AUTHGATE_CONFIG, ./config.toml, /etc/authgate/config.toml, then the built-in one)
    #[arg(long, short, env = "AUTHGATE_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the default)
    Serve(ConfigArg),
    /// Validate the config file, print every problem with its key; exit 1 on error
    CheckConfig(ConfigArg),
    /// Print an argon2id PHC string for a password read from stdin
    HashPassword {
        /// Read the password from standard input (required: never pass it as an argument)
        #[arg(long)]
        password_stdin: bool,
    },
}

/// Where the configuration comes from.
enum Source {
    File(PathBuf),
    Embedded,
}

fn locate(arg: &ConfigArg) -> Source {
    if let Some(p) = &arg.config {
        return Source::File(p.clone());
    }
    DEFAULT_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .map(Source::File)
        .unwrap_or(Source::Embedded)
}

fn load(arg: &ConfigArg) -> Result<(Config, String), String> {
    match locate(arg) {
        Source::File(p) => Config::load(&p)
            .map(|c| (c, p.display().to_string()))
            .map_err(|e| format!("{}:\n{e}", p.display())),
        Source::Embedded => Config::from_toml(EMBEDDED_CONFIG)
            .map(|c| (c, "(built-in default)".to_string()))
            .map_err(|e| format!("(built-in default):\n{e}")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli
        .command
        .unwrap_or(Command::Serve(ConfigArg { config: None }))
    {
        Command::Serve(arg) => {
            let (config, source) = match load(&arg) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("authgate: invalid configuration in {e}");
                    return ExitCode::from(1);
                }
            };
            authgate::logging::init(config.log.format, &config.log.level);
            tracing::info!(config = %source, "configuration loaded");
            match authgate::server::run(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    eprintln!("authgate: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::CheckConfig(arg) => match load(&arg) {
            Ok((_, source)) => {
                println!("{source}: configuration is valid");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        },
        Command::HashPassword { password_stdin } => {
            if !password_stdin {
                eprintln!(
                    "authgate: pass --password-stdin and write the password to standard input"
                );
                return ExitCode::from(2);
            }
            let mut input = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut input) {
                eprintln!("authgate: cannot read standard input: {e}");
                return ExitCode::from(1);
            }
            let password = input.strip_suffix('\n').unwrap_or(&input);
            let password = password.strip_suffix('\r').unwrap_or(password);
            match authgate::auth::password::hash_blocking(password) {
                Ok(h) => {
                    println!("{h}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("authgate: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}
