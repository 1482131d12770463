//! `rapport`: the one binary. Parses the command line, opens the database,
//! and hands over to the application. Exit status: 0 success, 1 the
//! command ran and found a problem, 2 usage error.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use rapport_app::demo::{self, DemoSpec};
use rapport_app::{App, Db, Options};

#[derive(Parser)]
#[command(
    name = "rapport",
    version,
    about = "Patient relationships and membership for hospitals"
)]
struct Cli {
    /// Where the embedded SQLite database and other local files live.
    #[arg(
        long,
        global = true,
        env = "RAPPORT_DATA_DIR",
        default_value = "./rapport-data"
    )]
    data_dir: PathBuf,
    /// `postgres://…` for PostgreSQL, `sqlite://PATH` for an explicit SQLite
    /// file. Overrides --data-dir.
    #[arg(long, global = true, env = "RAPPORT_DATABASE_URL")]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API and the web console.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: SocketAddr,
    },
    /// Fill the database with a realistic synthetic hospital, then serve.
    Demo {
        #[arg(long, default_value_t = 20_000)]
        patients: u64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Only generate; do not serve.
        #[arg(long)]
        no_serve: bool,
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: SocketAddr,
        /// The last day of the generated history (default: today).
        #[arg(long)]
        end_date: Option<chrono::NaiveDate>,
    },
    /// Verify every stored invariant; exit 1 with a report when one fails.
    Check {
        /// Print the report as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// API tokens for integrations.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Print a new API token on stdout, alone on its line.
    Create {
        #[arg(long)]
        role: String,
        #[arg(long, default_value = "cli")]
        name: String,
    },
    /// List tokens (never the tokens themselves).
    List,
    /// Revoke a token by id.
    Revoke { id: i64 },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,rapport=info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn open(cli: &Cli) -> Result<App> {
    let db = Db::open(
        cli.database_url.as_deref(),
        &cli.data_dir,
        &Options::default(),
    )
    .await
    .context("cannot open the database")?;
    Ok(App::new(db))
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let app = open(&cli).await?;
    let code = match &cli.command {
        Command::Serve { bind } => {
            serve(app.clone(), *bind).await?;
            ExitCode::SUCCESS
        }
        Command::Demo {
            patients,
            seed,
            no_serve,
            bind,
            end_date,
        } => {
            run_demo(&app, *patients, *seed, *end_date).await?;
            if !no_serve {
                let (_, token) = rapport_app::tokens::create(&app, "admin", "demo").await?;
                println!("Log in to the API with the admin token:\n  {token}");
                println!(
                    "  curl -H 'Authorization: Bearer {token}' http://{bind}/api/v1/patients/1"
                );
                serve(app.clone(), *bind).await?;
            }
            ExitCode::SUCCESS
        }
        Command::Check { json } => check(&app, *json).await?,
        Command::Token { command } => token(&app, command).await?,
    };
    app.db.close().await;
    Ok(code)
}

async fn serve(app: App, bind: SocketAddr) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    let addr = listener.local_addr()?;
    println!(
        "Rapport is serving on http://{addr}  (API: http://{addr}/api/v1, OpenAPI: /api/v1/openapi.json)"
    );
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    rapport_server::serve(app, listener, shutdown).await?;
    Ok(())
}

async fn run_demo(
    app: &App,
    patients: u64,
    seed: u64,
    end_date: Option<chrono::NaiveDate>,
) -> Result<()> {
    if demo::has_data(app).await? {
        println!("The database already holds patients; the demo leaves them as they are.");
        return Ok(());
    }
    let spec = DemoSpec {
        patients,
        seed,
        end: end_date.unwrap_or_else(|| app.today()),
        years: 5,
    };
    let started = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let report = demo::generate(app, &spec, |done| {
        if tty {
            let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
            eprint!("\r  {done} / {patients} patients ({rate:.0}/s)   ");
        }
    })
    .await?;
    if tty {
        eprintln!();
    }
    println!(
        "Demo hospital ready: {} patients, {} visits, {} departments, {} doctors, revenue {} in {:.1} s",
        report.patients,
        report.visits,
        report.departments,
        report.doctors,
        rapport_domain::money::format_minor(i128::from(report.revenue)),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn check(app: &App, json: bool) -> Result<ExitCode> {
    let results = rapport_app::check::run(app).await?;
    let ok = results.iter().all(|r| r.violations == 0);
    if json {
        let v: Vec<serde_json::Value> = results
            .iter()
            .map(|r| {
                serde_json::json!({"check": r.name, "checked": r.checked, "violations": r.violations, "problems": r.problems})
            })
            .collect();
        println!("{}", serde_json::json!({"ok": ok, "checks": v}));
    } else {
        for r in &results {
            if r.violations == 0 {
                println!("ok    {}: {} verified", r.name, r.checked);
            } else {
                println!("FAIL  {}: {} of {} wrong", r.name, r.violations, r.checked);
                for p in &r.problems {
                    println!("      {p}");
                }
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn token(app: &App, cmd: &TokenCommand) -> Result<ExitCode> {
    match cmd {
        TokenCommand::Create { role, name } => {
            match rapport_app::tokens::create(app, role, name).await {
                Ok((_, token)) => println!("{token}"),
                Err(rapport_app::AppError::Validation(v)) => {
                    eprintln!("error: {}", v.summary());
                    return Ok(ExitCode::from(2));
                }
                Err(e) => return Err(e.into()),
            }
        }
        TokenCommand::List => {
            for t in rapport_app::tokens::list(app).await? {
                let state = t
                    .revoked_at
                    .map(|r| format!("revoked {r}"))
                    .unwrap_or_else(|| "live".into());
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    t.id, t.role, t.name, t.created_at, state
                );
            }
        }
        TokenCommand::Revoke { id } => {
            rapport_app::tokens::revoke(app, *id).await?;
            println!("token {id} revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}
