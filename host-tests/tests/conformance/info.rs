//! `model.info` against the manifest, for every golden model; and `embedded`.

use anyhow::{ensure, Context, Result};
use host_tests::golden::{GoldenModel, TensorSpec};
use host_tests::{LoadOptions, Runtime, TensorInfo};

use crate::common::{golden, load, report, runtimes};

fn check_tensor(what: &str, ours: &TensorInfo, spec: &TensorSpec) -> Result<()> {
    ensure!(ours.shape == spec.shape, "{what} shape {:?}, manifest {:?}", ours.shape, spec.shape);
    ensure!(ours.element == spec.dtype.element_type(), "{what} element {:?}, manifest {:?}", ours.element, spec.dtype);
    match (&ours.quantization, spec.scale, spec.zero_point) {
        (None, None, _) => {}
        (Some(q), Some(scale), Some(zero_point)) => {
            ensure!(q.scale == scale, "{what} scale {}, manifest {scale}", q.scale);
            ensure!(q.zero_point == zero_point, "{what} zero point {}, manifest {zero_point}", q.zero_point);
        }
        (q, scale, zp) => {
            anyhow::bail!("{what} quantization {q:?}, manifest scale {scale:?} zero point {zp:?}")
        }
    }
    Ok(())
}

fn check_model(runtime: &dyn Runtime, model: &GoldenModel) -> Result<()> {
    let mut instance = load(runtime, model, &model.load_options(false)?)?;
    let info = instance.info().context("info() trapped")?;
    report(format!(
        "info [{}] {}: name {:?}, {:?}, {} classes, {} operators, {} MACs, {} parameter bytes",
        runtime.name(),
        model.id,
        info.name,
        info.precision,
        info.classes,
        info.operators,
        info.macs,
        info.parameter_bytes
    ));
    // The name is the metadata's, else "" (`load` was given none): never the file's description, which
    // converters fill with their own text ("TOCO Converted.").
    let bytes = std::fs::read(host_tests::paths::models_dir().join(&model.file))?;
    let (metadata, _) = edge_classify::tflite::metadata::read_lenient(&bytes)?;
    let want = metadata.and_then(|m| m.name).unwrap_or_default();
    ensure!(info.name == want, "name {:?}, its metadata's {want:?}", info.name);
    ensure!(!info.name.contains("TOCO"), "the converter's description as a name: {:?}", info.name);
    ensure!(
        info.precision == model.input.dtype.default_precision(),
        "precision {:?}, expected {:?} for {:?} input",
        info.precision,
        model.input.dtype.default_precision(),
        model.input.dtype
    );
    check_tensor("input", &info.input, &model.input)?;
    check_tensor("output", &info.output, &model.output)?;

    let classes = *model.output.shape.last().context("manifest output shape is empty")?;
    ensure!(info.classes == classes, "classes {}, manifest output {:?}", info.classes, model.output.shape);
    let labels = model.labels()?;
    ensure!(
        labels.is_empty() || labels.len() == classes as usize,
        "labels file has {} lines for {classes} classes",
        labels.len()
    );
    ensure!(info.operators > 0, "0 operators");
    ensure!(info.macs > 0, "0 MACs");
    ensure!(info.parameter_bytes > 0, "0 parameter bytes");
    Ok(())
}

