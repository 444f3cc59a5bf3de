//! `cargo xtask bench <mode>`: the benchmarks. Their binaries are the `edge-classify-bench` crate
//! (`bench/src/bin`), next to the browser page (`bench/browser`), the Python / Node baselines
//! (`bench/compare`) and tract's component (`bench/tract`).
//!
//! - `native` ([`native`]): every runtime of issue 6's comparison in one invocation, one table:
//!   1. ours: `bench` (natively, and the scalar and SIMD components in wasmtime Cranelift);
//!   2. tract 0.23.9 compiled into a wasm32-wasip2 component (`bench/tract`), in the same wasmtime
//!      (`bench-tract`);
//!   3. when Python 3 is on the PATH: TFLite (XNNPACK, builtin, reference kernels), ONNX Runtime native
//!      and ONNX Runtime Web in Node on tf2onnx exports (`bench/compare/run.py`, its own pinned venv).
//!
//!   Each writes one JSON object per measurement into `<target>/bench/`; the table puts every other
//!   runtime's median next to ours (the SIMD component in wasmtime) for the same model and precision.
//!   Then the apps' table (`bench-apps`).
//! - `load` ([`load`]): the bounded load run of `dist/classify-http.wasm` (the `load` binary).
//! - `browser` ([`browser`]): issue 16's browser benchmark: tfjs-tflite and LiteRT.js next to
//!   `dist/classifier-simd.wasm` (through jco) in one headless Chromium page (`bench/browser`).
//! - `worker` ([`worker`]): the premise's experiment, the Worker in workerd next to
//!   `dist/classify-http.wasm` in wasmtime (`bench-worker`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::Value;

use crate::fetch::Fetched;
use crate::{cargo, run, Layout};

const OURS: &str = "edge-classify simd128 (wasmtime cranelift)";

/// The crate in `bench/` whose binaries the modes run.
const PACKAGE: &str = "edge-classify-bench";

#[derive(Subcommand)]
pub enum Mode {
    /// Ours (natively and in wasmtime) next to tract, TFLite and ONNX Runtime, then the apps' table.
    ///
    /// Runs `dist`, then median load and inference times of every golden model at every precision:
    /// ours (natively, and the scalar and SIMD components in wasmtime) next to tract in the same
    /// wasmtime and, with Python 3, TFLite and ONNX Runtime natively and ONNX Runtime Web in Node:
    /// one table (also in target/bench/report.txt). Then the apps' table: embedded model versus
    /// `load`, and classify-http's per-request latency.
    Native {
        /// Timed inferences per model, runtime and round (after one warm-up).
        #[arg(long, default_value_t = 5)]
        runs: u32,
        /// Only ours (and the apps): no tract build, no Python / Node baselines.
        #[arg(long)]
        ours_only: bool,
        #[command(flatten)]
        rounds: Rounds,
    },
    /// The bounded load run of dist/classify-http.wasm, every status checked.
    ///
    /// Runs `dist`, then the load run of dist/classify-http.wasm (bench/'s `load`): 16
    /// connections for 30 s over 127.0.0.1, good and hostile bodies, every status checked.
    Load,
    /// Ours next to tfjs-tflite and LiteRT.js in headless Chromium.
    ///
    /// Runs `dist`, then the browser benchmark (bench/browser): tfjs-tflite and LiteRT.js next to ours
    /// via jco in one headless Chromium page, interleaved rounds (also in target/bench/browser.jsonl).
    Browser {
        /// Timed calls per model, runtime and round (after 5 warm-up calls).
        #[arg(long, default_value_t = 50)]
        runs: u32,
        #[command(flatten)]
        rounds: Rounds,
    },
    /// The Cloudflare Worker in workerd next to dist/classify-http.wasm in wasmtime.
    ///
    /// Runs `worker`, then the premise's experiment: cold start, model load and inference per model
    /// and precision in workerd next to dist/classify-http.wasm in wasmtime, interleaved rounds,
    /// fresh servers (also in target/bench/worker.jsonl).
    Worker {
        /// Timed requests per model, precision, server and round (after the first, the cold start).
        #[arg(long, default_value_t = 10)]
        runs: u32,
        #[command(flatten)]
        rounds: Rounds,
    },
}

