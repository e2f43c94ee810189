//! Command-line wiring: each subcommand parses its flags and calls into the library.
//! This is the only place that reads the wall clock, the environment and signals.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use leadguard::api::{self, ApiState, Tokens};
use leadguard::config::{Roster, Rules};
use leadguard::host::{self, EngineHandle};
use leadguard::pipeline::{self, Origin, Pipeline};
use leadguard::telemetry::{self, LogFormat, Metrics, FILE_PARTITION};
use leadguard::time::wall_clock;
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
    /// Where output events go (JSON lines). Default (or -): stdout.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Where refused input goes (JSON lines, with the reason and the original bytes); - for
    /// stdout when the outputs go to a file.
    #[arg(long, default_value = "dead-letters.jsonl")]
    dead_letters: PathBuf,
    /// Write the metrics (Prometheus text format) here when the run ends.
    #[arg(long)]
    metrics_out: Option<PathBuf>,
}

/// The operator surfaces of a running engine: the HTTP API and rules hot reload.
#[derive(clap::Args, Clone)]
struct ServeArgs {
    /// Serve the HTTP API (metrics, health, customers, pre-contact check) on this address,
    /// e.g. 127.0.0.1:9464 or 0.0.0.0:9464. Off by default.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Bearer tokens for the API's customer routes (YAML; see the README's API reference).
    /// Without it, /customers and /check refuse every request.
    #[arg(long, value_name = "FILE", requires = "listen")]
    api_tokens: Option<PathBuf>,
    /// How often to look for changed rules files and a changed roster file (e.g. 5s); 0s
    /// turns polling off (SIGHUP still reloads both).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_poll)]
    rules_poll: Duration,
    /// Deliver collision alerts to WeCom, DingTalk, Feishu and Slack webhooks (YAML; see the
    /// README's Notifications section). `replay` never notifies.
    #[arg(long, value_name = "FILE")]
    notifications: Option<PathBuf>,
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
        serve: ServeArgs,
        #[command(flatten)]
        kafka: leadguard::kafka::KafkaFlags,
    },
    /// Replay a history as fast as possible, event time driving the clock (for backtesting).
    Replay {
        /// Input file of JSON lines, or - for stdin.
        #[arg(long, short)]
        input: String,
        /// The input is a stream read this far, not a whole history: ownership decisions still
        /// waiting for the allowed lateness at its end are left pending, as a running engine
        /// (Kafka mode) leaves them. Without it, the end of the input is the end of history.
        #[arg(long)]
        stream_continues: bool,
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
        #[arg(long, default_value_t = 2_000, value_parser = at_least_one)]
        customers: usize,
        #[arg(long, default_value_t = 60, value_parser = at_least_one)]
        reps: usize,
        #[arg(long, default_value_t = 10_000)]
        events: usize,
        #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(u32).range(1..))]
        days: u32,
        /// Fraction of events delivered late (within --max-delay).
        #[arg(long, default_value_t = 0.02, value_parser = fraction)]
        out_of_order: f64,
        /// How late at most, e.g. 60s.
        #[arg(long, default_value = "60s")]
        max_delay: String,
        /// Fraction of events delivered twice.
        #[arg(long, default_value_t = 0.01, value_parser = fraction)]
        duplicates: f64,
        /// Fraction of bad lines (malformed JSON, missing fields, unknown kinds, bad times).
        #[arg(long, default_value_t = 0.0, value_parser = fraction)]
        malformed: f64,
        /// Where the events go. Default (or -): stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Where the roster goes (YAML).
        #[arg(long)]
        roster_out: Option<PathBuf>,
        /// Write events stamped with the wall clock, --rate per second, until stopped (for
        /// demos against a running engine). The stream repeats with new event ids.
        #[arg(long)]
        live: bool,
        /// Lines per second in --live mode.
        #[arg(long, default_value_t = 20.0, requires = "live", value_parser = per_second)]
        rate: f64,
    },
    /// Count an output stream (collisions per team, rep pair, day, rule; reclaims and
    /// reassignments) as tables on stdout and optionally as an HTML page with charts.
    Report {
        /// Outputs of `run`/`replay` (CloudEvents JSON lines), or - for stdin.
        #[arg(
            long,
            short,
            required_unless_present = "config",
            conflicts_with = "config"
        )]
        input: Option<String>,
        /// Read the outputs from Kafka instead: the Kafka settings file of `run --config`
        /// (brokers, security); by default its alerts and ownership-changes topics are read
        /// from the beginning to their current end.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// With --config: the topic(s) to read instead of the file's output topics.
        #[arg(long, requires = "config")]
        topic: Vec<String>,
        /// Also write a self-contained HTML page with charts here.
        #[arg(long)]
        html: Option<PathBuf>,
        /// How many rep pairs, repeat offenders and customers to list.
        #[arg(long, default_value_t = leadguard::report::DEFAULT_TOP)]
        top: usize,
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
        Command::Run {
            kafka, io, serve, ..
        } if kafka.config.is_some() => run_kafka(&kafka, &io, serve),
        Command::Run {
            input,
            live,
            io,
            serve,
            ..
        } => run(input, live, io, serve),
        Command::Replay {
            input,
            stream_continues,
            io,
        } => replay(input, stream_continues, io),
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
            live,
            rate,
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
            live.then_some(rate),
        ),
        Command::Report {
            input,
            config,
            topic,
            html,
            top,
        } => match (input, config) {
            (Some(input), _) => report(&input, html.as_deref(), top),
            (None, Some(config)) => report_topics(&config, &topic, html.as_deref(), top),
            (None, None) => unreachable!("clap requires one of them"),
        },
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
            // Errors can quote configuration and input: masked like every log line.
            eprintln!(
                "leadguard: {}",
                telemetry::mask::mask_text(&format!("{e:#}"))
            );
            ExitCode::FAILURE
        }
    }
}