#[test]
fn info_matches_the_manifest() {
    let mut failures = Vec::new();
    for runtime in runtimes() {
        for model in golden().models() {
            if let Err(e) = check_model(runtime, model) {
                failures.push(format!("[{}] {}: {e:#}", runtime.name(), model.id));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Known class counts, independent of the manifest: ImageNet 1001 (with background), VWW 2,
/// dog breeds 19.
#[test]
fn class_counts_are_the_known_ones() {
    for model in golden().models() {
        let expected = if model.id.starts_with("mobilenet_v2_1.0_224") {
            1001
        } else if model.id.starts_with("person_detect") {
            2
        } else if model.id.starts_with("dog_breeds") {
            19
        } else {
            continue;
        };
        assert_eq!(model.output.shape.last().copied(), Some(expected), "{}", model.id);
    }
}

/// `embedded` answers without trapping; if the component carries a model, it is usable.
#[test]
fn embedded_returns_a_model_or_an_error() {
    for runtime in runtimes() {
        let result = runtime
            .embedded(&LoadOptions::default())
            .unwrap_or_else(|e| panic!("[{}] embedded() trapped: {e:#}", runtime.name()));
        match result {
            Err(e) => {
                // The only acceptable refusal: this build carries no model.
                assert_eq!(e.kind, host_tests::ErrorKind::UnsupportedModel, "[{}] embedded(): {e}", runtime.name());
                report(format!("embedded [{}]: no embedded model ({e})", runtime.name()))
            }
            Ok(mut model) => {
                let info = model.info().expect("info() on the embedded model trapped");
                report(format!("embedded [{}]: {} ({} classes)", runtime.name(), info.name, info.classes));
                // The default model's metadata names it.
                assert_eq!(info.name, "ImageClassifier", "[{}]", runtime.name());
                assert!(info.classes > 0);
                let count: usize = info.input.shape.iter().map(|&d| d as usize).product();
                let input = host_tests::Tensor {
                    shape: info.input.shape.clone(),
                    data: host_tests::TensorData::zeros(info.input.element, count),
                };
                model
                    .infer(&input)
                    .expect("infer() on the embedded model trapped")
                    .expect("infer() on the embedded model failed");
            }
        }
    }
}

/// The embedded model at every precision (`embedded({precision})`: prepared ones restored in place,
/// fp32 converted from the embedded file) gives exactly what `load` of its TFLite file gives at that
/// precision, for `classify` of one photo per format with every class, and carries the file's
/// metadata (name, description) and labels.
#[test]
fn embedded_model_at_every_precision_is_load_of_its_file() -> Result<()> {
    use host_tests::Precision;
    let model = golden().model("mobilenet_v2_1.0_224_quant")?;
    let runtime = crate::common::wasmtime();
    for precision in [Precision::Fp32, Precision::Int16, Precision::Int8] {
        let options = LoadOptions { precision: Some(precision), ..LoadOptions::default() };
        let mut embedded = runtime
            .embedded(&options)
            .context("embedded() trapped")?
            .map_err(|e| anyhow::anyhow!("embedded({precision:?}): {e}"))?;
        let mut loaded = load(runtime, model, &options)?;
        let (a, b) = (embedded.info().context("info")?, loaded.info().context("info")?);
        ensure!(a == b, "{precision:?}: embedded info {a:?}, loaded {b:?}");
        ensure!(a.precision == precision, "{precision:?}: runs at {:?}", a.precision);
        ensure!(a.description.as_deref().is_some_and(|d| !d.is_empty()), "no metadata description: {a:?}");
        for image in ["grace_hopper.bmp", "chelsea.png", "hot_dog.jpg"] {
            let case = model.photo_cases().find(|c| c.image == image).context("golden photo")?;
            let bytes = case.image_bytes()?;
            let x = embedded.classify(&bytes, 1001).context("trap")?.map_err(|e| anyhow::anyhow!("{e}"))?;
            let y = loaded.classify(&bytes, 1001).context("trap")?.map_err(|e| anyhow::anyhow!("{e}"))?;
            let bits =
                |p: &[host_tests::Prediction]| p.iter().map(|p| (p.index, p.score.to_bits())).collect::<Vec<_>>();
            ensure!(bits(&x) == bits(&y), "{precision:?} {image}: embedded and loaded models disagree");
            ensure!(x[0].label.is_some(), "{precision:?}: the metadata's labels are used: {:?}", x[0]);
        }
        report(format!("embedded at {precision:?}: {} = load of {} (3 photos, every class)", a.name, model.file));
    }
    Ok(())
}
