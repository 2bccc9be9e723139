//! The `authgate` command: wires the CLI to the library.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use authgate::cli;
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
    /// Manage users in the database (works while the server is stopped)
    #[command(subcommand)]
    User(UserCommand),
    /// Manage invites
    #[command(subcommand)]
    Invite(InviteCommand),
    /// Manage API tokens
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage service accounts (accounts for machines, reached only through API tokens)
    #[command(subcommand, name = "service-account")]
    ServiceAccount(ServiceAccountCommand),
    /// Rewrite the redb file without its free space (while the server is stopped)
    Compact(ConfigArg),
    /// Bring the PostgreSQL schema up to date (the gateway also does at start)
    Migrate(ConfigArg),
    /// Copy everything from one store into another, empty one: a redb file to PostgreSQL, or
    /// back (with the gateways on both stopped)
    MigrateStore {
        /// The config whose store is copied
        #[arg(long, value_name = "OLD_CONFIG")]
        from: PathBuf,
        /// The config whose store, empty, receives the copy
        #[arg(long, value_name = "NEW_CONFIG")]
        to: PathBuf,
    },
    /// Print the one-time code that setup from another machine asks for (while no owner exists)
    SetupCode(ConfigArg),
    /// Print an argon2id PHC string for a password read from stdin
    HashPassword {
        /// Read the password from standard input (required: never pass it as an argument)
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an active user (a password is generated and printed unless --password-stdin)
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        username: Option<String>,
        #[arg(long, default_value = "user")]
        role: String,
        /// Read the password from standard input
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// List users
    List {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Set a user's password (read from stdin) and revoke their sessions
    Passwd {
        /// Id, email or username
        user: String,
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Disable a user and revoke their sessions
    Disable {
        /// Id, email or username
        user: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Remove a user's second factors (authenticator app, recovery codes, passkeys) and revoke
    /// their sessions
    #[command(name = "reset-2fa")]
    ResetSecondFactor {
        /// Id, email or username
        user: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Change a user's role (owner, admin, user)
    Role {
        /// Id, email or username
        user: String,
        role: String,
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Print a new API token for a user or service account (shown once)
    Create {
        /// Id, email or username of the owner
        #[arg(long)]
        user: String,
        /// What the token is for ("backup job")
        #[arg(long)]
        name: String,
        /// Comma-separated: the token may use only these of the owner's role and groups
        #[arg(long)]
        groups: Option<String>,
        /// e.g. "90d"; without it the token does not expire
        #[arg(long)]
        expires: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// List a user's tokens (never the secrets)
    List {
        /// Id, email or username of the owner
        #[arg(long)]
        user: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Revoke one of a user's tokens
    Revoke {
        /// Id, email or username of the owner
        #[arg(long)]
        user: String,
        /// The token's id (from `token list`)
        id: String,
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Subcommand)]
enum ServiceAccountCommand {
    /// Create a service account
    Add {
        /// Its name (a username: 3 to 32 of a-z, 0-9, '_', '.', '-')
        name: String,
        /// Comma-separated groups
        #[arg(long)]
        groups: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Subcommand)]
enum InviteCommand {
    /// Print a new invite code and its registration link
    Create {
        #[arg(long, default_value = "user")]
        role: String,
        /// Comma-separated groups given to who registers with it
        #[arg(long)]
        groups: Option<String>,
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// e.g. "7d"
        #[arg(long)]
        expires: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
    },
}

/// The password written to standard input (one line; the newline is not part of it).
fn read_password(password_stdin: bool) -> Result<String, String> {
    if !password_stdin {
        return Err("pass --password-stdin and write the password to standard input".into());
    }
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| format!("cannot read standard input: {e}"))?;
    let password = input.strip_suffix('\n').unwrap_or(&input);
    Ok(password.strip_suffix('\r').unwrap_or(password).to_string())
}

/// Print a command's outcome; exit 1 on error.
fn finish(result: Result<String, String>) -> ExitCode {
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("authgate: {e}");
            ExitCode::from(1)
        }
    }
}

fn with_config(arg: &ConfigArg, run: impl FnOnce(&Config) -> Result<String, String>) -> ExitCode {
    match load(arg) {
        Ok((config, _)) => {
            // Warnings from opening the database (a recovery, look-alike addresses found in an
            // older file) reach the operator on stderr, apart from the command's output.
            authgate::logging::init(config.log.format, "warn");
            finish(run(&config))
        }
        Err(e) => {
            eprintln!("authgate: invalid configuration in {e}");
            ExitCode::from(1)
        }
    }
}

/// [`with_config`] for a command that works on the store (it runs on a small runtime).
fn on_store<F>(arg: &ConfigArg, run: impl FnOnce(Config) -> F) -> ExitCode
where
    F: std::future::Future<Output = Result<String, String>>,
{
    with_config(arg, |config| {
        authgate::server::block_on(run(config.clone()))
            .map_err(|e| e.to_string())
            .and_then(|r| r)
    })
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

/// `migrate-store`: both configs must be valid before either store is opened.
fn migrate_store(from: PathBuf, to: PathBuf) -> ExitCode {
    let load_one = |path: PathBuf| load(&ConfigArg { config: Some(path) }).map(|(c, _)| c);
    let (old, new) = match (load_one(from), load_one(to)) {
        (Ok(old), Ok(new)) => (old, new),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("authgate: invalid configuration in {e}");
            return ExitCode::from(1);
        }
    };
    authgate::logging::init(old.log.format, "warn");
    finish(
        authgate::server::block_on(cli::migrate_store(&old, &new))
            .map_err(|e| e.to_string())
            .and_then(|r| r),
    )
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
            // A write past a file-size limit must fail like a full disk (503, then recovery),
            // not kill the process with SIGXFSZ.
            // SAFETY: setting a signal to SIG_IGN at start-up, before any thread is spawned.
            unsafe {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            }
            tracing::info!(config = %source, "configuration loaded");
            for notice in config.notices() {
                tracing::info!("{notice}");
            }
            let file = match locate(&arg) {
                Source::File(p) => Some(p),
                Source::Embedded => None,
            };
            match authgate::server::run(config, file) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    eprintln!("authgate: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::CheckConfig(arg) => match load(&arg) {
            Ok((config, source)) => {
                println!("{source}: configuration is valid");
                for notice in config.notices() {
                    println!("notice: {notice}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        },
        Command::User(cmd) => match cmd {
            UserCommand::Add {
                email,
                username,
                role,
                password_stdin,
                config,
            } => {
                let password = if password_stdin {
                    match read_password(true) {
                        Ok(p) => Some(p),
                        Err(e) => return finish(Err(e)),
                    }
                } else {
                    None
                };
                on_store(&config, |c| async move {
                    cli::user_add(&c, &email, username.as_deref(), &role, password).await
                })
            }
            UserCommand::List { config } => {
                on_store(&config, |c| async move { cli::user_list(&c).await })
            }
            UserCommand::Passwd {
                user,
                password_stdin,
                config,
            } => match read_password(password_stdin) {
                Ok(p) => on_store(
                    &config,
                    |c| async move { cli::user_passwd(&c, &user, &p).await },
                ),
                Err(e) => finish(Err(e)),
            },
            UserCommand::Disable { user, config } => {
                on_store(
                    &config,
                    |c| async move { cli::user_disable(&c, &user).await },
                )
            }
            UserCommand::ResetSecondFactor { user, config } => on_store(&config, |c| async move {
                cli::user_reset_second_factor(&c, &user).await
            }),
            UserCommand::Role { user, role, config } => on_store(&config, |c| async move {
                cli::user_role(&c, &user, &role).await
            }),
        },
        Command::Invite(InviteCommand::Create {
            role,
            groups,
            uses,
            expires,
            config,
        }) => on_store(&config, |c| async move {
            cli::invite_create(&c, &role, groups.as_deref(), uses, expires.as_deref()).await
        }),
        Command::Token(TokenCommand::Create {
            user,
            name,
            groups,
            expires,
            config,
        }) => on_store(&config, |c| async move {
            cli::token_create(&c, &user, &name, groups.as_deref(), expires.as_deref()).await
        }),
        Command::Token(TokenCommand::List { user, config }) => {
            on_store(&config, |c| async move { cli::token_list(&c, &user).await })
        }
        Command::Token(TokenCommand::Revoke { user, id, config }) => {
            on_store(&config, |c| async move {
                cli::token_revoke(&c, &user, &id).await
            })
        }
        Command::ServiceAccount(ServiceAccountCommand::Add {
            name,
            groups,
            config,
        }) => on_store(&config, |c| async move {
            cli::service_account_add(&c, &name, groups.as_deref()).await
        }),
        Command::Compact(arg) => with_config(&arg, cli::compact),
        Command::Migrate(arg) => with_config(&arg, cli::migrate),
        Command::MigrateStore { from, to } => migrate_store(from, to),
        Command::SetupCode(arg) => on_store(&arg, |c| async move { cli::setup_code(&c).await }),
        Command::HashPassword { password_stdin } => finish(
            read_password(password_stdin).and_then(|p| authgate::auth::password::hash_blocking(&p)),
        ),
    }
}

#[cfg(not(feature = "count-allocations"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(feature = "count-allocations")]
#[global_allocator]
static GLOBAL: authgate::alloc_count::Counting<mimalloc::MiMalloc> =
    authgate::alloc_count::Counting(mimalloc::MiMalloc);
