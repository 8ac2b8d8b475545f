//! `lockstep trace SOURCE --format text|jsonl|perfetto [-o FILE]`: converts
//! a trace, and loads traces for the other verbs.
//!
//! A source is a failure bundle (its `trace.jsonl`), a JSON-lines trace
//! file, a text trace or insta snapshot (`.snap`, `.snap.new`; text converts
//! only to text), or a scenario run `NAME/VARIANT@SEED`, which is run with
//! full tracing. Perfetto JSON opens in ui.perfetto.dev: one process per
//! host, one track per task, a slice per poll, wake and message flows,
//! instants for faults, timers and the failure, on virtual time.

use std::path::{Path, PathBuf};

use super::spec::{self, SimArgs};
use super::{Outcome, Scenario};
use crate::trace::{RenderOptions, Trace, Verbosity};

/// `lockstep trace`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// A bundle folder, a trace file (.jsonl, .txt, .snap), or NAME/VARIANT@SEED.
    source: String,
    /// The output format.
    #[arg(long, short = 'f', value_enum, default_value = "text")]
    format: Format,
    /// Write there instead of stdout.
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    sim: SimArgs,
}

/// A trace format.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// One event a line.
    Text,
    /// One JSON object a line (reads back with `Trace::from_jsonl`).
    Jsonl,
    /// Chrome trace-event JSON, for ui.perfetto.dev.
    Perfetto,
}

/// A loaded trace: events, or only text lines (a text trace or snapshot).
pub(crate) enum Loaded {
    /// The events.
    Events(Trace),
    /// Text lines, one event each.
    Lines(Vec<String>),
}

/// `trace` in `format`.
pub(crate) fn render(trace: &Trace, format: Format) -> String {
    match format {
        Format::Text => trace.render(),
        Format::Jsonl => trace.to_jsonl(),
        Format::Perfetto => crate::harness::perfetto::to_perfetto(trace) + "\n",
    }
}

/// Writes `trace` in `format` to `path`, or stdout.
pub(crate) fn write_output(
    trace: &Trace,
    format: Format,
    path: Option<&Path>,
) -> Result<(), String> {
    let text = render(trace, format);
    match path {
        Some(p) => {
            std::fs::write(p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))
        }
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

/// The text lines of an insta snapshot (without its `---` header).
fn snapshot_body(text: &str) -> &str {
    if let Some(rest) = text.strip_prefix("---\n") {
        if let Some(end) = rest.find("\n---\n") {
            return &rest[end + 5..];
        }
    }
    text
}

/// Loads a trace from a bundle, a file, or a scenario run.
pub(crate) fn load(source: &str, scenarios: &[Scenario], sim: &SimArgs) -> Result<Loaded, String> {
    let path = Path::new(source);
    if path.is_dir() {
        let b = super::bundle::Bundle::open(path)?;
        return b.trace().map(Loaded::Events);
    }
    if path.is_file() {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the trace file {source}: {e}"))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let is_snap = name.ends_with(".snap") || name.ends_with(".snap.new");
        let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        if !is_snap && (name.ends_with(".jsonl") || first.trim_start().starts_with('{')) {
            if name.ends_with(".json") && !name.ends_with(".jsonl") {
                return Err(format!(
                    "{source} is JSON, not a trace lockstep reads back: give the .jsonl trace \
                     (Perfetto JSON is an output only)"
                ));
            }
            return Trace::from_jsonl(&text)
                .map(Loaded::Events)
                .map_err(|e| format!("{source}: {e}"));
        }
        let body = if is_snap { snapshot_body(&text) } else { &text };
        return Ok(Loaded::Lines(
            body.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect(),
        ));
    }
    if source.contains('@') || (!source.contains('/') && !source.contains('.')) {
        let target = spec::target(scenarios, source, None)?;
        let variant = spec::one_variant(&target)?;
        let seed = target
            .seed
            .ok_or_else(|| format!("`{source}`: which seed? write NAME/VARIANT@SEED"))?;
        let outcome = variant.run(&sim.sim(seed, Verbosity::Full));
        return Ok(Loaded::Events(outcome.into_trace()));
    }
    Err(format!(
        "`{source}` is neither a trace file, a bundle folder, nor a scenario run NAME/VARIANT@SEED \
         (no such file or folder)"
    ))
}

impl Loaded {
    /// One line per event, without source line numbers (so a moved line
    /// of code is not a difference).
    pub(crate) fn stable_lines(&self) -> Vec<String> {
        match self {
            Loaded::Events(t) => stable_lines(t),
            Loaded::Lines(lines) => lines.iter().map(|l| strip_line_numbers(l)).collect(),
        }
    }
}

/// One line per event of `trace`, without source line numbers.
pub(crate) fn stable_lines(trace: &Trace) -> Vec<String> {
    trace
        .render_with(&RenderOptions::stable())
        .lines()
        .map(str::to_string)
        .collect()
}

/// Removes `:line[:column]` after each `.rs` (what stable rendering does).
pub(crate) use crate::trace::render::strip_line_numbers;

pub(crate) fn run(args: Args, scenarios: &[Scenario]) -> Outcome {
    match load(&args.source, scenarios, &args.sim)? {
        Loaded::Events(trace) => write_output(&trace, args.format, args.output.as_deref())?,
        Loaded::Lines(lines) => {
            if args.format != Format::Text {
                return Err(format!(
                    "{} is a text trace, which converts only to text; convert the JSON lines \
                     (a bundle's trace.jsonl, or LOCKSTEP_TRACE=file.jsonl)",
                    args.source
                ));
            }
            let text = lines.join("\n") + "\n";
            match &args.output {
                Some(p) => std::fs::write(p, text)
                    .map_err(|e| format!("cannot write {}: {e}", p.display()))?,
                None => print!("{text}"),
            }
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
