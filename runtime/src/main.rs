//! `sandgate serve`: the server. See the README for the configuration.

use clap::{Parser, Subcommand};
use sandgate::config::{Config, Overrides};
use std::path::PathBuf;
use tracing_subscriber::field::MakeExt as _;

#[derive(Parser)]
#[command(name = "sandgate", version, about = "A Kuzzle-compatible login server with sandboxed WebAssembly strategies")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (HTTP and WebSocket on one port).
    Serve {
        /// Address to listen on [default: 127.0.0.1:7512]
        #[arg(long, env = "SANDGATE_LISTEN")]
        listen: Option<String>,
        /// Where the database and compiled strategies live [default: ./sandgate-data]
        #[arg(long, env = "SANDGATE_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// A TOML configuration file
        #[arg(long, env = "SANDGATE_CONFIG")]
        config: Option<PathBuf>,
        /// A PostgreSQL database shared by several nodes (postgres://user:password@host:port/db)
        /// [default: the SQLite file in the data directory]
        #[arg(long, env = "SANDGATE_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
    /// The server's compiler child (run by the server itself): compiles the component on
    /// stdin into OUT.
    #[command(name = "compile-component", hide = true)]
    CompileComponent { out: PathBuf },
    /// Manage uploaded strategies without a running server.
    Strategy {
        #[command(subcommand)]
        action: StrategyCommand,
        #[arg(long, env = "SANDGATE_DATA_DIR", global = true)]
        data_dir: Option<PathBuf>,
        /// The server's TOML configuration file (for [limits], [argon2], cache_dir, [store])
        #[arg(long, env = "SANDGATE_CONFIG", global = true)]
        server_config: Option<PathBuf>,
        /// The shared PostgreSQL database, if the nodes use one
        #[arg(long, env = "SANDGATE_DATABASE_URL", hide_env_values = true, global = true)]
        database_url: Option<String>,
    },
}

#[derive(Subcommand)]
enum StrategyCommand {
    /// Validate, compile and register a component (replaces one of the same name).
    Add {
        name: String,
        file: PathBuf,
        /// The strategy's configuration, a JSON object
        #[arg(long, default_value = "{}")]
        config: String,
        /// Per-strategy limit overrides, a JSON object of [limits] keys
        #[arg(long, default_value = "{}")]
        limits: String,
        /// The origins it may reach over HTTP, a JSON array (`["https://id.example.com"]`)
        #[arg(long, default_value = "[]")]
        outbound: String,
        /// Whom it may provision on first login, a JSON object (`{"profileIds":["default"]}`)
        #[arg(long, default_value = "{}")]
        provision: String,
        /// Replace a strategy that holds users' credentials (they then answer to the new code)
        #[arg(long)]
        replace: bool,
    },
    /// Check a component as an upload would (validation, compilation, its `fields` call)
    /// without a server; exits 1 with the upload's message if it would be refused.
    Check {
        file: PathBuf,
        /// The strategy's configuration, a JSON object
        #[arg(long, default_value = "{}")]
        config: String,
        /// Per-strategy limit overrides, a JSON object of [limits] keys
        #[arg(long, default_value = "{}")]
        limits: String,
    },
    /// Run calls on a component as the server would, each in a fresh instance on one scratch
    /// store, and show each answer and what it cost (CPU, memory, host calls, storage written,
    /// the limit it hit). Exits 1 if a case's `expect` is not met.
    ///
    /// CASES is a JSON array of calls, e.g.
    /// [{"call":"create","kuid":"alice","credentials":{"username":"alice","password":"pw"}},
    ///  {"call":"verify","credentials":{"username":"alice","password":"pw"},"expect":{"answer":{"kuid":"alice"}}}]
    /// (see the README, "Trying a strategy before uploading").
    Run {
        file: PathBuf,
        /// The cases, a JSON file
        #[arg(long)]
        calls: PathBuf,
        /// The strategy's configuration, a JSON object
        #[arg(long, default_value = "{}")]
        config: String,
        /// Per-strategy limit overrides, a JSON object of [limits] keys
        #[arg(long, default_value = "{}")]
        limits: String,
        /// One JSON object per call on stdout, for machines
        #[arg(long)]
        json: bool,
    },
    /// List registered strategies.
    List,
    /// Unregister an uploaded strategy (its users' credentials stay in its storage).
    Remove { name: String },
}

