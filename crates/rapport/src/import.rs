//! `rapport import …` and `rapport export fhir`: files in and out, with a
//! progress bar on a terminal.

use std::fs::File;
use std::io::{BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use rapport_app::App;
use rapport_app::audit::Actor;
use rapport_app::import::{self, Options, Progress, RejectsCsv, Report, Sinks};
use rapport_interop::csv::{self as icsv, CsvOptions, Encoding, RowError};
use rapport_interop::xlsx;

#[derive(Subcommand)]
pub enum ImportCommand {
    /// Import patients from CSV or XLSX (upsert on patient_id).
    Patients {
        file: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Import visits from CSV or XLSX (upsert on visit_id; unknown
    /// patients are created).
    Visits {
        file: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Import FHIR R4 Bundle JSON, NDJSON or a folder of them (.gz too).
    Fhir {
        path: PathBuf,
        /// Import the valid resources; report the others in this CSV.
        #[arg(long, value_name = "REJECTS.csv")]
        skip_invalid: Option<PathBuf>,
        /// Print the report as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
pub struct Common {
    /// auto (UTF-8, UTF-8 with BOM, else GBK/GB18030), utf-8 or gbk.
    #[arg(long, default_value = "auto", value_parser = parse_encoding)]
    encoding: Encoding,
    /// Rename a column: SOURCE=TARGET (repeatable).
    #[arg(long = "map", value_name = "SOURCE=TARGET", value_parser = icsv::parse_map)]
    map: Vec<(String, String)>,
    /// Import the valid rows; write the invalid ones, with a reason
    /// column, to this CSV.
    #[arg(long, value_name = "REJECTS.csv")]
    skip_invalid: Option<PathBuf>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

fn parse_encoding(s: &str) -> Result<Encoding, String> {
    s.parse()
}

/// Counts the bytes read, for the progress bar's share and ETA.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The progress bar: rows, rows/s, share of the file and ETA, redrawn on
/// stderr five times a second while stderr is a terminal.
struct Bar {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Bar {
    fn start(progress: Arc<Progress>, bytes: Arc<AtomicU64>, total: u64) -> Bar {
        let stop = Arc::new(AtomicBool::new(false));
        if !std::io::stderr().is_terminal() {
            return Bar { stop, handle: None };
        }
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let started = Instant::now();
            while !s.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                let rows = progress.rows();
                let secs = started.elapsed().as_secs_f64().max(1e-3);
                let rate = rows as f64 / secs;
                let done = bytes.load(Ordering::Relaxed);
                let mut line = format!("\r  {rows} rows  {rate:.0} rows/s");
                if total > 0 && done > 0 {
                    let share = (done as f64 / total as f64).min(1.0);
                    let eta = secs * (1.0 - share) / share.max(1e-9);
                    line.push_str(&format!(
                        "  {:.0} %  ETA {}:{:02}",
                        share * 100.0,
                        eta as u64 / 60,
                        eta as u64 % 60
                    ));
                }
                let rejected = progress.rejected.load(Ordering::Relaxed);
                if rejected > 0 {
                    line.push_str(&format!("  {rejected} invalid"));
                }
                let mut e = std::io::stderr().lock();
                let _ = write!(e, "{line}\x1b[K");
                let _ = e.flush();
            }
            let _ = write!(std::io::stderr().lock(), "\r\x1b[K");
        });
        Bar {
            stop,
            handle: Some(handle),
        }
    }

    fn end(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn print_error(e: &RowError) {
    eprintln!("{e}");
}

/// Runs `import patients|visits|fhir`.
pub async fn run(app: &App, cmd: &ImportCommand) -> Result<ExitCode> {
    let progress = Arc::new(Progress::default());
    let bytes = Arc::new(AtomicU64::new(0));
    let (file, skip, json) = match cmd {
        ImportCommand::Patients { file, common } | ImportCommand::Visits { file, common } => {
            (file, &common.skip_invalid, common.json)
        }
        ImportCommand::Fhir {
            path,
            skip_invalid,
            json,
        } => (path, skip_invalid, *json),
    };
    let name = file.display().to_string();
    let opts = Options {
        skip_invalid: skip.is_some(),
        ..Options::default()
    };
    let mut rejects = match skip {
        Some(p) => Some(RejectsCsv::new(std::io::BufWriter::new(
            File::create(p).with_context(|| format!("cannot write {}", p.display()))?,
        ))),
        None => None,
    };
    let mut on_error = print_error;
    let actor = Actor::cli();
    let report = match cmd {
        ImportCommand::Fhir { path, .. } => {
            let batch = read_fhir(path)?;
            let bar = Bar::start(progress.clone(), bytes.clone(), 0);
            let sinks = Sinks {
                progress: &progress,
                rejects: rejects.as_mut().map(|r| r as &mut dyn import::Rejects),
                on_error: &mut on_error,
            };
            let r = import::fhir(app, &actor, &name, &batch, &opts, sinks).await;
            bar.end();
            r?
        }
        ImportCommand::Patients { file, common } | ImportCommand::Visits { file, common } => {
            let csv_opts = CsvOptions {
                file: name.clone(),
                encoding: common.encoding,
                map: common.map.clone(),
                today: app.today(),
            };
            let total = std::fs::metadata(file)
                .with_context(|| format!("cannot read {name}"))?
                .len();
            let mut head = [0u8; 4];
            let n = File::open(file)
                .and_then(|mut f| f.read(&mut head))
                .with_context(|| format!("cannot read {name}"))?;
            let is_xlsx = xlsx::looks_like_xlsx(&head[..n]);
            let patients = matches!(cmd, ImportCommand::Patients { .. });
            let bar = Bar::start(
                progress.clone(),
                bytes.clone(),
                if is_xlsx { 0 } else { total },
            );
            let sinks = Sinks {
                progress: &progress,
                rejects: rejects.as_mut().map(|r| r as &mut dyn import::Rejects),
                on_error: &mut on_error,
            };
            let header_failed = |errs: Vec<RowError>| {
                for e in &errs {
                    eprintln!("{e}");
                }
            };
            let r = if is_xlsx {
                if patients {
                    match xlsx::read_patients(file, &csv_opts) {
                        Ok(rows) => import::patients(app, &actor, &name, rows, &opts, sinks).await,
                        Err(e) => {
                            bar.end();
                            header_failed(e);
                            return Ok(ExitCode::from(1));
                        }
                    }
                } else {
                    match xlsx::read_visits(file, &csv_opts) {
                        Ok(rows) => import::visits(app, &actor, &name, rows, &opts, sinks).await,
                        Err(e) => {
                            bar.end();
                            header_failed(e);
                            return Ok(ExitCode::from(1));
                        }
                    }
                }
            } else {
                let input = Counting {
                    inner: BufReader::with_capacity(1 << 20, File::open(file)?),
                    read: bytes.clone(),
                };
                if patients {
                    match icsv::read_patients(input, &csv_opts) {
                        Ok(rows) => import::patients(app, &actor, &name, rows, &opts, sinks).await,
                        Err(e) => {
                            bar.end();
                            header_failed(e);
                            return Ok(ExitCode::from(1));
                        }
                    }
                } else {
                    match icsv::read_visits(input, &csv_opts) {
                        Ok(rows) => import::visits(app, &actor, &name, rows, &opts, sinks).await,
                        Err(e) => {
                            bar.end();
                            header_failed(e);
                            return Ok(ExitCode::from(1));
                        }
                    }
                }
            };
            bar.end();
            r?
        }
    };
    if let Some(r) = rejects {
        r.finish()?.flush()?;
    }
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    print_report(&report, skip.as_deref(), json)?;
    if import::moves_scores(&report) {
        // Many new visits move the scores: refresh them now rather than
        // at night.
        let r = rapport_app::analytics::refresh_scores(app).await?;
        if !json {
            println!("Scores refreshed for {} patients.", r.patients);
        }
    }
    Ok(if report.rejected > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_report(r: &Report, rejects: Option<&Path>, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    let secs = r.elapsed_ms as f64 / 1000.0;
    let rate = r.rows_read as f64 / secs.max(1e-3);
    if !r.committed {
        eprintln!(
            "{}: nothing imported: {} invalid row(s) of {}. Fix them, or import the valid rows with --skip-invalid REJECTS.csv.",
            r.file, r.rejected, r.rows_read
        );
        return Ok(());
    }
    let mut line = format!(
        "{}: {} rows: {} inserted, {} updated, {} unchanged",
        r.file, r.rows_read, r.inserted, r.updated, r.unchanged
    );
    if r.rejected > 0 {
        line.push_str(&format!(", {} rejected", r.rejected));
        if let Some(p) = rejects {
            line.push_str(&format!(" (written to {})", p.display()));
        }
    }
    if r.patients_created > 0 {
        line.push_str(&format!("; {} new patients", r.patients_created));
    }
    if r.duplicates_flagged > 0 {
        line.push_str(&format!(
            "; {} probable duplicates flagged for review",
            r.duplicates_flagged
        ));
    }
    line.push_str(&format!(" in {secs:.1} s ({rate:.0} rows/s)"));
    println!("{line}");
    Ok(())
}

/// Reads a FHIR file or a folder of them (recursively; `.json`,
/// `.ndjson`, and both gzipped).
fn read_fhir(path: &Path) -> Result<rapport_interop::fhir::FhirBatch> {
    let mut files = Vec::new();
    if std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .is_file()
    {
        files.push(path.to_path_buf());
    } else {
        collect(path, &mut files)?;
    }
    if files.is_empty() {
        bail!("{}: no .json or .ndjson files", path.display());
    }
    files.sort();
    let mut reader = rapport_interop::fhir::FhirReader::new();
    for f in files {
        let bytes = std::fs::read(&f).with_context(|| format!("cannot read {}", f.display()))?;
        reader
            .add(&f.display().to_string(), &bytes)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    reader.finish().map_err(|e| anyhow::anyhow!("{e}"))
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_dir() {
        for e in std::fs::read_dir(path)? {
            collect(&e?.path(), out)?;
        }
    } else {
        let n = path.to_string_lossy().to_ascii_lowercase();
        let n = n.strip_suffix(".gz").unwrap_or(&n);
        if n.ends_with(".json") || n.ends_with(".ndjson") {
            out.push(path.to_path_buf());
        }
    }
    Ok(())
}
