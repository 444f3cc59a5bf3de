//! The command itself: read files through the preopened directories, call the imported
//! classifier, print. Every failure is one line on stderr and a non-zero exit code.

use std::io::Write;

use crate::args::{self, Args, Parsed, Precision};

wit_bindgen::generate!({ path: "../../wit", world: "classifier-client" });

use edge::classify::classifier::{embedded, Model};
use edge::classify::types::{self as t, Error, LoadOptions};

/// Exit codes: 1 for a failure while running, 2 for a bad command line, as most CLIs do (a host
/// whose WASI only carries success or failure reports both as 1).
const EXIT_FAILURE: i32 = 1;
const EXIT_USAGE: i32 = 2;

pub fn main() -> i32 {
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(Parsed::Run(a)) => a,
        Ok(Parsed::Help) => {
            println!("{}", args::usage());
            return 0;
        }
        Err(e) => {
            eprintln!("classify: {e} (classify --help shows the usage)");
            return EXIT_USAGE;
        }
    };
    match run(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("classify: error: {e}");
            EXIT_FAILURE
        }
    }
}

fn read(path: &str, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {what} {path}: {e} (is its directory preopened with --dir?)"))
}

fn describe(e: Error) -> String {
    match e {
        Error::MalformedModel(m) => format!("malformed model: {m}"),
        Error::UnsupportedModel(m) => format!("unsupported model: {m}"),
        Error::InvalidImage(m) => format!("not a usable image: {m}"),
        Error::InvalidInput(m) => format!("invalid input: {m}"),
        Error::TooLarge(m) => format!("too large: {m}"),
    }
}

/// WIT's precision enum is the component's, case for case.
fn to_wit(p: Precision) -> t::Precision {
    match p {
        Precision::Fp32 => t::Precision::Fp32,
        Precision::Int16 => t::Precision::Int16,
        Precision::Int8 => t::Precision::Int8,
    }
}

fn from_wit(p: t::Precision) -> Precision {
    match p {
        t::Precision::Fp32 => Precision::Fp32,
        t::Precision::Int16 => Precision::Int16,
        t::Precision::Int8 => Precision::Int8,
    }
}

/// `path`'s file name without its extension.
fn stem(path: &str) -> String {
    std::path::Path::new(path).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

fn run(args: &Args) -> Result<(), String> {
    let labels = match &args.labels {
        Some(path) => Some(
            String::from_utf8(read(path, "labels")?).map_err(|_| format!("labels file {path} is not UTF-8 text"))?,
        ),
        None => None,
    };
    let options = LoadOptions { precision: args.precision.map(to_wit), labels, mean: None, std: None };
    let model = match &args.model {
        Some(path) => {
            let bytes = read(path, "model")?;
            Model::load(&bytes, &options).map_err(|e| format!("{path}: {}", describe(e)))?
        }
        None => embedded(&options).map_err(|e| format!("embedded model: {}", describe(e)))?,
    };
    let info = model.info();
    // A file whose metadata names no model is named by its stem, as the native `edge-classify` names it.
    let name = match &args.model {
        Some(path) if info.name.is_empty() => stem(path),
        _ => info.name.clone(),
    };
    let mut out = std::io::stdout().lock();
    for (i, path) in args.images.iter().enumerate() {
        let image = read(path, "image")?;
        let predictions = model.classify(&image, args.top).map_err(|e| format!("{path}: {}", describe(e)))?;
        let written = if args.json {
            let predictions: Vec<_> = predictions
                .iter()
                .map(|p| serde_json::json!({"index": p.index, "label": p.label, "score": p.score}))
                .collect();
            let line = serde_json::json!({
                "image": path,
                "model": name,
                "precision": from_wit(info.precision).name(),
                "predictions": predictions,
            });
            writeln!(out, "{line}")
        } else {
            // Blocks are separated by a blank line; the first line of each is its top-1.
            let sep = if i > 0 { "\n" } else { "" };
            let lines: Vec<String> =
                predictions.iter().map(|p| args::human_line(p.label.as_deref(), p.index, p.score)).collect();
            writeln!(out, "{sep}{}", lines.join("\n"))
        };
        written.map_err(|e| format!("writing to stdout: {e}"))?;
    }
    out.flush().map_err(|e| format!("writing to stdout: {e}"))
}