/// The rules directory (or file) `--rules` names, else `./rules` when it exists; `None` means
/// the rules built into the binary.
fn rules_path(path: Option<&Path>) -> Option<PathBuf> {
    let default = Path::new("rules");
    match path {
        Some(p) => Some(p.to_path_buf()),
        None if default.is_dir() => Some(default.to_path_buf()),
        None => None,
    }
}

fn load_rules(path: Option<&Path>) -> Result<Rules> {
    let Some(path) = rules_path(path) else {
        tracing::info!("no ./rules directory; using the rules built into the binary");
        return Ok(Rules::embedded());
    };
    Rules::load_dir(&path).map_err(|errs| {
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

/// `-` as an output path is standard output, as `-` is standard input for `--input`.
fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

fn output_writer(path: Option<&Path>) -> Result<Box<dyn Write + Send>> {
    Ok(match path {
        Some(p) if !is_stdout(p) => Box::new(create(p, "output")?),
        _ => Box::new(BufWriter::with_capacity(1 << 16, io::stdout())),
    })
}

/// The dead-letter file, or standard output when it is `-` and the outputs go to a file.
fn dead_letter_writer(io: &IoArgs) -> Result<Box<dyn Write + Send>> {
    if !is_stdout(&io.dead_letters) {
        return Ok(Box::new(create(&io.dead_letters, "dead-letter")?));
    }
    if io.output.as_deref().is_none_or(is_stdout) {
        anyhow::bail!(
            "outputs and dead letters can't both go to standard output: name a file for one \
             of them (`--output FILE` or `--dead-letters FILE`)"
        );
    }
    Ok(Box::new(BufWriter::with_capacity(1 << 16, io::stdout())))
}

/// How the summary names where something was written.
fn shown(path: &Path) -> String {
    if is_stdout(path) {
        "stdout".to_string()
    } else {
        path.display().to_string()
    }
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

fn finish<O: Write, D: Write>(
    p: &mut Pipeline<O, D>,
    io: &IoArgs,
    started: Instant,
    metrics: &Metrics,
) -> Result<()> {
    p.flush()?;
    let stats = p.stats();
    let size = p.engine.state_size();
    if let Some(path) = &io.metrics_out {
        metrics.report_partition(FILE_PARTITION, p.report(0));
        std::fs::write(path, metrics.render())
            .with_context(|| format!("cannot write metrics to {}", path.display()))?;
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{}",
        pipeline::summary(&stats, &p.counts, p.ingest.dropped_identifiers, size)
    );
    eprintln!(
        "  {:.0} lines/s over {:.2}s; outputs: {}; dead letters: {}",
        p.counts.lines as f64 / secs.max(1e-9),
        secs,
        io.output.as_deref().map_or("stdout".to_string(), shown),
        shown(&io.dead_letters)
    );
    Ok(())
}

fn replay(input: String, stream_continues: bool, io: IoArgs) -> Result<()> {
    let rules = Arc::new(load_rules(io.rules.as_deref())?);
    let roster = load_roster(io.roster.as_deref(), false)?;
    let mut reader = open_input(&input)?;
    let mut p = Pipeline::new(
        rules,
        &roster,
        io.source.as_deref(),
        output_writer(io.output.as_deref())?,
        dead_letter_writer(&io)?,
    )
    .map_err(anyhow::Error::msg)?;
    let metrics = Metrics::new();
    // A replay runs on event time: only the alert counts are meaningful, not latencies.
    p.attach_metrics(metrics.clone(), false);
    p.set_stream_continues(stream_continues);
    let started = Instant::now();
    pipeline::replay(&mut p, &mut reader, &input)?;
    finish(&mut p, &io, started, &metrics)
}

/// `run --config FILE`: Kafka mode (`--rules`/`--roster` override the file's). The HTTP API,
/// metrics and notifications run on a small async runtime beside the Kafka stages.
fn run_kafka(flags: &leadguard::kafka::KafkaFlags, io: &IoArgs, serve: ServeArgs) -> Result<()> {
    let path = flags.config.as_deref().expect("checked by the caller");
    let settings = load_kafka_settings(path, flags)?;
    let rules_dir = io.rules.as_deref().or(settings.rules.as_deref());
    let rules_at = rules_path(rules_dir);
    let rules = Arc::new(load_rules(rules_dir)?);
    let roster = load_roster(io.roster.as_deref().or(settings.roster.as_deref()), false)?;
    let notify_config = load_notifications(serve.notifications.as_deref())?;
    let tokens = Arc::new(load_tokens(serve.api_tokens.as_deref())?);
    // One thread drives the runtime (its IO and timers); this thread runs the Kafka stages and
    // hands work to the runtime through its handle.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let rt = runtime.handle().clone();
    let (stop_runtime, runtime_stopped) = tokio::sync::oneshot::channel::<()>();
    let driver = std::thread::Builder::new()
        .name("leadguard-edge".into())
        .spawn(move || {
            runtime.block_on(async {
                let _ = runtime_stopped.await;
            })
        })
        .context("cannot start the API thread")?;
    let metrics = serve.listen.is_some().then(Metrics::new);
    let engines = serve.listen.is_some().then(EngineHandle::new);
    let (stop_api_tx, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = match (&serve.listen, &engines, &metrics) {
        (Some(addr), Some(engine), Some(metrics)) => Some(rt.block_on(start_api(
            addr,
            ApiState {
                engine: engine.clone(),
                tokens,
                metrics: metrics.clone(),
            },
            api_stopped,
        ))?),
        _ => None,
    };
    let notifier = notify_config.map(|c| {
        let _in_runtime = rt.enter();
        let (handle, task) = leadguard::notify::Notifier::start(c, &roster);
        let stats = handle.stats();
        // Delivery counters reach the metrics every few seconds, as in file mode.
        let counting = metrics.clone().map(|metrics| {
            let stats = stats.clone();
            rt.spawn(async move {
                let mut before = stats.snapshot();
                let mut every = tokio::time::interval(REPORT_EVERY);
                loop {
                    every.tick().await;
                    let now = stats.snapshot();
                    metrics.add_notifications(&before, &now);
                    before = now;
                }
            })
        });
        (handle, task, counting)
    });
    let observers = leadguard::kafka::Observers {
        metrics: metrics.clone(),
        notifier: notifier.as_ref().map(|(h, _, _)| h.clone()),
    };
    // Rules reloads, as in file mode: polling and SIGHUP.
    let (rules_tx, rules_rx) = tokio::sync::watch::channel(rules.clone());
    let poll = (!serve.rules_poll.is_zero()).then_some(serve.rules_poll);
    let watcher = rt.spawn(leadguard::rules_watch::watch(
        rules_at,
        poll,
        metrics.clone().unwrap_or_else(Metrics::new),
        rules_tx,
    ));
    let roster_at = io.roster.clone().or(settings.roster.clone());
    let (roster_tx, roster_rx) = tokio::sync::watch::channel(Arc::new(roster.clone()));
    let roster_watcher = roster_at.map(|path| {
        rt.spawn(leadguard::rules_watch::watch_roster(
            path,
            poll,
            metrics.clone().unwrap_or_else(Metrics::new),
            roster_tx,
        ))
    });
    let reloads = leadguard::kafka::Reloads {
        rules: Some(rules_rx),
        roster: roster_watcher.is_some().then_some(roster_rx),
    };
    let result = leadguard::kafka::run(settings, rules, roster, observers, engines, reloads);
    watcher.abort();
    if let Some(w) = roster_watcher {
        w.abort();
    }
    if let Some((handle, task, counting)) = notifier {
        // The stages are gone, and with them every other handle: what is queued goes out.
        drop(handle);
        rt.block_on(async {
            if tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .is_err()
            {
                tracing::warn!("notifications still being delivered were abandoned at shutdown");
            }
        });
        if let Some(c) = counting {
            c.abort();
        }
    }
    let _ = stop_api_tx.send(());
    if let Some(server) = server {
        rt.block_on(stop_api(server));
    }
    let _ = stop_runtime.send(());
    let _ = driver.join();
    result
}

/// Reads the Kafka settings file with the environment and flags over it, reporting every problem.
fn load_kafka_settings(
    path: &Path,
    flags: &leadguard::kafka::KafkaFlags,
) -> Result<leadguard::kafka::KafkaSettings> {
    let env = std::env::vars().collect();
    leadguard::kafka::KafkaSettings::load(path, &env, flags).map_err(|errs| {
        let lines: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        anyhow::anyhow!(
            "{}: the Kafka settings have problems; nothing was started:\n{}",
            path.display(),
            lines.join("\n")
        )
    })
}

/// Reads the notifications file, if one is given, reporting every problem in it.
fn load_notifications(path: Option<&Path>) -> Result<Option<leadguard::notify::NotifyConfig>> {
    let Some(path) = path else { return Ok(None) };
    match leadguard::notify::NotifyConfig::load(path) {
        Ok(c) => Ok(Some(c)),
        Err(diags) => {
            for d in &diags {
                eprintln!("{d}");
            }
            bail!(
                "{}: {} problem(s) in the notifications file",
                path.display(),
                diags.len()
            );
        }
    }
}

type ApiTask = tokio::task::JoinHandle<io::Result<()>>;

/// Serves the HTTP API on `addr` until `stop` fires (or its sender is dropped).
async fn start_api(
    addr: &str,
    state: ApiState,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> Result<ApiTask> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (--listen)"))?;
    let local = listener.local_addr().context("the API's address")?;
    if state.tokens.is_empty() {
        tracing::warn!("no --api-tokens: /customers and /check refuse every request");
    }
    tracing::info!("API listening on http://{local}");
    Ok(tokio::spawn(api::serve(listener, state, async {
        let _ = stop.await;
    })))
}

/// Waits for the API server to stop, logging how it ended.
async fn stop_api(server: ApiTask) {
    match server.await {
        Ok(Err(e)) => tracing::warn!("the API server stopped with an error: {e}"),
        Err(e) => tracing::warn!("the API server task failed: {e}"),
        Ok(Ok(())) => {}
    }
}

/// One line handed from the reader thread to the engine loop.
struct Line {
    bytes: Vec<u8>,
    truncated: bool,
    number: u64,
    received: Instant,
}

/// Lines processed in one go (one tracing span) before the loop looks at queries, reloads and
/// signals again.
const BATCH: usize = 256;

/// How often the engine loop reports its counters and state sizes to the metrics.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// `--rules-poll`: a duration with a unit; `0s` turns polling off.
fn parse_poll(text: &str) -> Result<Duration, String> {
    let span = leadguard::time::parse_span(text).map_err(|e| e.to_string())?;
    Ok(Duration::from_millis(span.as_millis().max(0) as u64))
}

fn load_tokens(path: Option<&Path>) -> Result<Tokens> {
    let Some(path) = path else {
        return Ok(Tokens::none());
    };
    Tokens::load(path, |var| std::env::var(var).ok()).map_err(|errs| {
        let lines: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        anyhow::anyhow!(
            "the API tokens file has {} problem(s):\n{}",
            errs.len(),
            lines.join("\n")
        )
    })
}

/// `run` on a file, stdin or the bundled sample: one engine in one task. Between batches of
/// input lines the task answers API queries, applies reloaded rules, reports metrics and (in
/// live mode) fires timers on the wall clock.
fn run(input: Option<String>, live: bool, io: IoArgs, serve: ServeArgs) -> Result<()> {
    let sample = input.is_none();
    let rules_at = rules_path(io.rules.as_deref());
    let rules = Arc::new(load_rules(io.rules.as_deref())?);
    let roster = load_roster(io.roster.as_deref(), sample)?;
    let poll = (!serve.rules_poll.is_zero()).then_some(serve.rules_poll);
    let tokens = Arc::new(load_tokens(serve.api_tokens.as_deref())?);
    let notify_config = load_notifications(serve.notifications.as_deref())?;
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
        dead_letter_writer(&io)?,
    )
    .map_err(anyhow::Error::msg)?;
    let metrics = Metrics::new();
    p.attach_metrics(metrics.clone(), live);
    if sample {
        eprintln!("leadguard: no input given; running the bundled sample stream (a fortnight of activity from a call center, an email gateway, WeCom and the CRM)");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let started = Instant::now();
    runtime.block_on(async {
        let engine = EngineHandle::new();
        let mut queries = engine.register(FILE_PARTITION);
        // Webhook delivery runs beside the stream and never holds it up.
        let notifier = notify_config.map(|c| {
            let (handle, task) = leadguard::notify::Notifier::start(c, &roster);
            let stats = handle.stats();
            p.attach_notifier(handle);
            (task, stats)
        });
        let mut notified = leadguard::notify::NotifySnapshot::default();
        let (stop_api_tx, api_stopped) = tokio::sync::oneshot::channel::<()>();
        let server = match &serve.listen {
            None => None,
            Some(addr) => Some(
                start_api(
                    addr,
                    ApiState {
                        engine: engine.clone(),
                        tokens: tokens.clone(),
                        metrics: metrics.clone(),
                    },
                    api_stopped,
                )
                .await?,
            ),
        };
        let (rules_tx, mut rules_rx) = tokio::sync::watch::channel(p.engine.rules().clone());
        let watcher = tokio::spawn(leadguard::rules_watch::watch(
            rules_at.clone(),
            poll,
            metrics.clone(),
            rules_tx,
        ));
        // The roster reloads too when it is a file (not the sample's, built in).
        let (roster_tx, mut roster_rx) = tokio::sync::watch::channel(Arc::new(roster.clone()));
        let roster_watcher = io.roster.clone().map(|path| {
            tokio::spawn(leadguard::rules_watch::watch_roster(
                path,
                poll,
                metrics.clone(),
                roster_tx,
            ))
        });
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
                            received: Instant::now(),
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
        // File mode has no state to restore: the engine can answer as soon as it runs.
        engine.set_ready(true);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut report = tokio::time::interval(REPORT_EVERY);
        report.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let shutdown = shutdown_signal();
        tokio::pin!(shutdown);
        let mut ended = false;
        let result = loop {
            tokio::select! {
                biased;
                _ = &mut shutdown => {
                    tracing::info!("shutdown requested; finishing what was read");
                    break Ok(());
                }
                Some(query) = queries.recv() => {
                    let now = if live {
                        wall_clock()
                    } else {
                        p.engine.clock().unwrap_or_else(wall_clock)
                    };
                    host::answer(&p.engine, query, now);
                }
                Ok(()) = rules_rx.changed() => {
                    let rules = rules_rx.borrow_and_update().clone();
                    // The watcher already refused what needs a restart: this is in force now.
                    match p.reload(Some(rules), None) {
                        Ok(reloaded) => reloaded.log(),
                        Err(e) => break Err(e.into()),
                    }
                }
                Ok(()) = roster_rx.changed() => {
                    let roster = roster_rx.borrow_and_update().clone();
                    match p.reload(None, Some(&roster)) {
                        Ok(reloaded) => reloaded.log(),
                        Err(e) => break Err(e.into()),
                    }
                }
                _ = report.tick() => {
                    metrics.report_partition(FILE_PARTITION, p.report(rx.len() as u64));
                    if let Some((_, stats)) = &notifier {
                        metrics.add_notifications(&notified, &stats.snapshot());
                        notified = stats.snapshot();
                    }
                }
                line = rx.recv() => match line {
                    None => {
                        ended = true;
                        break Ok(());
                    }
                    Some(first) => {
                        if let Err(e) = process_batch(&mut p, &mut rx, first, &input_name, live) {
                            break Err(e);
                        }
                    }
                },
                _ = tick.tick(), if live => {
                    if let Err(e) = p.handle_timeout(wall_clock()).and_then(|()| p.flush()) {
                        break Err(e.into());
                    }
                }
            }
        };
        engine.set_ready(false);
        engine.unregister(FILE_PARTITION);
        drop(rx);
        reader_task.abort();
        if result.is_ok() && ended && !live {
            // The input ended: decisions waiting for the allowed lateness are made now.
            p.end_of_input()?;
        } else if result.is_ok() {
            // Stopped before the input ended: messages held for the clock's start were read.
            p.release_held()?;
            p.flush()?;
        }
        watcher.abort();
        if let Some(w) = roster_watcher {
            w.abort();
        }
        if let Some((task, stats)) = notifier {
            // Let queued messages go out (a few seconds at most), then count them.
            drop(p.detach_notifier());
            if tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .is_err()
            {
                tracing::warn!("notifications still being delivered were abandoned at shutdown");
            }
            metrics.add_notifications(&notified, &stats.snapshot());
        }
        let _ = stop_api_tx.send(());
        if let Some(server) = server {
            stop_api(server).await;
        }
        result
    })?;
    metrics.report_partition(FILE_PARTITION, p.report(0));
    finish(&mut p, &io, started, &metrics)
}

/// Processes `first` and the lines already waiting behind it (up to [`BATCH`]) in one span.
fn process_batch<O: Write, D: Write>(
    p: &mut Pipeline<O, D>,
    rx: &mut tokio::sync::mpsc::Receiver<io::Result<Line>>,
    first: io::Result<Line>,
    input_name: &str,
    live: bool,
) -> Result<()> {
    let mut line = first.context("reading the input failed")?;
    let span = tracing::info_span!(
        "batch",
        first_line = line.number,
        lines = tracing::field::Empty
    );
    let _entered = span.enter();
    let mut n = 0;
    loop {
        let now = live.then(wall_clock);
        p.mark_received(line.received);
        p.handle_message(
            &line.bytes,
            line.truncated,
            Origin {
                input: input_name,
                line: line.number,
            },
            now,
        )?;
        n += 1;
        if n == BATCH {
            break;
        }
        line = match rx.try_recv() {
            Ok(next) => next.context("reading the input failed")?,
            Err(_) => break,
        };
    }
    span.record("lines", n);
    tracing::trace!("batch processed");
    if live && rx.is_empty() {
        p.flush()?;
    }
    Ok(())
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
            leadguard::time::format_span(rules.ownership.protection.period),
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

// Flag values `gen` checks as it parses them, so that a wrong one is a wrong flag (exit code 2,
// with the flag named) rather than a quiet substitute or a failure after the start.

fn fraction(v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!("`{v}` is not a fraction from 0 to 1 (e.g. 0.02)")),
    }
}

fn at_least_one(v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("`{v}` is not a whole number of at least 1")),
    }
}

fn per_second(v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!("`{v}` is not a number of lines per second above 0")),
    }
}

