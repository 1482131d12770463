//! `rapport`: the one binary. Parses the command line, opens the database,
//! and hands over to the application. Exit status: 0 success, 1 the
//! command ran and found a problem, 2 usage error.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use rapport_app::crypto::DataKeys;
use rapport_app::demo::{self, DemoSpec};
use rapport_app::{App, Db, Options};

mod import;

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
    /// File with the data keys that seal national ids (one 64-hex key per
    /// line, the current one first). Default with the embedded database:
    /// `rapport.key` in the data directory, created on first use. The
    /// environment variable RAPPORT_DATA_KEY (one key) takes precedence.
    #[arg(long, global = true, env = "RAPPORT_KEY_FILE")]
    key_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API and the web console.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: SocketAddr,
        /// Mark the session cookie `Secure`: set this when browsers reach
        /// Rapport over HTTPS (directly or through a proxy).
        #[arg(long, env = "RAPPORT_SECURE_COOKIES", value_parser = clap::builder::BoolishValueParser::new())]
        secure_cookies: bool,
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
        /// Mark the session cookie `Secure`: set this when browsers reach
        /// Rapport over HTTPS (directly or through a proxy).
        #[arg(long, env = "RAPPORT_SECURE_COOKIES", value_parser = clap::builder::BoolishValueParser::new())]
        secure_cookies: bool,
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
    /// Staff accounts (they log in to the console and the API).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// The figures of analytics.md over the database: active patients,
    /// revenue, RFM segments, concentration, cohort retention.
    Analyze {
        /// Only visits on or before this date count (default: today).
        #[arg(long)]
        as_of: Option<NaiveDate>,
        /// Print the figures as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Customer lifetime value models.
    Clv {
        #[command(subcommand)]
        command: ClvCommand,
    },
    /// Import files from hospital systems: CSV, XLSX, FHIR R4.
    Import {
        #[command(subcommand)]
        command: import::ImportCommand,
    },
    /// Write data out of the database.
    Export {
        #[command(subcommand)]
        command: ExportCommand,
    },
    /// The stored per-patient scores.
    Scores {
        #[command(subcommand)]
        command: ScoresCommand,
    },
}

