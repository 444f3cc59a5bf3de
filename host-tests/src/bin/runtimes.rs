//! `cargo xtask runtimes`: the runtime matrix. Every golden case of every model runs through every
//! runtime — wasmtime with Cranelift, Winch and Pulley, V8 via jco, and the same crate linked natively —
//! and each runtime's outputs must be bit-identical to the native ones. Prints one row per runtime x
//! model x precision (cases, output digest, median infer time) and exits non-zero on any mismatch or
//! on any runtime that fails.
//!
//! Per case, `infer` on the golden input tensor (the kernels) is digested; for the first photo of
//! each format (PNG, BMP, JPEG) per model, so is `classify` of the photo with every class requested
//! (decode, resize, normalize, run, softmax, sort). The digest covers element types, shapes, every
//! output bit, prediction order, indices and score bits.
//!
//! Then the wasi-nn guest composed with `dist/wasi-nn.wasm` (`dist/wasi-nn-classify.wasm`) on
//! wasmtime and jco: every golden case through the standard interface, bit-identical to native.
//!
//! Options: `--work <dir>` (where the jco transpile output and compiled artifacts are kept; default
//! `target/runtimes`), `--pulley-cases <n>` (the interpreter runs the first n cases of each model over
//! 10 MMACs, default 1), `--component <path>` (repeatable; default: `dist/classifier.wasm` and
//! `dist/classifier-simd.wasm`, each on every wasm engine, the SIMD build's runtimes named `…-simd`).
//! Under `CI=true` a runtime that cannot start (no Node, no npm registry) is a failure; otherwise a
//! warning.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use host_tests::golden::{Golden, GoldenModel};
use host_tests::jco_rt::{self, JcoRuntime};
use host_tests::native_rt::NativeRuntime;
use host_tests::wasi_nn::{check_model, GuestHost};
use host_tests::wasmtime_rt::{Compiler, WasmtimeRuntime};
use host_tests::{paths, LoadOptions, Model, ModelInfo, Precision, Runtime, Tensor, TensorData};
use sha2::{Digest, Sha256};

struct Args {
    work: Option<PathBuf>,
    pulley_cases: usize,
    components: Vec<PathBuf>,
}

fn args() -> Result<Args> {
    let mut out = Args { work: None, pulley_cases: 1, components: Vec::new() };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--work" => out.work = Some(value()?.into()),
            "--pulley-cases" => out.pulley_cases = value()?.parse()?,
            "--component" => out.components.push(value()?.into()),
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(out)
}

/// What one runtime produced for one (model, precision): a digest per case and the infer times.
struct Cell {
    digests: Vec<[u8; 32]>,
    infer_ms: Vec<f64>,
}

