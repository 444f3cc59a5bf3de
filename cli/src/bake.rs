//! `edge-classify bake`: a user's model prepared natively and put into the prebuilt components, in
//! seconds and without compiling Rust. `cargo xtask dist` bakes the default model the same way.
//!
//! The prebuilt parts (written by `cargo xtask dist` to `dist/parts/`) are the classifier's core
//! modules as compiled, with no model, and the apps as compiled, not yet composed. `bake` puts the
//! model bundle (`edge_classify::embedded`) into a core module (`wasm::bake_core`), wraps it as
//! `classifier.wasm` (still importing nothing) and plugs it into the apps; the same bundle goes into the
//! wasi:nn provider (`wasi-nn.wasm`, whose `load-by-name("default")` then serves it), which is composed
//! with the example wasi-nn guest as `dist/` has it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use edge_classify::embedded::{Bundle, Kind};
use edge_classify::graph::Precision;
use edge_classify::model::{LoadOptions, Model};
use edge_classify::quantize::{self, Calibration};

use crate::{read, wasm, PrecisionArg};

/// The prebuilt parts `bake` starts from, as `cargo xtask dist` names them in `dist/parts/`.
pub const CORE_SIMD: &str = "classifier-simd.core.wasm";
pub const CORE_SCALAR: &str = "classifier.core.wasm";
/// The wasi:nn provider's core module (SIMD, like `dist/wasi-nn.wasm`) and the example guest before
/// composition.
pub const CORE_NN: &str = "wasi-nn.core.wasm";
pub const NN_GUEST: &str = "wasi-nn-classify.wasm";
/// (app part, baked output, package name for messages)
pub const APPS: &[(&str, &str, &str)] = &[
    ("classify.app.wasm", "classify.wasm", "classify-cli"),
    ("classify-http.app.wasm", "classify-http.wasm", "classify-http"),
];

#[derive(Args)]
pub struct BakeArgs {
    /// The TFLite model to embed.
    #[arg(long)]
    pub model: PathBuf,
    /// Labels, one per line (default: the model's own, from its metadata).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// The model's name, what `info().name` reports (default: the model's metadata name, else the
    /// file's stem). A name in the model's TFLite metadata is kept.
    #[arg(long)]
    pub name: Option<String>,
    /// Precisions to prepare at bake time (repeatable or comma-separated; default: the model's own).
    /// The others are still served, converted from the embedded file when first asked for.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub precision: Vec<PrecisionArg>,
    /// Calibration images for a float model at int8/int16 (every PNG/JPEG/BMP in the folder).
    #[arg(long)]
    pub calibrate: Option<PathBuf>,
    /// Leave the TFLite file out: smaller, but only the prepared precisions can be asked for.
    #[arg(long)]
    pub no_tflite: bool,
    /// Bake the scalar classifier instead of the SIMD one (for hosts without wasm SIMD).
    #[arg(long)]
    pub scalar: bool,
    /// Where the prebuilt parts are (default: $EDGE_CLASSIFY_PARTS, else the `dist/parts` of the
    /// checkout this binary was built from).
    #[arg(long)]
    pub parts: Option<PathBuf>,
    /// Output folder: classifier.wasm, classify.wasm, classify-http.wasm, and (without --scalar) the
    /// wasi:nn provider wasi-nn.wasm and wasi-nn-classify.wasm, the example guest composed with it.
    #[arg(long)]
    pub out: PathBuf,
}

/// The parts folder when none is given.
pub fn default_parts() -> PathBuf {
    std::env::var_os("EDGE_CLASSIFY_PARTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/parts"))
}