fn main() {
    // Every field of every line is escaped: a strategy's message, a client's request id or a
    // strategy-chosen kuid with a newline in it cannot forge a log line.
    let fields = tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
        let text = sandgate::core::escape::for_log(&format!("{value:?}")).into_owned();
        if field.name() == "message" { write!(w, "{text}") } else { write!(w, "{}={text}", field.name()) }
    })
    .delimited(" ");
    tracing_subscriber::fmt()
        .fmt_fields(fields)
        // A client that hangs up mid-request is not a server error: hyper's connection errors
        // are left out unless asked for (SANDGATE_LOG=debug,warp::server=debug).
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SANDGATE_LOG")
                .unwrap_or_else(|_| "info,warp::server=off".into()),
        )
        .with_target(false)
        // Colours only for a terminal: a log file or a pipe gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { listen, data_dir, config, database_url } => {
            serve(Overrides { listen, data_dir, config, database_url })
        }
        Command::CompileComponent { out } => {
            sandgate::sandbox::compile::child_main(&out).map_err(|e| anyhow::anyhow!("{e}"))
        }
        Command::Strategy { action, data_dir, server_config, database_url } => {
            strategy(action, Overrides { listen: None, data_dir, config: server_config, database_url })
        }
    };
    if let Err(e) = result {
        eprintln!("sandgate: {e:#}");
        std::process::exit(1);
    }
}

/// The configuration, with this binary as the compiler child.
fn load(overrides: &Overrides) -> anyhow::Result<Config> {
    let mut config = Config::load(overrides).map_err(anyhow::Error::msg)?;
    // /proc/self/exe: this very binary, even if the file was replaced by an upgrade since it
    // started (an artifact must match the engine that loads it).
    config.compiler = sandgate::sandbox::compile::Compiler::Child("/proc/self/exe".into());
    Ok(config)
}

fn serve(overrides: Overrides) -> anyhow::Result<()> {
    let config = load(&overrides)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listen = config.listen;
        let listener = sandgate::api::bind(listen).await?;
        let app = tokio::task::spawn_blocking(move || sandgate::App::start(config)).await??;
        tracing::info!(
            "sandgate {} listening on http://{} (strategies: {})",
            env!("CARGO_PKG_VERSION"),
            listener.local_addr()?,
            app.sandbox.names().join(", ")
        );
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down");
        };
        sandgate::api::serve(app, listener, shutdown).await;
        Ok(())
    })
}

fn strategy(action: StrategyCommand, overrides: Overrides) -> anyhow::Result<()> {
    use sandgate::service::app::offline;
    let config = load(&overrides)?;
    match action {
        StrategyCommand::Add { name, file, config: json, limits, outbound, provision, replace } => {
            let wasm = std::fs::read(&file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let grants = sandgate::sandbox::Grants::parse(&outbound, &provision)?;
            println!("{}", offline::add(&config, &name, wasm, &json, &limits, &grants, replace)?);
        }
        StrategyCommand::Check { file, config: json, limits } => {
            let wasm = std::fs::read(&file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let grants = sandgate::sandbox::Grants::parse("[]", "{}")?;
            let verdict = offline::check(&config, &wasm, &json, &limits, &grants)
                .map_err(|e| anyhow::anyhow!("{}: refused: {e}", file.display()))?;
            println!("{}: {verdict}", file.display());
        }
        StrategyCommand::Run { file, calls, config: json, limits, json: as_json } => {
            use sandgate::service::runner;
            let wasm = std::fs::read(&file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let text = std::fs::read_to_string(&calls).map_err(|e| anyhow::anyhow!("{}: {e}", calls.display()))?;
            let cases = runner::parse_cases(&text).map_err(|e| anyhow::anyhow!("{}: {e:#}", calls.display()))?;
            // Named after its file, as its messages will name it once uploaded under that name.
            let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("").replace('_', "-");
            let name = if sandgate::sandbox::upload::valid_name(&stem) { stem } else { "strategy".to_string() };
            let (strategy, ran) = runner::run(&config, &name, &wasm, &json, &limits, &cases)
                .map_err(|e| anyhow::anyhow!("{}: {e:#}", file.display()))?;
            for (i, one) in ran.iter().enumerate() {
                if as_json {
                    println!("{}", runner::to_json(one));
                } else {
                    println!("{}", runner::to_text(i, one, &strategy));
                }
            }
            let missed = ran.iter().filter(|r| r.met == Some(false)).count();
            if missed > 0 {
                anyhow::bail!("{missed} of {} calls not as expected", ran.len());
            }
        }
        StrategyCommand::List => offline::list(&config)?.iter().for_each(|line| println!("{line}")),
        StrategyCommand::Remove { name } => {
            offline::remove(&config, &name)?;
            println!("removed {name}");
        }
    }
    Ok(())
}