#[derive(clap::Args)]
pub struct Rounds {
    /// Interleaved rounds: each round runs every runtime in turn (the order rotated each round);
    /// ratios are medians of per-round ratios.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
}

pub fn bench(mode: Mode) -> Result<()> {
    match mode {
        Mode::Native { runs, ours_only, rounds: Rounds { rounds } } => {
            let layout = crate::layout()?;
            crate::dist()?;
            native(&layout, runs, rounds, !ours_only)?;
            apps(&layout, runs)
        }
        Mode::Load => crate::dist().and_then(|_| load(&crate::layout()?)),
        Mode::Browser { runs, rounds: Rounds { rounds } } => {
            crate::dist().and_then(|_| crate::layout()).and_then(|l| browser(&l, rounds, runs))
        }
        Mode::Worker { runs, rounds: Rounds { rounds } } => {
            crate::build_worker_with_models().and_then(|(l, f)| worker(&l, &f, rounds, runs))
        }
    }
}

/// `cargo run --quiet --release -p edge-classify-bench --bin BIN --`, in the workspace.
fn bench_bin(layout: &Layout, bin: &str) -> Command {
    let mut command = cargo();
    command
        .current_dir(&layout.workspace_root)
        .args(["run", "--quiet", "--release", "-p", PACKAGE, "--bin"])
        .args([bin, "--"]);
    command
}

/// `bench native`'s first table (after `dist`).
fn native(layout: &Layout, runs: u32, rounds: u32, compare: bool) -> Result<()> {
    let dir = layout.target_dir.join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let ours = dir.join("ours.jsonl");
    let mut command = bench_bin(layout, "bench");
    command.arg("--runs").arg(runs.to_string()).arg("--rounds").arg(rounds.to_string()).arg("--json").arg(&ours);
    run(command).context("running our benchmark")?;
    let mut files = vec![ours];
    if compare {
        files.push(tract(layout, &dir, runs)?);
        match python() {
            Some(python) => files.push(baselines(layout, &dir, runs, &python)?),
            None => eprintln!("xtask: no python3 on the PATH: the TFLite / ONNX Runtime rows are left out"),
        }
    }
    let report = table(&files)?;
    print!("{report}");
    let path = dir.join("report.txt");
    std::fs::write(&path, &report).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("xtask: table written to {}", path.display());
    Ok(())
}

/// Builds tract's bench component (its own workspace, `+simd128`) and runs it in wasmtime.
fn tract(layout: &Layout, dir: &Path, runs: u32) -> Result<std::path::PathBuf> {
    let target = layout.target_dir.join("tract");
    let mut build = cargo();
    build
        .current_dir(&layout.workspace_root)
        .env("CARGO_ENCODED_RUSTFLAGS", "-Ctarget-feature=+simd128")
        .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path", "bench/tract/Cargo.toml"])
        .arg("--target-dir")
        .arg(&target);
    run(build).context("building tract's bench component (bench/tract)")?;
    let out = dir.join("tract.jsonl");
    let mut command = bench_bin(layout, "bench-tract");
    command
        .arg("--runs")
        .arg(runs.to_string())
        .arg("--component")
        .arg(target.join("wasm32-wasip2").join("release").join("bench_tract.wasm"))
        .stdout(Stdio::from(File::create(&out).with_context(|| format!("creating {}", out.display()))?));
    run(command).context("running tract's benchmark")?;
    Ok(out)
}

fn python() -> Option<String> {
    let ok = |p: &str| Command::new(p).arg("--version").output().is_ok_and(|o| o.status.success());
    ["python3", "python"].into_iter().find(|p| ok(p)).map(str::to_owned)
}

/// TFLite, ONNX Runtime and ONNX Runtime Web (`bench/compare/run.py`, which makes its own venv).
fn baselines(layout: &Layout, dir: &Path, runs: u32, python: &str) -> Result<std::path::PathBuf> {
    let out = dir.join("compare.jsonl");
    let mut command = Command::new(python);
    command
        .current_dir(&layout.workspace_root)
        .arg("bench/compare/run.py")
        .arg("--work")
        .arg(dir.join("compare"))
        .arg("--runs")
        .arg(runs.to_string())
        .stdout(Stdio::from(File::create(&out).with_context(|| format!("creating {}", out.display()))?));
    run(command).context("running the TFLite / ONNX Runtime baselines (bench/compare/run.py)")?;
    Ok(out)
}

