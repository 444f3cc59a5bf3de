//! `edge-classify quantize` (and `cargo xtask quantize`, which forwards here): the quantizer as a
//! native command, the same code the component exports through the WIT `quantizer` interface.
//!
//! `golden/generate.py` runs it and records the sha256 of what it writes, so its output for the same
//! arguments must stay byte-identical.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use edge_classify::quantize::{self, Calibration};

use crate::PrecisionArg;

#[derive(Args)]
pub struct QuantizeArgs {
    /// Precision of the written model: int8 (per-channel int8 weights, int8 activations), int16 (16x8),
    /// fp32 (dequantized).
    #[arg(long, value_enum)]
    pub target: PrecisionArg,
    /// Folder of calibration images (PNG/JPEG/BMP, every file in it, in name order); required for a
    /// float model at int8/int16.
    #[arg(long)]
    pub calibrate: Option<PathBuf>,
    /// Pixel normalization of the calibration images: real = (pixel - mean) / std.
    #[arg(long)]
    pub mean: Option<f32>,
    #[arg(long)]
    pub std: Option<f32>,
    /// Files to leave out of the calibration folder (e.g. images that are not photos).
    #[arg(long = "exclude")]
    pub exclude: Vec<String>,
    /// With --target int16: keep TFLite's 16-bit SOFTMAX at the end (a pure 16x8 graph, int16 output,
    /// for integer-only targets) instead of DEQUANTIZE → float SOFTMAX, which is more accurate (its
    /// exp table does not saturate below -10).
    #[arg(long)]
    pub int16_softmax: bool,
    pub input: PathBuf,
    pub output: PathBuf,
}

/// Calibration images: every image file of `dir`, sorted by name so the result is reproducible.
pub fn images(dir: &Path, exclude: &[String]) -> Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
        if matches!(ext.as_str(), "png" | "jpg" | "jpeg" | "bmp") && !exclude.contains(&name) {
            files.push((name, path));
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|(n, p)| Ok((n, std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?)))
        .collect()
}

pub fn run(a: QuantizeArgs) -> Result<()> {
    let model = std::fs::read(&a.input).with_context(|| format!("reading {}", a.input.display()))?;
    let images = match &a.calibrate {
        Some(dir) => {
            let found = images(dir, &a.exclude)?;
            if found.is_empty() {
                bail!("no PNG/JPEG/BMP images in {}", dir.display());
            }
            found
        }
        None => Vec::new(),
    };
    let cal = Calibration { images: images.into_iter().map(|(_, b)| b).collect(), mean: a.mean, std: a.std };
    if a.int16_softmax && !matches!(a.target, PrecisionArg::Int16) {
        bail!("--int16-softmax applies to --target int16 only");
    }
    let tail = if a.int16_softmax { quantize::Int16Tail::Int16Softmax } else { quantize::Int16Tail::FloatSoftmax };
    let opts = quantize::Options { int16_tail: tail, ..quantize::Options::default() };
    let out = quantize::quantize_file_with(&model, a.target.into(), &cal, opts)
        .with_context(|| a.input.display().to_string())?;
    std::fs::write(&a.output, &out).with_context(|| format!("writing {}", a.output.display()))?;
    eprintln!("wrote {} ({} bytes, {} calibration images)", a.output.display(), out.len(), cal.images.len());
    Ok(())
}