fn gen(
    cfg: leadguard::gen::GenConfig,
    output: Option<PathBuf>,
    roster_out: Option<PathBuf>,
    live_rate: Option<f64>,
) -> Result<()> {
    if let Some(path) = &roster_out {
        std::fs::write(path, leadguard::gen::roster_yaml(&cfg))
            .with_context(|| format!("cannot write the roster to {}", path.display()))?;
    }
    let mut out = output_writer(output.as_deref())?;
    if let Some(rate) = live_rate {
        eprintln!("leadguard gen: writing {rate} events per second stamped with the wall clock; stop with Ctrl-C");
        leadguard::gen::write_live(
            &cfg,
            rate,
            None,
            &mut out,
            || wall_clock().0,
            std::thread::sleep,
        )?;
        return Ok(());
    }
    let summary = leadguard::gen::write_events(&cfg, &mut out)?;
    out.flush()?;
    eprintln!(
        "leadguard gen: {} events ({} duplicates, {} out of order, {} malformed)",
        summary.events, summary.duplicates, summary.out_of_order, summary.malformed
    );
    Ok(())
}

fn report(input: &str, html: Option<&Path>, top: usize) -> Result<()> {
    let reader = open_input(input)?;
    let name = if input == "-" { "stdin" } else { input };
    let report = leadguard::report::from_reader(reader, name, top)
        .with_context(|| format!("reading the outputs from {name} failed"))?;
    write_report(&report, name, html)
}

