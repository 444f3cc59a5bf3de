//! `edge-classify classify`: the answers and output format of the component's CLI app
//! (`apps/classify`, shipped as `dist/classify.wasm`), natively.
//!
//! That app is a wasm-only binary crate that reaches the classifier through WIT, so its formatting
//! cannot be linked from here without making it depend on the native executor; the format is
//! replicated instead, and `tests/cli.rs` pins it. Keep the two in step.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use edge_classify::graph;
use edge_classify::model::{LoadOptions, Model, ModelInfo, Precision, Prediction};

use crate::{read, PrecisionArg};

/// Predictions shown per image when `--top` is not given (as in the component's app).
pub const DEFAULT_TOP: u32 = 5;

#[derive(Args)]
pub struct ClassifyArgs {
    /// The TFLite model.
    #[arg(long)]
    pub model: PathBuf,
    /// Class names, one a line, as many as the model has classes (default: the labels the model
    /// carries in its metadata, if any; else lines say `class N`).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Precision to run in (default: the model's own). A float model needs quantizing for int8/int16.
    #[arg(long, value_enum)]
    pub precision: Option<PrecisionArg>,
    /// Predictions per image.
    #[arg(long, default_value_t = DEFAULT_TOP, value_parser = clap::value_parser!(u32).range(1..))]
    pub top: u32,
    /// One JSON object per image and line instead of text.
    #[arg(long)]
    pub json: bool,
    /// Images to classify (PNG, JPEG, BMP).
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
}

pub fn load(a: &ClassifyArgs) -> Result<Model> {
    let labels = match &a.labels {
        Some(path) => Some(
            String::from_utf8(read(path, "labels")?)
                .map_err(|_| anyhow::anyhow!("labels file {} is not UTF-8 text", path.display()))?,
        ),
        None => None,
    };
    let options = LoadOptions {
        precision: a.precision.map(Into::into),
        labels,
        name: Some(crate::file_stem(&a.model)),
        ..LoadOptions::default()
    };
    let bytes = read(&a.model, "model")?;
    let loaded = Model::load(&bytes, &options).map_err(|e| match options.precision {
        Some(p) if p != Precision::Fp32 && graph::lower(&bytes).is_ok_and(|g| g.precision() == Precision::Fp32) => {
            anyhow::anyhow!(crate::inspect::calibration_hint(p))
        }
        _ => e.into(),
    });
    loaded.with_context(|| a.model.display().to_string())
}

/// Images are classified in order and each block is written as soon as it is known; the first
/// failure stops the run, as in the component's app.
pub fn run(a: &ClassifyArgs, out: &mut impl Write) -> Result<()> {
    let mut model = load(a)?;
    for (i, path) in a.images.iter().enumerate() {
        let image = read(path, "image")?;
        let predictions = model.classify(&image, a.top).with_context(|| path.display().to_string())?;
        let text = if a.json {
            format!("{}\n", json_line(path, model.info(), &predictions))
        } else {
            let sep = if i > 0 { "\n" } else { "" };
            format!("{sep}{}", human_block(&predictions))
        };
        out.write_all(text.as_bytes()).context("writing to stdout")?;
    }
    Ok(())
}

/// `label  0.1234` (or `class 7  0.1234` without labels), one line each, best first.
pub fn human_block(predictions: &[Prediction]) -> String {
    predictions.iter().map(|p| human_line(p.label.as_deref(), p.index, p.score) + "\n").collect()
}

/// A score as printed in the human format: probabilities with four decimals.
pub fn human_line(label: Option<&str>, index: u32, score: f32) -> String {
    match label {
        Some(l) => format!("{l}  {score:.4}"),
        None => format!("class {index}  {score:.4}"),
    }
}

/// `{"image", "model", "precision", "predictions": [{"index", "label", "score"}]}`; the label is
/// `null` without a labels file.
pub fn json_line(image: &Path, info: &ModelInfo, predictions: &[Prediction]) -> serde_json::Value {
    let predictions: Vec<_> =
        predictions.iter().map(|p| serde_json::json!({"index": p.index, "label": p.label, "score": p.score})).collect();
    serde_json::json!({
        "image": image.display().to_string(),
        "model": info.name,
        "precision": info.precision.name(),
        "predictions": predictions,
    })
}