/// The bundle for `tflite`: a prepared model per precision in `prepare` (the first is what
/// `embedded()` gives with no precision), and unless `with_tflite` is false the file itself and
/// `labels` and `name` for it. `name` is the model's when its metadata names none.
pub fn bundle(
    tflite: &[u8],
    labels: Option<&str>,
    name: Option<&str>,
    prepare: &[Precision],
    calibration: Option<&Calibration>,
    with_tflite: bool,
) -> Result<Vec<u8>> {
    let load = |bytes: &[u8], p: Precision| {
        let options = LoadOptions {
            precision: Some(p),
            labels: labels.map(str::to_owned),
            name: name.map(str::to_owned),
            ..LoadOptions::default()
        };
        Model::load(bytes, &options).map_err(|e| anyhow::anyhow!("preparing at {}: {e}", p.name()))
    };
    let own_options =
        LoadOptions { labels: labels.map(str::to_owned), name: name.map(str::to_owned), ..LoadOptions::default() };
    let own = Model::load(tflite, &own_options).map_err(|e| anyhow::anyhow!("{e}"))?;
    let own_precision = own.info().precision;
    let prepare = if prepare.is_empty() { vec![own_precision] } else { prepare.to_vec() };
    let mut prepared: Vec<(Kind, Vec<u8>)> = Vec::new();
    for &p in &prepare {
        if prepared.iter().any(|(k, _)| *k == Kind::Prepared(p)) {
            continue;
        }
        let float_to_int = own_precision == Precision::Fp32 && p != Precision::Fp32;
        let converted;
        let model = if p == own_precision {
            &own
        } else if float_to_int {
            let Some(cal) = calibration else {
                bail!(
                    "the model is float32: --precision {} needs --calibrate DIR (images to pick its ranges)",
                    p.name()
                );
            };
            let quantized = quantize::quantize_file(tflite, p, cal).map_err(|e| anyhow::anyhow!("quantizing: {e}"))?;
            converted = load(&quantized, p)?;
            &converted
        } else {
            converted = load(tflite, p)?;
            &converted
        };
        let bytes = model.to_prepared_bytes().map_err(|e| anyhow::anyhow!("{e}"))?;
        prepared.push((Kind::Prepared(p), bytes));
    }
    let mut parts: Vec<(Kind, &[u8])> = prepared.iter().map(|(k, b)| (*k, &b[..])).collect();
    // Prepared models carry their labels; the file converted at `embedded()` needs them beside it.
    if with_tflite {
        parts.push((Kind::Tflite, tflite));
        if let Some(l) = labels {
            parts.push((Kind::Labels, l.as_bytes()));
        }
        if let Some(n) = name {
            parts.push((Kind::Name, n.as_bytes()));
        }
    }
    Ok(Bundle { parts }.to_bytes())
}

/// A classifier component: `core` (a prebuilt core module with no model) with `bundle` baked in.
pub fn classifier(core: &[u8], bundle: &[u8]) -> Result<Vec<u8>> {
    wasm::encode_component(&wasm::bake_core(core, bundle)?)
}

pub fn run(a: &BakeArgs, out: &mut impl std::io::Write) -> Result<()> {
    let started = std::time::Instant::now();
    let tflite = read(&a.model, "model")?;
    let labels = match &a.labels {
        Some(p) => Some(String::from_utf8(read(p, "labels")?).context("the labels file is not UTF-8")?),
        None => None,
    };
    let calibration = match &a.calibrate {
        Some(dir) => {
            let images = crate::quantize::images(dir, &[])?;
            if images.is_empty() {
                bail!("no PNG/JPEG/BMP images in {}", dir.display());
            }
            Some(Calibration { images: images.into_iter().map(|(_, b)| b).collect(), mean: None, std: None })
        }
        None => None,
    };
    let prepare: Vec<Precision> = a.precision.iter().map(|&p| p.into()).collect();
    let name = a.name.clone().unwrap_or_else(|| crate::file_stem(&a.model));
    let bundle = bundle(&tflite, labels.as_deref(), Some(&name), &prepare, calibration.as_ref(), !a.no_tflite)?;

    let parts = a.parts.clone().unwrap_or_else(default_parts);
    let core_name = if a.scalar { CORE_SCALAR } else { CORE_SIMD };
    let core = read(&parts.join(core_name), "prebuilt classifier module (run `cargo xtask dist`, or pass --parts)")?;
    let classifier = classifier(&core, &bundle)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("cannot create {}", a.out.display()))?;
    let write = |name: &str, bytes: &[u8]| -> Result<PathBuf> {
        let path = a.out.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    };
    let mut written = vec![(write("classifier.wasm", &classifier)?, classifier.len())];
    for (part, output, package) in APPS {
        let app = read(&parts.join(part), "prebuilt app")?;
        let composed = wasm::plug(&classifier, &app, package)?;
        written.push((write(output, &composed)?, composed.len()));
    }
    // The provider is built with SIMD only, as dist/wasi-nn.wasm is: a --scalar bake is for hosts without it.
    if !a.scalar {
        let core =
            read(&parts.join(CORE_NN), "prebuilt wasi:nn provider module (run `cargo xtask dist`, or pass --parts)")?;
        let provider = self::classifier(&core, &bundle)?;
        let guest = read(&parts.join(NN_GUEST), "prebuilt wasi-nn guest")?;
        let composed = wasm::compose(&provider, &guest, "wasi-nn.wasm", NN_GUEST)?;
        written.push((write("wasi-nn.wasm", &provider)?, provider.len()));
        written.push((write(NN_GUEST, &composed)?, composed.len()));
    }
    let precisions: Vec<&str> = Bundle::parse(&bundle)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .prepared()
        .into_iter()
        .map(Precision::name)
        .collect();
    writeln!(
        out,
        "baked {} (prepared: {}{}; bundle {} bytes) in {:.2} s",
        a.model.display(),
        precisions.join(", "),
        if a.no_tflite { "" } else { "; other precisions converted at load" },
        bundle.len(),
        started.elapsed().as_secs_f64()
    )?;
    for (path, len) in written {
        writeln!(out, "  {}  {len} bytes", path.display())?;
    }
    Ok(())
}