/// Ours next to every other runtime, per model and precision.
fn table(files: &[std::path::PathBuf]) -> Result<String> {
    let mut rows: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
    let mut order = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        for line in text.lines().filter(|l| l.trim_start().starts_with('{')) {
            let v: Value =
                serde_json::from_str(line).with_context(|| format!("a result line of {}", file.display()))?;
            let key =
                (v["model"].as_str().unwrap_or("?").to_owned(), v["precision"].as_str().unwrap_or("?").to_owned());
            if !order.contains(&key) {
                order.push(key.clone());
            }
            rows.entry(key).or_default().push(v);
        }
    }
    let ms = |v: &Value| v["median_ms"].as_f64();
    let mb = |v: &Value| v["peak_mem_bytes"].as_f64().map(|b| format!("{:.1} MB", b / 1e6)).unwrap_or_default();
    let mut out = String::new();
    writeln!(out, "{:<62} {:>10} {:>9} {:>10}  memory", "model / precision / runtime", "median", "ours/this", "load")?;
    // Models in the order ours listed them, then any only the others ran.
    order.sort_by_key(|k| !rows[k].iter().any(|v| v["runtime"] == OURS));
    for key in &order {
        let lines = &rows[key];
        let ours = lines.iter().find(|v| v["runtime"] == OURS).and_then(ms);
        writeln!(out, "{} {}", key.0, key.1)?;
        for v in lines {
            let mut name = v["runtime"].as_str().unwrap_or("?").to_owned();
            if let Some(onnx) = v["onnx"].as_str() {
                // `<model>.fp32.onnx` or `<model>.qdq.onnx`: which export ran.
                let kind = onnx.trim_end_matches(".onnx").rsplit('.').next().unwrap_or(onnx);
                let _ = write!(name, " [{kind}]");
            }
            match (ms(v), v["error"].as_str()) {
                (Some(t), _) => {
                    let ratio = match ours {
                        Some(o) if v["runtime"] != OURS => format!("{:.2}", o / t),
                        _ => String::new(),
                    };
                    let load = v["load_ms"].as_f64().map(|l| format!("{l:.1} ms")).unwrap_or_default();
                    writeln!(out, "    {name:<58} {t:>7.2} ms {ratio:>9} {load:>10}  {}", mb(v))?;
                }
                (None, error) => {
                    // The innermost cause is the informative part of a nested error.
                    let error = error.unwrap_or("no time").lines().next().unwrap_or_default();
                    let tail: Vec<char> = error.chars().collect();
                    let tail: String = tail[tail.len().saturating_sub(100)..].iter().collect();
                    writeln!(out, "    {name:<58} refused: …{tail}")?;
                }
            }
        }
    }
    writeln!(out, "ours/this < 1: ours is faster. Ours = {OURS}; memory: linear memory for wasm rows, peak RSS of the process for native TFLite / ONNX Runtime rows.")?;
    Ok(out)
}

/// The apps' table of `bench native` (`bench-apps`): embedded model versus `load`, and
/// classify-http's per-request latency.
fn apps(layout: &Layout, runs: u32) -> Result<()> {
    let mut command = bench_bin(layout, "bench-apps");
    command.arg("--runs").arg(runs.to_string());
    run(command).context("running the apps benchmark")
}

/// `bench load` (after `dist`): 16 connections for 30 s.
fn load(layout: &Layout) -> Result<()> {
    let mut command = bench_bin(layout, "load");
    command.args(["--seconds", "30", "--connections", "16"]);
    run(command).context("the load run")
}

