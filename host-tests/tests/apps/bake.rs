//! `edge-classify bake` on a model that is not the default (the dog-breed int8 file, which carries
//! no metadata, with its labels), from the prebuilt parts `cargo xtask dist` leaves in
//! `dist/parts/`: the baked classifier imports nothing, and the baked `classify.wasm` (run as
//! `wasmtime run` runs it) and `classify-http.wasm` (served as `wasmtime serve` serves it) answer
//! with the same bits as `Model::load` of that file, at its own precision and at one prepared at
//! bake time (int16); the baked `wasi-nn.wasm` serves it by name as the provider serves the file.

use std::path::PathBuf;
use std::sync::OnceLock;

use anyhow::{ensure, Context, Result};
use edge_classify::model::{LoadOptions, Model, Precision};
use edge_classify_cli::{bake, wasm, PrecisionArg};
use host_tests::apps::{http_request, HttpServer, Upload, WasiCommand};
use host_tests::paths;
use host_tests::wasi_nn::{fresh_dir, parse, tensor_bytes, GuestHost};

use crate::common::*;

const MODEL_ID: &str = "dog_breeds_mobilenet_v2_160_int8";
/// The name given with `--name`: the file has no metadata to name it.
const BAKED_NAME: &str = "Stanford dog breeds (MobileNetV2 160, int8)";
const PHOTOS: [&str; 3] = ["grace_hopper.bmp", "chelsea.png", "hot_dog.jpg"];

fn baked_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let model = golden_model(MODEL_ID);
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("baked-dog-int8");
        let args = bake::BakeArgs {
            model: paths::models_dir().join(&model.file),
            labels: Some(paths::models_dir().join(model.labels.as_ref().expect("labels"))),
            name: Some(BAKED_NAME.into()),
            precision: vec![PrecisionArg::Int8, PrecisionArg::Int16],
            calibrate: None,
            no_tflite: false,
            scalar: false,
            parts: Some(paths::workspace_root().join("dist/parts")),
            out: out.clone(),
        };
        let mut log = Vec::new();
        bake::run(&args, &mut log).unwrap_or_else(|e| panic!("bake: {e:#}"));
        eprintln!("{}", String::from_utf8_lossy(&log));
        out
    })
}

/// `Model::load` of the file, natively, classifying `photo` with every class: (index, score bits).
fn native(precision: Precision, photo: &str) -> Result<Vec<(u64, u32)>> {
    let model = golden_model(MODEL_ID);
    let options = LoadOptions { precision: Some(precision), ..LoadOptions::default() };
    let mut m = Model::load(&model.model_bytes()?, &options).map_err(|e| anyhow::anyhow!("{e}"))?;
    let bytes = std::fs::read(paths::images_dir().join(photo))?;
    let p = m.classify(&bytes, 1000).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(p.iter().map(|p| (p.index as u64, p.score.to_bits())).collect())
}

fn predictions(v: &serde_json::Value) -> Result<Vec<(u64, u32)>> {
    v["predictions"]
        .as_array()
        .context("predictions")?
        .iter()
        .map(|p| Ok((p["index"].as_u64().context("index")?, (p["score"].as_f64().context("score")? as f32).to_bits())))
        .collect()
}

#[test]
fn baked_classifier_imports_nothing() -> Result<()> {
    let bytes = std::fs::read(baked_dir().join("classifier.wasm"))?;
    let (imports, exports) = wasm::top_level_names(&bytes)?;
    ensure!(imports.is_empty(), "the baked classifier imports {imports:?}");
    ensure!(exports.iter().any(|e| e.starts_with("edge:classify/classifier")), "exports {exports:?}");
    Ok(())
}