/// `report --config FILE`: the outputs as they are in Kafka (read committed).
fn report_topics(config: &Path, topics: &[String], html: Option<&Path>, top: usize) -> Result<()> {
    let settings = load_kafka_settings(config, &Default::default())?;
    let topics: Vec<String> = if topics.is_empty() {
        let t = &settings.topics;
        let mut v = vec![t.alerts.clone()];
        if t.ownership_changes != t.alerts {
            v.push(t.ownership_changes.clone());
        }
        v
    } else {
        topics.to_vec()
    };
    let name = topics.join(", ");
    let mut collector = leadguard::report::read::Collector::new();
    let mut n = 0;
    leadguard::kafka::read::read_to_end(&settings, &topics, |value| {
        n += 1;
        collector.push(value, n);
    })?;
    let report = leadguard::report::Report::compute(collector, &name, top);
    write_report(&report, &name, html)
}

fn write_report(report: &leadguard::report::Report, name: &str, html: Option<&Path>) -> Result<()> {
    if let Some(path) = html {
        std::fs::write(path, leadguard::report::html::render(report))
            .with_context(|| format!("cannot write the HTML report to {}", path.display()))?;
    }
    let mut out = io::stdout().lock();
    out.write_all(leadguard::report::text::render(report).as_bytes())?;
    out.flush()?;
    if report.reading.malformed > 0 {
        eprintln!(
            "leadguard report: {} message(s) of {name} are not leadguard outputs and were not counted (listed at the end of the report)",
            report.reading.malformed
        );
    }
    Ok(())
}