/// `bench browser` (after `dist`): `npm ci` in `bench/browser` when its `node_modules` is missing
/// or older than the lock, `jco transpile` of `dist/classifier-simd.wasm` into
/// `<target>/bench/browser-jco/`, then `bench/browser/run.mjs`, which prints its table and writes
/// `<target>/bench/browser.jsonl`.
fn browser(layout: &Layout, rounds: u32, runs: u32) -> Result<()> {
    let root = &layout.workspace_root;
    let component = root.join("dist").join("classifier-simd.wasm");
    let project = root.join("bench").join("browser");
    crate::npm_ci_if_stale(&project, "bench/browser")?;
    let dir = layout.target_dir.join("bench");
    let jco = dir.join("browser-jco");
    if jco.exists() {
        std::fs::remove_dir_all(&jco).with_context(|| format!("removing {}", jco.display()))?;
    }
    std::fs::create_dir_all(&jco).with_context(|| format!("creating {}", jco.display()))?;
    let mut transpile = Command::new("node");
    transpile
        .arg(project.join("node_modules/@bytecodealliance/jco/dist/jco.js"))
        .args(["transpile", "--quiet", "--name", "classifier", "-o"])
        .arg(&jco)
        .arg(&component);
    run(transpile).context("jco transpile of dist/classifier-simd.wasm")?;
    let json = dir.join("browser.jsonl");
    let mut bench = Command::new("node");
    bench
        .current_dir(root)
        .arg(project.join("run.mjs"))
        .arg("--jco")
        .arg(&jco)
        .args(["--rounds", &rounds.to_string(), "--runs", &runs.to_string()])
        .arg("--json")
        .arg(&json);
    run(bench).context("the browser benchmark (bench/browser/run.mjs)")?;
    eprintln!("xtask: results written to {}", json.display());
    Ok(())
}

/// The dog-breed model the premise's "10-class ImageNet-derived" row compares with. It has no public
/// source (it is derived in ../shared), so `dist/` cannot embed it: the bench bakes it itself.
const DOG_MODEL: &str = "dog_breeds_mobilenet_v2_160_int8.tflite";
const DOG_LABELS: &str = "dog_breeds_labels.txt";

/// `bench worker` (after `worker`): the Worker in workerd next to `dist/classify-http.wasm`
/// (`bench-worker`), with the dog-breed model baked into both when ../shared has it.
fn worker(layout: &Layout, fetched: &Fetched, rounds: u32, runs: u32) -> Result<()> {
    let bench_dir = layout.target_dir.join("bench");
    let mut args: Vec<std::ffi::OsString> = Vec::new();
    let dirs = crate::fetch::model_dirs(layout);
    let found = dirs.iter().find(|d| d.join(DOG_MODEL).is_file() && d.join(DOG_LABELS).is_file());
    if let Some(dir) = found {
        let (model, labels) = (dir.join(DOG_MODEL), dir.join(DOG_LABELS));
        let baked = bench_dir.join("worker-dog").join("baked");
        let bake = edge_classify_cli::bake::BakeArgs {
            model,
            labels: Some(labels),
            name: None,
            // As `dist` prepares the default model: the file's own int8, and int16; fp32 is
            // converted from the file when first asked for, in both servers alike.
            precision: vec![edge_classify_cli::PrecisionArg::Int8, edge_classify_cli::PrecisionArg::Int16],
            calibrate: None,
            no_tflite: false,
            scalar: false,
            parts: Some(crate::apps::parts_dir(layout)),
            out: baked.clone(),
        };
        edge_classify_cli::bake::run(&bake, &mut std::io::stdout()).context("baking the dog-breed model")?;
        let worker = crate::worker::build_from(
            layout,
            fetched,
            &baked.join("classifier.wasm"),
            &bench_dir.join("worker-dog").join("worker"),
        )?;
        args.push("--dog".into());
        args.push(worker.into());
        args.push(baked.join("classify-http.wasm").into());
    } else {
        let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        eprintln!(
            "xtask: {DOG_MODEL} and {DOG_LABELS} are not in {}: the dog-breed rows are left out",
            dirs.join(", ")
        );
    }
    let mut command = bench_bin(layout, "bench-worker");
    command
        .args(["--rounds", &rounds.to_string(), "--runs", &runs.to_string(), "--json"])
        .arg(bench_dir.join("worker.jsonl"))
        .arg("--cache")
        .arg(bench_dir.join("worker-cwasm"))
        .args(args);
    run(command).context("the Worker benchmark")
}