fn main() -> Result<()> {
    let args = args()?;
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    let golden = Golden::load()?;
    let components = if args.components.is_empty() {
        let scalar = paths::component_path()?;
        let simd = scalar.with_file_name("classifier-simd.wasm");
        vec![scalar, simd]
    } else {
        args.components.clone()
    };
    let work = args.work.clone().unwrap_or_else(|| paths::workspace_root().join("target/runtimes"));
    let cache = work.join("cwasm");

    // The reference first: everything else is compared with it.
    let mut runtimes: Vec<Box<dyn Runtime>> = vec![Box::new(NativeRuntime)];
    let mut failures = Vec::new();
    for component in &components {
        // `classifier-simd.wasm` -> runtimes named `...-simd`.
        let build = component.file_stem().and_then(|s| s.to_str()).unwrap_or("").trim_start_matches("classifier");
        for compiler in Compiler::ALL {
            let name = format!("{}{build}", compiler.runtime_name());
            let t = Instant::now();
            match WasmtimeRuntime::new(compiler, component, Some(&cache)) {
                Ok(rt) => {
                    eprintln!("{name}: compiled in {:.1} s", t.elapsed().as_secs_f64());
                    runtimes.push(Box::new(rt.named(name)));
                }
                Err(e) => failures.push(format!("{name} cannot start: {e:#}")),
            }
        }
        let name = format!("jco-node{build}");
        let jco_out = work.join(format!("jco{build}"));
        match jco_rt::transpile(component, &jco_out).and_then(|()| JcoRuntime::start(&name, &jco_out)) {
            Ok(rt) => runtimes.push(Box::new(rt)),
            Err(e) if ci => failures.push(format!("{name} cannot start: {e:#}")),
            Err(e) => eprintln!("warning: {name} not run ({e:#}); under CI=true this is a failure"),
        }
    }

    for component in &components {
        println!("component: {} ({})", component.display(), short(&Sha256::digest(std::fs::read(component)?)));
    }
    println!(
        "{:<24} {:<36} {:<6} {:>6} {:<16} {:>10}  vs native",
        "runtime", "model", "prec", "cases", "digest", "infer ms"
    );
    for model in golden.models() {
        let tflite = model.model_bytes()?;
        for precision in precisions(model, &tflite)? {
            let mut reference: Option<Cell> = None;
            for rt in &runtimes {
                let limit = case_limit(rt.name(), &args);
                let cell = match run_cell(rt.as_ref(), &golden, model, &tflite, precision, limit) {
                    Ok(cell) => cell,
                    Err(e) => {
                        failures.push(format!("{} {} {precision:?}: {e:#}", rt.name(), model.id));
                        continue;
                    }
                };
                let verdict = match &reference {
                    None => "reference".to_string(),
                    Some(r) => {
                        let differ: Vec<_> = cell
                            .digests
                            .iter()
                            .zip(&r.digests)
                            .enumerate()
                            .filter(|(_, (a, b))| a != b)
                            .map(|(i, _)| model.cases[i].image.clone())
                            .collect();
                        if differ.is_empty() {
                            format!("identical ({}/{})", cell.digests.len(), r.digests.len())
                        } else {
                            failures.push(format!(
                                "{} {} {precision:?}: outputs differ from native on {}",
                                rt.name(),
                                model.id,
                                differ.join(", ")
                            ));
                            format!("DIFFERENT on {} case(s)", differ.len())
                        }
                    }
                };
                let mut all = Sha256::new();
                cell.digests.iter().for_each(|d| all.update(d));
                println!(
                    "{:<24} {:<36} {:<6} {:>6} {:<16} {:>10.2}  {}",
                    rt.name(),
                    model.id,
                    precision.name(),
                    cell.digests.len(),
                    short(&all.finalize()),
                    median(cell.infer_ms.clone()),
                    verdict
                );
                if reference.is_none() {
                    reference = Some(cell);
                }
            }
        }
    }
    wasi_nn_guest(&golden, &work, &mut failures);
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("FAIL: {f}");
        }
        bail!("{} runtime matrix failure(s)", failures.len());
    }
    println!("runtime matrix: every runtime agrees with native on every case it ran");
    Ok(())
}

/// The wasi-nn guest composed with the provider (`dist/wasi-nn-classify.wasm`) on wasmtime
/// (Cranelift, through wasmtime-wasi as `wasmtime run`) and jco: every golden case of every model at
/// its own precision, fed as FP32, bit-identical to native `infer` (`host_tests::wasi_nn`). Either
/// host failing to start is a failure: both are in this checkout's build.
fn wasi_nn_guest(golden: &Golden, work: &std::path::Path, failures: &mut Vec<String>) {
    let component = paths::workspace_root().join("dist").join("wasi-nn-classify.wasm");
    let hosts = [
        host_tests::apps::engine()
            .and_then(|e| host_tests::apps::WasiCommand::new(&e, &component, Some(&work.join("cwasm"))))
            .map(GuestHost::Wasmtime),
        GuestHost::jco(&component),
    ];
    println!("wasi-nn guest: {} composed with dist/wasi-nn.wasm, fed FP32", component.display());
    for host in hosts {
        let host = match host {
            Ok(h) => h,
            Err(e) => {
                failures.push(format!("the wasi-nn guest's host cannot start: {e:#}"));
                continue;
            }
        };
        for model in golden.models() {
            let t = Instant::now();
            let verdict = match check_model(&host, golden, model, None, "fp32", &work.join("wasi-nn")) {
                Ok(n) => format!("identical to native infer ({n} cases, {:.1} s)", t.elapsed().as_secs_f64()),
                Err(e) => {
                    failures.push(format!("wasi-nn guest: {e:#}"));
                    "DIFFERENT or failed".to_owned()
                }
            };
            println!("{:<24} {:<36} {verdict}", host.name(), model.id);
        }
    }
}

