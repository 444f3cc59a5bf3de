//! The apps built on the classifier: their wasm32-wasip2 builds, their composition with
//! `dist/classifier.wasm`, the model the classifier embeds, and `demo`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use edge_classify::model::Precision;
use edge_classify_cli::bake;

use crate::fetch::{self, Fetched};
use crate::{cargo, display_relative, layout, list, run, top_level_names, Layout};

/// The model `classifier.embedded` returns and its labels (see `component/src/embedded.rs`).
pub const EMBEDDED_MODEL: &str = "mobilenet_v2_1.0_224_quant.tflite";
pub const EMBEDDED_LABELS: &str = "imagenet_labels.txt";
/// Built into examples/doorbell.
pub const DOORBELL_MODEL: &str = "person_detect.tflite";
/// What `cargo xtask demo` classifies when given no photo.
pub const SAMPLE_PHOTO: &str = "grace_hopper.bmp";

const APPS_TARGET: &str = "wasm32-wasip2";

/// (package, wasm file cargo writes, composed output under dist/, unplugged copy under dist/parts/
/// for `edge-classify bake`)
const APPS: &[(&str, &str, &str, Option<&str>)] = &[
    ("classify-cli", "classify.wasm", "classify.wasm", Some(bake::APPS[0].0)),
    ("classify-http", "classify-http.wasm", "classify-http.wasm", Some(bake::APPS[1].0)),
    ("doorbell", "doorbell.wasm", "doorbell.wasm", None),
];

/// Precisions the default model is prepared at by `dist` (the first is `embedded()`'s default);
/// fp32 is converted at load from the embedded file (14 MB more prepared; see README "Use it").
pub const EMBEDDED_PREPARED: &[Precision] = &[Precision::Int8, Precision::Int16];

/// The bundle `dist` bakes into the classifier: the default model prepared natively at
/// [`EMBEDDED_PREPARED`] (plans with weights in execution layout, see `plan::persist`), its TFLite
/// file and its labels, exactly as `edge-classify bake` makes one.
pub fn embedded_bundle(fetched: &Fetched) -> Result<Vec<u8>> {
    let source = fetched.path(EMBEDDED_MODEL)?;
    let tflite = std::fs::read(source).with_context(|| format!("reading {}", source.display()))?;
    let labels_path = fetched.path(EMBEDDED_LABELS)?;
    let labels = std::fs::read_to_string(labels_path).with_context(|| format!("reading {}", labels_path.display()))?;
    // As `bake` names a model: its metadata's name ("ImageClassifier"), else the file's stem.
    let name = edge_classify_cli::file_stem(source);
    let bundle = edge_classify_cli::bake::bundle(&tflite, Some(&labels), Some(&name), EMBEDDED_PREPARED, None, true)
        .with_context(|| format!("preparing {EMBEDDED_MODEL} natively"))?;
    println!(
        "embedded model: {EMBEDDED_MODEL} prepared natively at {EMBEDDED_PREPARED:?}, bundle {} bytes ({} bytes as TFLite)",
        bundle.len(),
        tflite.len()
    );
    Ok(bundle)
}

/// Builds every app for wasm32-wasip2 (one cargo invocation) and writes each, composed with the
/// classifier, to dist/.
pub fn build_and_compose(layout: &Layout, fetched: &Fetched, classifier: &Path) -> Result<()> {
    let mut command = cargo();
    command.current_dir(&layout.workspace_root).env("DOORBELL_MODEL", fetched.path(DOORBELL_MODEL)?).args([
        "build",
        "--release",
        "--target",
        APPS_TARGET,
    ]);
    for (package, ..) in APPS {
        command.args(["-p", package]);
    }
    run(command).context("building the apps for wasm32-wasip2")?;

    let classifier_bytes = std::fs::read(classifier).with_context(|| format!("reading {}", classifier.display()))?;
    let release = layout.target_dir.join(APPS_TARGET).join("release");
    for (package, artifact, output, part) in APPS {
        let app_path = release.join(artifact);
        let app = std::fs::read(&app_path).with_context(|| format!("reading {}", app_path.display()))?;
        if let Some(part) = part {
            let path = parts_dir(layout).join(part);
            std::fs::write(&path, &app).with_context(|| format!("writing {}", path.display()))?;
        }
        let composed = edge_classify_cli::wasm::plug(&classifier_bytes, &app, package)?;
        let out = layout.workspace_root.join("dist").join(output);
        std::fs::write(&out, &composed).with_context(|| format!("writing {}", out.display()))?;
        let (imports, exports) = top_level_names(&composed)?;
        println!(
            "{}: {} bytes ({package} {} bytes + classifier)",
            display_relative(&out, &layout.workspace_root),
            composed.len(),
            app.len()
        );
        println!("  imports: {}", list(&imports));
        println!("  exports: {}", list(&exports));
    }
    Ok(())
}

/// `dist/parts/`: what `edge-classify bake` starts from.
pub fn parts_dir(layout: &Layout) -> PathBuf {
    layout.workspace_root.join("dist").join("parts")
}

/// `dist`, then `dist/classify.wasm` run in wasmtime (through the host-tests crate's `run-wasi`,
/// which links WASI as `wasmtime run` does) on each photo, each photo's folder preopened.
pub fn demo(photos: &[PathBuf]) -> Result<()> {
    crate::dist()?;
    let layout = layout()?;
    let photos =
        if photos.is_empty() { vec![fetch::fetch(&layout)?.path(SAMPLE_PHOTO)?.to_owned()] } else { photos.to_vec() };
    let mut command = cargo();
    command.current_dir(&layout.workspace_root).args([
        "run",
        "--quiet",
        "--release",
        "-p",
        "host-tests",
        "--bin",
        "run-wasi",
        "--",
    ]);
    let mut guest_paths = Vec::new();
    for (i, photo) in photos.iter().enumerate() {
        let photo = std::path::absolute(photo).with_context(|| format!("locating {}", photo.display()))?;
        let dir = photo.parent().context("a photo path has no folder")?;
        let name = photo.file_name().context("a photo path has no file name")?.to_string_lossy();
        let guest_dir = format!("/photos{i}");
        command.arg("--dir").arg(format!("{}::{guest_dir}", dir.display()));
        guest_paths.push(format!("{guest_dir}/{name}"));
        println!("{} -> {guest_dir}/{name}", display_relative(&photo, &layout.workspace_root));
    }
    command.arg(layout.workspace_root.join("dist").join("classify.wasm"));
    command.args(["--top", "3"]).args(&guest_paths);
    run(command).context("running dist/classify.wasm")
}