#[derive(Subcommand)]
enum ClvCommand {
    /// Fit BG/NBD and Gamma-Gamma on the database's patients (periods in
    /// days) or on a summary CSV (periods in the file's unit).
    Fit {
        /// A CSV with frequency, recency, T and optionally monetary_value.
        #[arg(long)]
        summary: Option<PathBuf>,
        /// Fit on the patients as of this date (default: today).
        #[arg(long, conflicts_with = "summary")]
        as_of: Option<NaiveDate>,
        /// Print the fit as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ExportCommand {
    /// Write Patient, Encounter, Practitioner and Organization NDJSON
    /// (FHIR R4) into DIR.
    Fhir { dir: PathBuf },
    /// Write every patient as a list: FILE.csv or FILE.xlsx.
    Patients { file: PathBuf },
    /// Write the per-patient scores CSV (one row per active patient).
    Scores {
        file: PathBuf,
        /// Score as of this date (default: today).
        #[arg(long)]
        as_of: Option<NaiveDate>,
    },
}

#[derive(Subcommand)]
enum ScoresCommand {
    /// Recompute every active patient's scores now and store them (the
    /// server does this nightly at 02:00 hospital time).
    Refresh {
        /// Print the outcome as JSON on stdout.
        #[arg(long)]
        json: bool,
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

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account. The password is read from standard input (one
    /// line): `printf '%s\n' "$PASSWORD" | rapport user add li.na --role doctor`.
    Add {
        login: String,
        /// admin, manager, marketing, customer_service, membership_desk,
        /// doctor or analyst.
        #[arg(long)]
        role: String,
        /// The name shown in the console (default: the login).
        #[arg(long)]
        name: Option<String>,
    },
    /// List accounts (never their passwords).
    List,
    /// Deactivate an account: it can no longer log in and its sessions end.
    Deactivate { login: String },
    /// Set a new password (read from standard input, one line), unlock the
    /// account and end its sessions: for a forgotten password.
    Password { login: String },
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
    Ok(App::new(db).with_keys(load_keys(cli)?))
}

/// The data keys: RAPPORT_DATA_KEY, else --key-file, else (embedded
/// database only) `rapport.key` in the data directory, created with a new
/// random key on first use. A server database without a key still runs;
/// only storing or opening national ids is refused.
fn load_keys(cli: &Cli) -> Result<DataKeys> {
    if let Ok(k) = std::env::var("RAPPORT_DATA_KEY")
        && !k.trim().is_empty()
    {
        return DataKeys::parse(&k).context("RAPPORT_DATA_KEY");
    }
    let path = match (&cli.key_file, &cli.database_url) {
        (Some(p), _) => p.clone(),
        (None, None) => cli.data_dir.join("rapport.key"),
        (None, Some(_)) => return Ok(DataKeys::none()),
    };
    if !path.exists() && cli.key_file.is_none() {
        write_new_key_file(&path)?;
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the key file {}", path.display()))?;
    DataKeys::parse(&text).with_context(|| format!("key file {}", path.display()))
}

fn write_new_key_file(path: &std::path::Path) -> Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot create the key file {}", path.display()))?;
    writeln!(
        f,
        "# Rapport data key: seals national ids. Keep a copy apart from the database backups."
    )?;
    writeln!(f, "{}", DataKeys::generate_line())?;
    f.sync_all()?;
    Ok(())
}

async fn run(cli: Cli) -> Result<ExitCode> {
    // A summary file needs no database.
    if let Command::Clv {
        command:
            ClvCommand::Fit {
                summary: Some(file),
                json,
                ..
            },
    } = &cli.command
    {
        return Ok(clv_fit_summary(file, *json));
    }
    let app = open(&cli).await?;
    let code = match &cli.command {
        Command::Serve {
            bind,
            secure_cookies,
        } => {
            serve(app.clone(), *bind, *secure_cookies).await?;
            ExitCode::SUCCESS
        }
        Command::Demo {
            patients,
            seed,
            no_serve,
            bind,
            end_date,
            secure_cookies,
        } => {
            run_demo(&app, *patients, *seed, *end_date).await?;
            if *no_serve {
                print_first_admin(&app, None).await?;
            } else {
                let (_, token) = rapport_app::tokens::create(&app, "admin", "demo").await?;
                println!("Log in to the API with the admin token:\n  {token}");
                println!(
                    "  curl -H 'Authorization: Bearer {token}' http://{bind}/api/v1/patients/1"
                );
                serve(app.clone(), *bind, *secure_cookies).await?;
            }
            ExitCode::SUCCESS
        }
        Command::Check { json } => check(&app, *json).await?,
        Command::Token { command } => token(&app, command).await?,
        Command::User { command } => user(&app, command).await?,
        Command::Analyze { as_of, json } => {
            analyze(&app, as_of.unwrap_or_else(|| app.today()), *json).await?
        }
        Command::Clv {
            command: ClvCommand::Fit { as_of, json, .. },
        } => clv_fit_db(&app, as_of.unwrap_or_else(|| app.today()), *json).await?,
        Command::Import { command } => import::run(&app, command).await?,
        Command::Export {
            command: ExportCommand::Fhir { dir },
        } => {
            let c = rapport_app::export::fhir(&app, &rapport_app::audit::Actor::cli(), dir).await?;
            println!(
                "{}: {} patients, {} encounters, {} claims, {} practitioners, {} organizations",
                dir.display(),
                c.patients,
                c.encounters,
                c.claims,
                c.practitioners,
                c.organizations
            );
            ExitCode::SUCCESS
        }
        Command::Export {
            command: ExportCommand::Patients { file },
        } => export_patients(&app, file).await?,
        Command::Export {
            command: ExportCommand::Scores { file, as_of },
        } => export_scores(&app, file, as_of.unwrap_or_else(|| app.today())).await?,
        Command::Scores {
            command: ScoresCommand::Refresh { json },
        } => scores_refresh(&app, *json).await?,
    };
    app.db.close().await;
    Ok(code)
}

async fn serve(mut app: App, bind: SocketAddr, secure_cookies: bool) -> Result<()> {
    app.secure_cookies = secure_cookies;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    let addr = listener.local_addr()?;
    println!(
        "Rapport is serving on http://{addr}  (API: http://{addr}/api/v1, OpenAPI: /api/v1/openapi.json)"
    );
    print_first_admin(&app, Some(addr)).await?;
    // Imports that a stopped server left running were rolled back with it.
    let interrupted = rapport_app::import::fail_interrupted(&app).await?;
    if interrupted > 0 {
        eprintln!(
            "{interrupted} import(s) interrupted by the last stop were marked failed; nothing of them was committed"
        );
    }
    // The background work: the nightly scores refresh, and (PostgreSQL)
    // imports whose server stopped.
    let nightly = tokio::spawn(rapport_app::analytics::run_nightly(app.clone()));
    let orphans = tokio::spawn(rapport_app::import::watch_interrupted(app.clone()));
    let shutdown = async move {
        let _ = tokio::signal::ctrl_c().await;
        nightly.abort();
        orphans.abort();
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
    // Score the patients now rather than at the first nightly run, so the
    // demo's 360° views and dashboards show them from the start.
    let scored = rapport_app::analytics::refresh_scores(app).await?;
    println!(
        "Scores stored for {} patients ({} at churn risk) in {:.1} s",
        scored.patients,
        scored.churn_risk,
        scored.duration.as_secs_f64()
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

/// On a database without staff accounts, creates `admin` with a random
/// password and prints it, this once. (A closed standard output does not
/// stop the server: `rapport user password admin` sets a new one.)
async fn print_first_admin(app: &App, addr: Option<SocketAddr>) -> Result<()> {
    use std::io::Write;
    let Some(password) = rapport_app::users::ensure_first_admin(app).await? else {
        return Ok(());
    };
    let login = rapport_app::users::FIRST_ADMIN;
    let mut text = format!(
        "First run: created the administrator account. This password is shown only once:\n  login     {login}\n  password  {password}\n"
    );
    if let Some(addr) = addr {
        text.push_str(&format!(
            "  log in    curl -i -H 'Content-Type: application/json' -d '{{\"login\":\"{login}\",\"password\":\"{password}\"}}' http://{addr}/api/v1/session\n"
        ));
    }
    text.push_str("  Change it after logging in (POST /api/v1/session/password).\n");
    let mut out = std::io::stdout().lock();
    if out
        .write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        tracing::warn!(
            "the first administrator's password could not be printed; set one with `rapport user password {login}`"
        );
    }
    Ok(())
}

/// One line of standard input (a prompt first when it is a terminal);
/// `None`, with a message, when it is empty.
fn read_password(login: &str) -> Result<Option<String>> {
    if std::io::stdin().is_terminal() {
        eprint!("Password for {login} (at least 12 characters; the input is visible): ");
    }
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .context("cannot read the password from standard input")?;
    let password = password.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        eprintln!("error: no password on standard input");
        return Ok(None);
    }
    Ok(Some(password.to_string()))
}

async fn user(app: &App, cmd: &UserCommand) -> Result<ExitCode> {
    use rapport_app::AppError;
    match cmd {
        UserCommand::Add { login, role, name } => {
            if rapport_domain::auth::Role::from_code(role.trim()).is_none() {
                let all: Vec<&str> = rapport_domain::auth::Role::ALL
                    .iter()
                    .map(|r| r.as_str())
                    .collect();
                eprintln!("error: role: must be one of {}", all.join(", "));
                return Ok(ExitCode::from(2));
            }
            let Some(password) = read_password(login)? else {
                return Ok(ExitCode::from(1));
            };
            match rapport_app::users::create(app, login, role, name.as_deref(), &password).await {
                Ok(u) => println!("user {} created (id {}, role {})", u.login, u.id, u.role),
                Err(AppError::Validation(v)) => {
                    eprintln!("error: {}", v.summary());
                    return Ok(ExitCode::from(1));
                }
                Err(AppError::Conflict { message, .. }) => {
                    eprintln!("error: {message}");
                    return Ok(ExitCode::from(1));
                }
                Err(e) => return Err(e.into()),
            }
        }
        UserCommand::List => {
            let now = app.now();
            for u in rapport_app::users::list(app).await? {
                let state = match (u.active, u.locked_until) {
                    (false, _) => "inactive".to_string(),
                    (true, Some(t)) if t > now => format!("locked until {t}"),
                    (true, _) => "active".to_string(),
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    u.id, u.login, u.role, u.display_name, state
                );
            }
        }
        UserCommand::Password { login } => {
            let found = match rapport_app::users::find_by_login(app, login).await {
                Ok(u) => u,
                Err(AppError::NotFound(_)) => {
                    eprintln!("error: no user with the login {login}");
                    return Ok(ExitCode::from(1));
                }
                Err(e) => return Err(e.into()),
            };
            let Some(password) = read_password(login)? else {
                return Ok(ExitCode::from(1));
            };
            match rapport_app::users::reset_password(app, found.id, &password).await {
                Ok(()) => println!("password of {} set; its sessions have ended", found.login),
                Err(AppError::Validation(v)) => {
                    eprintln!("error: {}", v.summary());
                    return Ok(ExitCode::from(1));
                }
                Err(e) => return Err(e.into()),
            }
        }
        UserCommand::Deactivate { login } => {
            let found = match rapport_app::users::find_by_login(app, login).await {
                Ok(u) => u,
                Err(AppError::NotFound(_)) => {
                    eprintln!("error: no user with the login {login}");
                    return Ok(ExitCode::from(1));
                }
                Err(e) => return Err(e.into()),
            };
            match rapport_app::users::deactivate(app, found.id).await {
                Ok(u) => println!("user {} deactivated; its sessions have ended", u.login),
                Err(AppError::Conflict { message, .. }) => {
                    eprintln!("error: {message}");
                    return Ok(ExitCode::from(1));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
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

async fn analyze(app: &App, as_of: NaiveDate, json: bool) -> Result<ExitCode> {
    let a = rapport_app::analytics::analyze(app, as_of).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&a)?);
        return Ok(ExitCode::SUCCESS);
    }
    let n = a.active_patients;
    let pct = |k: u64| {
        if n == 0 {
            0.0
        } else {
            100.0 * k as f64 / n as f64
        }
    };
    println!("Analysis as of {}", a.as_of);
    println!("  active patients   {n}");
    println!("  revenue           {}", a.revenue);
    println!(
        "  top 20 % share    {:.1} % of revenue",
        100.0 * a.top20_share
    );
    println!("  Gini              {:.4}", a.gini);
    println!("\nRFM segments");
    for s in rapport_analytics::Segment::ALL {
        let k = a.segments.get(s);
        println!("  {:<20}{k:>9}  {:>5.1} %", s.as_str(), pct(k));
    }
    println!("\nCohort retention (% of the cohort with a visit k months after the first)");
    let mut header = format!("  {:<8}{:>8}", "cohort", "size");
    for k in 0..12 {
        header.push_str(&format!("{:>6}", format!("+{k}")));
    }
    println!("{header}");
    for c in &a.cohorts {
        let mut line = format!("  {:<8}{:>8}", c.cohort, c.size);
        for r in &c.retention {
            match r {
                Some(v) => line.push_str(&format!("{:>6.1}", 100.0 * v)),
                None => line.push_str(&format!("{:>6}", "")),
            }
        }
        println!("{}", line.trim_end());
    }
    Ok(ExitCode::SUCCESS)
}

fn print_fit(fit: &rapport_analytics::ClvFit, json: bool, unit: &str) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(fit)?);
        return Ok(());
    }
    let b = &fit.bgnbd;
    println!("BG/NBD ({} customers, periods in {unit})", b.customers);
    println!(
        "  r = {:.6}  alpha = {:.6}  a = {:.6}  b = {:.6}",
        b.r, b.alpha, b.a, b.b
    );
    println!("  log-likelihood {:.4}", b.log_likelihood);
    if let Some(g) = &fit.gamma_gamma {
        println!("Gamma-Gamma ({} customers with repeat spend)", g.customers);
        println!("  p = {:.6}  q = {:.6}  gamma = {:.6}", g.p, g.q, g.gamma);
        println!("  log-likelihood {:.4}", g.log_likelihood);
    }
    Ok(())
}

/// `clv fit --summary FILE`: exit 1 with `FILE:ROW:COLUMN: reason` when the
/// file cannot be read, and with the reason when the models cannot be
/// fitted.
fn clv_fit_summary(file: &std::path::Path, json: bool) -> ExitCode {
    use rapport_analytics::SummaryCsvError as E;
    let name = file.display();
    let table = match std::fs::File::open(file)
        .map_err(E::Io)
        .and_then(|f| rapport_analytics::read_summary_csv(std::io::BufReader::new(f)))
    {
        Ok(t) => t,
        Err(e) => {
            match e {
                E::Invalid {
                    line,
                    column,
                    message,
                } => eprintln!("{name}:{line}:{column}: {message}"),
                E::MissingColumn(c) => eprintln!(
                    "{name}:1:{c}: missing column (the header needs frequency, recency and T)"
                ),
                E::DuplicateColumn(c) => eprintln!("{name}:1:{c}: the column appears twice"),
                E::Empty => eprintln!("{name}:1: the file is empty (no header)"),
                E::Io(e) => eprintln!("{name}: {e}"),
            }
            return ExitCode::from(1);
        }
    };
    match rapport_analytics::fit_summary_table(&table) {
        Ok(fit) => match print_fit(&fit, json, "the file's unit") {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        },
        Err(e) => {
            eprintln!("{name}: cannot fit the models: {e}");
            ExitCode::from(1)
        }
    }
}

async fn clv_fit_db(app: &App, as_of: NaiveDate, json: bool) -> Result<ExitCode> {
    match rapport_app::analytics::fit_clv(app, as_of).await {
        Ok((fit, note)) => {
            if let Some(note) = note {
                eprintln!("warning: {note}");
            }
            print_fit(&fit, json, "days")?;
            Ok(ExitCode::SUCCESS)
        }
        Err(rapport_app::AppError::Conflict { message, .. }) => {
            eprintln!("error: {message}");
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}

/// Writes the scores CSV next to its destination, then renames it into
/// place: readers see the old file or the whole new one.
async fn export_patients(app: &App, file: &std::path::Path) -> Result<ExitCode> {
    let Some(format) = rapport_interop::table::Format::parse(&file.to_string_lossy()) else {
        eprintln!(
            "{}: the file name must end in .csv or .xlsx",
            file.display()
        );
        return Ok(ExitCode::from(2));
    };
    let out = std::io::BufWriter::new(
        std::fs::File::create(file).with_context(|| format!("cannot write {}", file.display()))?,
    );
    let (n, out) = rapport_app::export::patient_list(
        app,
        &rapport_app::audit::Actor::cli(),
        None,
        format,
        out,
    )
    .await?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    println!("{}: {n} patients", file.display());
    Ok(ExitCode::SUCCESS)
}

async fn export_scores(app: &App, file: &std::path::Path, as_of: NaiveDate) -> Result<ExitCode> {
    use std::io::Write;
    let started = Instant::now();
    let table = rapport_app::analytics::compute_scores(app, as_of).await?;
    if let Some(p) = &table.fit_problem {
        eprintln!("warning: {p}; the prediction columns are left empty where it applies");
    }
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .context("the export needs a file name")?;
    let tmp = dir.join(format!(".{base}.{}.tmp", std::process::id()));
    let written = (|| -> std::io::Result<u64> {
        let f = std::fs::File::create(&tmp)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        let n = rapport_app::analytics::write_scores_csv(&table, &mut w)?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        Ok(n)
    })();
    let n = match written.and_then(|n| std::fs::rename(&tmp, file).map(|()| n)) {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e).with_context(|| format!("cannot write {}", file.display()));
        }
    };
    let detail = serde_json::json!({"file": file.display().to_string(), "rows": n, "as_of": as_of})
        .to_string();
    rapport_app::audit::record_now(
        app,
        &rapport_app::audit::Actor::cli(),
        "export.scores",
        Some(detail),
    )
    .await?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Wrote the scores of {n} patients as of {as_of} to {} in {:.1} s",
        file.display(),
        started.elapsed().as_secs_f64()
    )?;
    Ok(ExitCode::SUCCESS)
}

async fn scores_refresh(app: &App, json: bool) -> Result<ExitCode> {
    let r = rapport_app::analytics::refresh_scores(app).await?;
    if json {
        let mut v: serde_json::Value = serde_json::from_str(&r.detail())?;
        v["job_id"] = r.job_id.into();
        v["refreshed_at"] = r.refreshed_at.to_rfc3339().into();
        println!("{v}");
    } else {
        println!(
            "Scores refreshed as of {}: {} patients ({} with predictions, {} at churn risk) in {:.2} s \
             (load {:.2} s, compute {:.2} s, store {:.2} s)",
            r.as_of,
            r.patients,
            r.predicted,
            r.churn_risk,
            r.duration.as_secs_f64(),
            r.load.as_secs_f64(),
            r.compute.as_secs_f64(),
            r.store.as_secs_f64()
        );
        if let Some(p) = &r.fit_problem {
            println!("  note: {p}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