#[test]
fn baked_cli_gives_the_bits_of_load() -> Result<()> {
    let cli = WasiCommand::new(engine(), &baked_dir().join("classify.wasm"), None)?;
    for precision in [Precision::Int8, Precision::Int16] {
        let name = precision.name();
        for photo in PHOTOS {
            let args = strings(&["--precision", name, "--top", "1000", "--json", &format!("/photos/{photo}")]);
            let out = cli.run(&[images_dir()], &args)?;
            ensure!(out.exit_code == 0, "{photo} at {name}: exit {} {}", out.exit_code, out.stderr);
            let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).context("one JSON line")?;
            ensure!(v["precision"] == name, "{v}");
            ensure!(v["model"] == BAKED_NAME, "the name baked with --name: {v}");
            let labels = golden_model(MODEL_ID).labels()?;
            let top = v["predictions"][0]["index"].as_u64().context("index")? as usize;
            ensure!(v["predictions"][0]["label"] == labels[top].as_str(), "the bake's labels: {v}");
            ensure!(predictions(&v)? == native(precision, photo)?, "{photo} at {name}: differs from Model::load");
        }
    }
    Ok(())
}

#[test]
fn baked_http_gives_the_bits_of_load() -> Result<()> {
    let server = HttpServer::start(engine(), &baked_dir().join("classify-http.wasm"), None)?;
    let info = http_request(server.addr(), "GET", "/", Upload::None)?.json()?;
    ensure!(info["classes"] == 19 && info["precision"] == "int8", "GET /: {info}");
    ensure!(info["model"] == BAKED_NAME, "GET /: the name baked with --name: {info}");
    for photo in PHOTOS {
        let bytes = std::fs::read(paths::images_dir().join(photo))?;
        let r = http_request(server.addr(), "POST", "/classify?top=1000&precision=int16", Upload::Sized(&bytes))?;
        let v = r.json()?;
        ensure!(r.status == 200, "{photo}: {v}");
        ensure!(predictions(&v)? == native(Precision::Int16, photo)?, "{photo}: differs from Model::load");
    }
    Ok(())
}

/// The baked wasi:nn provider, through the example guest `bake` composes with it (as `wasmtime run`
/// runs it): `load-by-name("default")` and `default/int16` serve the baked model, giving what `load` of
/// the file itself gives through the same provider, on three golden inputs fed as FP32.
#[test]
fn baked_wasi_nn_serves_the_model_by_name_as_load_of_the_file() -> Result<()> {
    let guest = GuestHost::Wasmtime(WasiCommand::new(engine(), &baked_dir().join("wasi-nn-classify.wasm"), None)?);
    let model = golden_model(MODEL_ID);
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("baked-wasi-nn");
    fresh_dir(&work)?;
    let dims: Vec<String> = model.input.shape.iter().map(u32::to_string).collect();
    let mut tensor = strings(&["--dims", &dims.join(","), "--type", "fp32"]);
    for (i, case) in model.photo_cases().take(3).enumerate() {
        let input = case.input(golden())?.to_tensor()?;
        std::fs::write(work.join(format!("{i}.bin")), tensor_bytes(model, &input, "fp32")?)?;
        tensor.extend(["--input".to_owned(), format!("/work/{i}.bin")]);
    }
    let path = model.model_path();
    let file = format!("/model/{}", path.file_name().context("file name")?.to_string_lossy());
    let dirs = [(work, "/work".to_owned()), (path.parent().context("folder")?.to_owned(), "/model".to_owned())];
    for (name, options) in [("default", None), ("default/int16", Some("precision=int16"))] {
        let by_name = [strings(&["--name", name]), tensor.clone()].concat();
        let mut by_file = strings(&["--model", &file]);
        if let Some(o) = options {
            by_file.extend(strings(&["--options", o]));
        }
        by_file.extend(tensor.iter().cloned());
        let (a, b) = (guest.run(&dirs, &by_name)?, guest.run(&dirs, &by_file)?);
        ensure!(a.exit_code == 0 && b.exit_code == 0, "{name}: {} / {}", a.stderr, b.stderr);
        let (a, b) = (parse(&a.stdout)?, parse(&b.stdout)?);
        ensure!(a.len() == 3 && a[0].dims == [1, 19], "{name}: {a:?}");
        ensure!(a == b, "load-by-name {name:?} differs from load of the file");
    }
    Ok(())
}
