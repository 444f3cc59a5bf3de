//! `edge-classify`: the executor as a native command.
//!
//! ```text
//! edge-classify inspect model.tflite [--json]
//! edge-classify classify --model model.tflite [--labels labels.txt] [--top 3] [--json] photo.jpg...
//! edge-classify quantize --target int8 --calibrate photos/ float.tflite int8.tflite
//! edge-classify bake --model model.tflite [--labels labels.txt] [--precision int8,int16] --out DIR
//! ```
//!
//! A library as well as a binary so that xtask runs the same code (`cargo xtask quantize` is
//! [`quantize::run`]). A new subcommand is a module with an `Args` struct and a `run`, plus one
//! variant of [`Cmd`] and one arm in [`run`].

pub mod bake;
pub mod classify;
pub mod inspect;
pub mod quantize;
pub mod wasm;

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use edge_classify::model::Precision;

#[derive(Parser)]
#[command(name = "edge-classify", version, about = "Inspect, run and quantize TFLite MobileNet classifiers")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Describe a model: tensors, operators, cost, and at which precisions it runs.
    Inspect(inspect::InspectArgs),
    /// Classify images: the top classes of each, best first.
    Classify(classify::ClassifyArgs),
    /// Quantize a TFLite model (int8, int16x8) or dequantize it (fp32), calibrating on images.
    Quantize(quantize::QuantizeArgs),
    /// Put a model into the prebuilt components: classifier.wasm, classify.wasm, classify-http.wasm.
    Bake(bake::BakeArgs),
}

/// `--precision` and `--target` values, spelled as [`Precision::name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PrecisionArg {
    #[value(name = Precision::Fp32.name())]
    Fp32,
    #[value(name = Precision::Int16.name())]
    Int16,
    #[value(name = Precision::Int8.name())]
    Int8,
}

impl From<PrecisionArg> for Precision {
    fn from(p: PrecisionArg) -> Precision {
        match p {
            PrecisionArg::Fp32 => Precision::Fp32,
            PrecisionArg::Int16 => Precision::Int16,
            PrecisionArg::Int8 => Precision::Int8,
        }
    }
}

/// Exit codes: 1 for a failure while running, 2 for a bad command line (as the component's app).
const EXIT_FAILURE: u8 = 1;
const EXIT_USAGE: u8 = 2;

pub fn run(cli: Cli) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match cli.command {
        Cmd::Inspect(a) => inspect::run(&a, &mut out),
        Cmd::Classify(a) => classify::run(&a, &mut out),
        Cmd::Quantize(a) => quantize::run(a),
        Cmd::Bake(a) => bake::run(&a, &mut out),
    }?;
    out.flush().context("writing to stdout")
}

/// The whole program: parse, run, and turn any failure into one `edge-classify:` line on stderr,
/// so scripts can tell the message from the output and grep for it.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        // --help and --version are not errors, and their text is meant to be long.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("edge-classify: {first} (edge-classify --help shows the usage)");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // `edge-classify classify ... | head` closing the pipe early is not a failure to report.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edge-classify: {}", one_line(&e));
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// The error and its causes, `: `-separated, on one line even if a message has line breaks.
pub fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace(['\r', '\n'], " ")
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// A model's name when its metadata names none: its file's name without the extension.
pub fn file_stem(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Reads a file the user named, saying which role it had when it cannot be read.
pub fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}
