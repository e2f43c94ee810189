//! Command-line wiring: each subcommand parses its flags and calls into the library.
//! This is the only place that reads the wall clock, the environment and signals.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use leadguard::config::{Roster, Rules};
use leadguard::pipeline::{self, Origin, Pipeline};
use leadguard::telemetry::{self, LogFormat};
use leadguard::time::Timestamp;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "leadguard",
    version,
    about = "Real-time collision (撞单) detection on sales activity streams"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_parser = ["text", "json"], default_value = "text")]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct IoArgs {
    /// Rules directory (default: ./rules if present, else the rules built into the binary).
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Roster of reps (YAML). Default: none, or the sample roster with the sample stream.
    #[arg(long)]
    roster: Option<PathBuf>,
    /// Source mapping (a `sources:` entry of the rules) for inputs not in the canonical shape.
    #[arg(long)]
    source: Option<String>,
    /// Where output events go (JSON lines). Default: stdout.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Where refused input goes (JSON lines, with the reason and the original bytes).
    #[arg(long, default_value = "dead-letters.jsonl")]
    dead_letters: PathBuf,
    /// Write the metrics (Prometheus text format) here when the run ends.
    #[arg(long)]
    metrics_out: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the engine: reads JSON lines (default: the bundled sample stream), writes alerts.
    Run {
        /// Input file of JSON lines, or - for stdin. Default: the bundled sample stream.
        #[arg(long, short)]
        input: Option<String>,
        /// Live mode: the wall clock refuses future-dated events and fires timers while the
        /// input is quiet. Without it, event time drives the clock.
        #[arg(long)]
        live: bool,
        #[command(flatten)]
        io: IoArgs,
        #[command(flatten)]
        kafka: leadguard::kafka::KafkaFlags,
    },
    /// Replay a history as fast as possible, event time driving the clock (for backtesting).
    Replay {
        /// Input file of JSON lines, or - for stdin.
        #[arg(long, short)]
        input: String,
        #[command(flatten)]
        io: IoArgs,
    },
    /// Check a rules directory (or file) and report every error with file and line.
    Validate {
        /// Rules directory or file.
        #[arg(default_value = "rules")]
        path: PathBuf,
        /// Also check a roster file.
        #[arg(long)]
        roster: Option<PathBuf>,
    },
    /// Write a realistic generated stream (JSON lines) and its roster.
    Gen {
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 2_000)]
        customers: usize,
        #[arg(long, default_value_t = 60)]
        reps: usize,
        #[arg(long, default_value_t = 10_000)]
        events: usize,
        #[arg(long, default_value_t = 14)]
        days: u32,
        /// Fraction of events delivered late (within --max-delay).
        #[arg(long, default_value_t = 0.02)]
        out_of_order: f64,
        /// How late at most, e.g. 60s.
        #[arg(long, default_value = "60s")]
        max_delay: String,
        /// Fraction of events delivered twice.
        #[arg(long, default_value_t = 0.01)]
        duplicates: f64,
        /// Fraction of bad lines (malformed JSON, missing fields, unknown kinds, bad times).
        #[arg(long, default_value_t = 0.0)]
        malformed: f64,
        /// Where the events go. Default: stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Where the roster goes (YAML).
        #[arg(long)]
        roster_out: Option<PathBuf>,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init_logging(if cli.log_format == "json" {
        LogFormat::Json
    } else {
        LogFormat::Text
    });
    let result = match cli.command {
        Command::Run { kafka, io, .. } if kafka.config.is_some() => run_kafka(&kafka, &io),
        Command::Run {
            input, live, io, ..
        } => run(input, live, io),
        Command::Replay { input, io } => replay(input, io),
        Command::Validate { path, roster } => return validate(&path, roster.as_deref()),
        Command::Gen {
            seed,
            customers,
            reps,
            events,
            days,
            out_of_order,
            max_delay,
            duplicates,
            malformed,
            output,
            roster_out,
        } => gen(
            leadguard::gen::GenConfig {
                seed,
                customers,
                reps,
                events,
                days,
                out_of_order,
                max_delay_ms: match leadguard::time::parse_span(&max_delay) {
                    Ok(s) => s.as_millis(),
                    Err(e) => {
                        eprintln!("leadguard: --max-delay: {e}");
                        return ExitCode::from(2);
                    }
                },
                duplicates,
                malformed,
                ..leadguard::gen::GenConfig::default()
            },
            output,
            roster_out,
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output went away (`leadguard run | head`): not an error.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<io::Error>()
                    .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("leadguard: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_rules(path: Option<&Path>) -> Result<Rules> {
    let default = Path::new("rules");
    let path = match path {
        Some(p) => p,
        None if default.is_dir() => default,
        None => {
            tracing::info!("no ./rules directory; using the rules built into the binary");
            return Ok(Rules::embedded());
        }
    };
    Rules::load_dir(path).map_err(|errs| {
        let lines: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        anyhow::anyhow!(
            "the rules in {} have {} problem(s); nothing was processed:\n{}",
            path.display(),
            errs.len(),
            lines.join("\n")
        )
    })
}

fn load_roster(path: Option<&Path>, sample: bool) -> Result<Roster> {
    match path {
        Some(p) => Roster::load(p).map_err(|errs| {
            let lines: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
            anyhow::anyhow!("the roster has problems:\n{}", lines.join("\n"))
        }),
        None if sample => Roster::parse(pipeline::SAMPLE_ROSTER, Path::new("sample/roster.yaml"))
            .map_err(|_| anyhow::anyhow!("the bundled sample roster is invalid")),
        None => Ok(Roster::default()),
    }
}

fn create(path: &Path, what: &str) -> Result<BufWriter<File>> {
    Ok(BufWriter::new(File::create(path).with_context(|| {
        format!("cannot create the {what} file {}", path.display())
    })?))
}

fn output_writer(path: Option<&Path>) -> Result<Box<dyn Write + Send>> {
    Ok(match path {
        Some(p) => Box::new(create(p, "output")?),
        None => Box::new(BufWriter::with_capacity(1 << 16, io::stdout())),
    })
}

fn open_input(input: &str) -> Result<Box<dyn BufRead + Send>> {
    Ok(if input == "-" {
        Box::new(BufReader::with_capacity(1 << 16, io::stdin()))
    } else {
        Box::new(BufReader::with_capacity(
            1 << 16,
            File::open(input).with_context(|| format!("cannot open the input {input}"))?,
        ))
    })
}

fn finish<O: Write, D: Write>(p: &mut Pipeline<O, D>, io: &IoArgs, started: Instant) -> Result<()> {
    p.flush()?;
    let stats = p.stats();
    let size = p.engine.state_size();
    if let Some(path) = &io.metrics_out {
        std::fs::write(path, telemetry::render(&stats, &p.counts, size))
            .with_context(|| format!("cannot write metrics to {}", path.display()))?;
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!("{}", pipeline::summary(&stats, &p.counts, size));
    eprintln!(
        "  {:.0} lines/s over {:.2}s; outputs: {}; dead letters: {}",
        p.counts.lines as f64 / secs.max(1e-9),
        secs,
        io.output
            .as_ref()
            .map_or("stdout".to_string(), |p| p.display().to_string()),
        io.dead_letters.display()
    );
    Ok(())
}

fn replay(input: String, io: IoArgs) -> Result<()> {
    let rules = Arc::new(load_rules(io.rules.as_deref())?);
    let roster = load_roster(io.roster.as_deref(), false)?;
    let mut reader = open_input(&input)?;
    let mut p = Pipeline::new(
        rules,
        &roster,
        io.source.as_deref(),
        output_writer(io.output.as_deref())?,
        create(&io.dead_letters, "dead-letter")?,
    )
    .map_err(anyhow::Error::msg)?;
    let started = Instant::now();
    pipeline::replay(&mut p, &mut reader, &input)?;
    finish(&mut p, &io, started)
}

/// `run --config FILE`: Kafka mode (`--rules`/`--roster` override the file's).
fn run_kafka(flags: &leadguard::kafka::KafkaFlags, io: &IoArgs) -> Result<()> {
    let path = flags.config.as_deref().expect("checked by the caller");
    let env = std::env::vars().collect();
    let settings = leadguard::kafka::KafkaSettings::load(path, &env, flags).map_err(|errs| {
        let lines: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        anyhow::anyhow!(
            "the Kafka settings have problems; nothing was started:\n{}",
            lines.join("\n")
        )
    })?;
    let rules = Arc::new(load_rules(
        io.rules.as_deref().or(settings.rules.as_deref()),
    )?);
    let roster = load_roster(io.roster.as_deref().or(settings.roster.as_deref()), false)?;
    leadguard::kafka::run(settings, rules, roster)
}

fn wall_clock() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Timestamp(ms)
}

/// One line handed from the reader thread to the engine loop.
struct Line {
    bytes: Vec<u8>,
    truncated: bool,
    number: u64,
}

fn run(input: Option<String>, live: bool, io: IoArgs) -> Result<()> {
    let sample = input.is_none();
    let rules = Arc::new(load_rules(io.rules.as_deref())?);
    let roster = load_roster(io.roster.as_deref(), sample)?;
    let input_name = input.clone().unwrap_or_else(|| "sample".to_string());
    let reader: Box<dyn BufRead + Send> = match &input {
        None => Box::new(pipeline::SAMPLE_STREAM),
        Some(name) => open_input(name)?,
    };
    let limit = rules.settings.max_message_bytes;
    let mut p = Pipeline::new(
        rules,
        &roster,
        io.source.as_deref(),
        output_writer(io.output.as_deref())?,
        create(&io.dead_letters, "dead-letter")?,
    )
    .map_err(anyhow::Error::msg)?;
    if sample {
        eprintln!("leadguard: no input given; running the bundled sample stream (a fortnight of activity from a call center, an email gateway, WeCom and the CRM)");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let started = Instant::now();
    runtime.block_on(async {
        // The reader is blocking IO on its own thread; a bounded channel gives backpressure.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<io::Result<Line>>(1024);
        let reader_task = tokio::task::spawn_blocking(move || {
            let mut reader = reader;
            let mut number = 0;
            loop {
                let mut bytes = Vec::new();
                let item = match pipeline::read_line_limited(&mut reader, &mut bytes, limit) {
                    Ok(None) => return,
                    Ok(Some(truncated)) => {
                        number += 1;
                        Ok(Line {
                            bytes,
                            truncated,
                            number,
                        })
                    }
                    Err(e) => Err(e),
                };
                let failed = item.is_err();
                if tx.blocking_send(item).is_err() || failed {
                    return;
                }
            }
        });
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let shutdown = shutdown_signal();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                _ = &mut shutdown => {
                    tracing::info!("shutdown requested; finishing what was read");
                    break;
                }
                line = rx.recv() => match line {
                    None => break,
                    Some(Err(e)) => return Err(anyhow::Error::new(e).context("reading the input failed")),
                    Some(Ok(line)) => {
                        let now = live.then(wall_clock);
                        p.handle_message(&line.bytes, line.truncated, Origin { input: &input_name, line: line.number }, now)?;
                        if live && rx.is_empty() {
                            p.flush()?;
                        }
                    }
                },
                _ = tick.tick(), if live => {
                    p.handle_timeout(wall_clock())?;
                    p.flush()?;
                }
            }
        }
        drop(rx);
        reader_task.abort();
        Ok::<(), anyhow::Error>(())
    })?;
    finish(&mut p, &io, started)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn validate(path: &Path, roster: Option<&Path>) -> ExitCode {
    let mut failed = false;
    match Rules::load_dir(path) {
        Ok(rules) => println!(
            "{}: ok ({} collision rules, {} sources; protection {}, allowed lateness {}, time zone {})",
            path.display(),
            rules.collisions.len(),
            rules.sources.len(),
            leadguard::time::format_span(rules.ownership.protection),
            leadguard::time::format_span(rules.settings.allowed_lateness),
            rules.settings.time_zone
        ),
        Err(errs) => {
            for e in &errs {
                println!("{e}");
            }
            println!("{}: {} problem(s)", path.display(), errs.len());
            failed = true;
        }
    }
    if let Some(r) = roster {
        match Roster::load(r) {
            Ok(roster) => println!("{}: ok ({} reps)", r.display(), roster.reps.len()),
            Err(errs) => {
                for e in &errs {
                    println!("{e}");
                }
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn gen(
    cfg: leadguard::gen::GenConfig,
    output: Option<PathBuf>,
    roster_out: Option<PathBuf>,
) -> Result<()> {
    if !(0.0..=1.0).contains(&cfg.out_of_order)
        || !(0.0..=1.0).contains(&cfg.duplicates)
        || !(0.0..=1.0).contains(&cfg.malformed)
    {
        bail!("--out-of-order, --duplicates and --malformed are fractions from 0 to 1");
    }
    let mut out = output_writer(output.as_deref())?;
    let summary = leadguard::gen::write_events(&cfg, &mut out)?;
    out.flush()?;
    if let Some(path) = roster_out {
        std::fs::write(&path, leadguard::gen::roster_yaml(&cfg))
            .with_context(|| format!("cannot write the roster to {}", path.display()))?;
    }
    eprintln!(
        "leadguard gen: {} events ({} duplicates, {} out of order, {} malformed)",
        summary.events, summary.duplicates, summary.out_of_order, summary.malformed
    );
    Ok(())
}
