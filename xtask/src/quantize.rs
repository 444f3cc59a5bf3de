//! `cargo xtask quantize`: the quantizer as a native command, the same code the component exports
//! through the WIT `quantizer` interface (the `edge-classify` crate linked natively).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use edge_classify::model::Precision;
use edge_classify::quantize::{self, Calibration};

#[derive(Clone, Copy, ValueEnum)]
pub enum Target {
    Fp32,
    Int16,
    Int8,
}

#[derive(Args)]
pub struct QuantizeArgs {
    /// Precision of the written model: int8 (per-channel int8 weights, int8 activations), int16 (16x8),
    /// fp32 (dequantized).
    #[arg(long, value_enum)]
    target: Target,
    /// Folder of calibration images (PNG/JPEG/BMP, every file in it, in name order); required for a
    /// float model at int8/int16.
    #[arg(long)]
    calibrate: Option<PathBuf>,
    /// Pixel normalization of the calibration images: real = (pixel - mean) / std.
    #[arg(long)]
    mean: Option<f32>,
    #[arg(long)]
    std: Option<f32>,
    /// Files to leave out of the calibration folder (e.g. images that are not photos).
    #[arg(long = "exclude")]
    exclude: Vec<String>,
    input: PathBuf,
    output: PathBuf,
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
    let target = match a.target {
        Target::Fp32 => Precision::Fp32,
        Target::Int16 => Precision::Int16,
        Target::Int8 => Precision::Int8,
    };
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
    let out = quantize::quantize(&model, target, &cal).map_err(|e| anyhow::anyhow!("{e}"))?;
    std::fs::write(&a.output, &out).with_context(|| format!("writing {}", a.output.display()))?;
    eprintln!("wrote {} ({} bytes, {} calibration images)", a.output.display(), out.len(), cal.images.len());
    Ok(())
}