/// The precisions each model is run at: every one the native build loads it at. Its own precision
/// must load; another one may be refused by design (a float model cannot become integer without
/// activation ranges), which is printed, not hidden.
fn precisions(model: &GoldenModel, tflite: &[u8]) -> Result<Vec<Precision>> {
    let own = model.input.dtype.default_precision();
    let mut out = Vec::new();
    for precision in [Precision::Fp32, Precision::Int16, Precision::Int8] {
        let options = LoadOptions { precision: Some(precision), ..model.load_options(false)? };
        match NativeRuntime.load(tflite, &options)? {
            Ok(_) => out.push(precision),
            Err(e) if precision != own => {
                println!("{:<24} {:<36} {:<6} not loadable at this precision: {e}", "-", model.id, precision.name())
            }
            Err(e) => bail!("{} does not load at its own precision: {e}", model.id),
        }
    }
    Ok(out)
}

/// Pulley interprets, tens of times slower than compiled code: on models over this many MACs it runs
/// only the first `--pulley-cases` cases, so CI stays short.
const PULLEY_FULL_MACS: u64 = 10_000_000;

fn case_limit(runtime: &str, args: &Args) -> Option<usize> {
    runtime.starts_with(Compiler::Pulley.runtime_name()).then_some(args.pulley_cases)
}

fn run_cell(
    rt: &dyn Runtime,
    golden: &Golden,
    model: &GoldenModel,
    tflite: &[u8],
    precision: Precision,
    limit: Option<usize>,
) -> Result<Cell> {
    let options = LoadOptions { precision: Some(precision), ..model.load_options(true)? };
    let mut m = rt.load(tflite, &options)?.map_err(|e| anyhow::anyhow!("load: {e}"))?;
    let info = m.info()?;
    ensure!(info.precision == precision, "loaded at {:?}, asked for {precision:?}", info.precision);
    let cases = match limit {
        Some(n) if info.macs > PULLEY_FULL_MACS => n,
        _ => model.cases.len(),
    };
    let mut cell = Cell { digests: Vec::new(), infer_ms: Vec::new() };
    let mut classified = std::collections::HashSet::new();
    for case in model.cases.iter().take(cases) {
        let input = model.input_for(&info, case.input(golden)?.to_tensor()?)?;
        let mut h = Sha256::new();
        let t = Instant::now();
        let out = m.infer(&input)?.map_err(|e| anyhow::anyhow!("infer {}: {e}", case.image))?;
        cell.infer_ms.push(t.elapsed().as_secs_f64() * 1e3);
        digest_tensor(&mut h, &out);
        // One photo per decoder: the image pipeline is the same code for every photo of a format.
        let format = case.image.rsplit('.').next().unwrap_or_default().to_ascii_lowercase();
        let preds = if classified.insert(format) {
            classify_all(m.as_mut(), &info, &case.image_bytes()?).with_context(|| format!("classify {}", case.image))?
        } else {
            Vec::new()
        };
        for p in preds {
            h.update(p.index.to_le_bytes());
            h.update(p.score.to_bits().to_le_bytes());
            h.update(p.label.as_deref().unwrap_or("\u{0}").as_bytes());
        }
        cell.digests.push(h.finalize().into());
    }
    Ok(cell)
}

fn classify_all(m: &mut dyn Model, info: &ModelInfo, image: &[u8]) -> Result<Vec<host_tests::Prediction>> {
    m.classify(image, info.classes)?.map_err(|e| anyhow::anyhow!("{e}"))
}

fn digest_tensor(h: &mut Sha256, t: &Tensor) {
    h.update(format!("{:?}{:?}", t.data.element_type(), t.shape).as_bytes());
    match &t.data {
        TensorData::Float32(v) => v.iter().for_each(|x| h.update(x.to_bits().to_le_bytes())),
        TensorData::Uint8(v) => h.update(v),
        TensorData::Int8(v) => v.iter().for_each(|x| h.update(x.to_le_bytes())),
        TensorData::Int16(v) => v.iter().for_each(|x| h.update(x.to_le_bytes())),
    }
}

fn short(d: &[u8]) -> String {
    d[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
