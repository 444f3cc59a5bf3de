//! Build orchestration: `cargo xtask <command>` (alias in `.cargo/config.toml`).
//!
//! - `dist`: build the guest for wasm32 and wrap it into `dist/classifier.wasm` (scalar) and
//!   `dist/classifier-simd.wasm` (`simd128`), both with the prepared embedded model, then build the
//!   apps for wasm32-wasip2 and compose each with the SIMD classifier (`dist/classify.wasm`,
//!   `dist/classify-http.wasm`, `dist/doorbell.wasm`); then `dist/wasi-nn.wasm`, the wasi:nn provider
//!   with the same model, and the example wasi-nn guest composed with it (`wasi_nn.rs`).
//! - `test`: `dist` and `worker`, then the whole workspace's tests, the kernel tests again inside wasm32-wasip2
//!   with simd128 (testing the SIMD kernels), then `runtimes`. This is what CI runs.
//! - `runtimes`: the runtime matrix (every golden case on every engine, bit-identical to native).
//! - `bench <mode>` (`bench.rs`, binaries in `bench/`): `bench native`, ours next to tract, TFLite, ONNX
//!   Runtime and ONNX Runtime Web; `bench load`, the bounded load run of `dist/classify-http.wasm`;
//!   `bench browser`, tfjs-tflite and LiteRT.js next to ours via jco in headless Chromium
//!   (`bench/browser`); `bench worker`, the premise's experiment, the Worker in workerd next to
//!   `wasmtime serve`.
//! - `worker`: `dist`, then `dist/worker/`, the Cloudflare Worker (`worker.rs`); `worker --serve`
//!   serves it with workerd.
//! - `demo`: `dist`, then classify a sample photo with `dist/classify.wasm` in wasmtime.
//! - `check`: rustfmt and clippy (native, and wasm32 with simd128), as CI runs them.
//! - `fuzz`: libFuzzer on the parsers and the request path (`fuzz.rs`); the corpora replay in `test`.
//! - `compose`: plug one component into another's imports (`wasi_nn.rs`), as `dist` does for the apps
//!   and for `dist/wasi-nn-classify.wasm`.
//! - `fetch-models`: find or download the files in `models.json` (used by `dist`).

mod apps;
mod bench;
mod fetch;
mod fuzz;
mod modules;
mod wasi_nn;
mod worker;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, ensure, Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "edge-classify build tasks")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the guest for wasm32 and encode it as the component dist/classifier.wasm, then the
    /// apps composed with it (dist/classify.wasm, dist/classify-http.wasm, dist/doorbell.wasm).
    Dist,
    /// Find (or download) the models and sample photo listed in models.json; sha256 checked.
    FetchModels,
    /// Run `dist`, then classify a sample photo with dist/classify.wasm in wasmtime (embedded
    /// model; no wasmtime CLI needed). Photos given are classified instead of the sample.
    Demo { photos: Vec<PathBuf> },
    /// Run `dist`, then `cargo test --release --workspace [ARGS...]`, then `runtimes`.
    Test {
        /// Passed through to `cargo test` as given (e.g. a test-name filter, `-p host-tests`,
        /// `-- --nocapture`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Run `dist`, then the runtime matrix: every golden case through wasmtime (Cranelift, Winch,
    /// Pulley), V8 via jco and natively; fails unless every runtime gives native's bits.
    Runtimes {
        /// Cases Pulley (an interpreter) runs per model over 10 MMACs.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        pulley_cases: u32,
    },
    /// The benchmarks, one subcommand each: `bench native` (ours next to tract, TFLite and ONNX
    /// Runtime), `bench load`, `bench browser`, `bench worker` (binaries in bench/, see bench.rs).
    Bench {
        #[command(subcommand)]
        mode: bench::Mode,
    },
    /// Run `dist`, then write dist/worker/: the Cloudflare Worker (apps/worker/worker.js around
    /// dist/classifier-simd.wasm transpiled by jco), with wrangler.toml and a workerd config.capnp.
    Worker {
        /// Then serve it with workerd in the foreground.
        #[arg(long)]
        serve: bool,
        /// Where `--serve` listens.
        #[arg(long, default_value = "127.0.0.1:8787", requires = "serve")]
        addr: String,
    },
    /// Plug one component's exports into another's imports (wac's `plug`, as `dist` composes the
    /// apps): `compose --plug dist/wasi-nn.wasm app.wasm -o out.wasm`. Fails if an import of an
    /// interface the plug exports is left.
    Compose {
        /// The component whose exports satisfy the imports (dist/wasi-nn.wasm, dist/classifier.wasm).
        #[arg(long)]
        plug: PathBuf,
        /// The component that imports them.
        socket: PathBuf,
        #[arg(short, long)]
        out: PathBuf,
    },
    /// Quantize a TFLite model (natively): `quantize --target int8 --calibrate <dir> in.tflite out.tflite`.
    /// The same command as `edge-classify quantize` (golden/generate.py runs this one).
    Quantize(edge_classify_cli::quantize::QuantizeArgs),
    /// Style and lints, as CI runs them: `cargo fmt --check`, clippy with warnings denied natively
    /// (every crate and test) and for wasm32 with simd128 (the SIMD kernels, which no native build
    /// compiles: the quick feedback on them before the kernel tests and the runtime matrix).
    Check,
    /// libFuzzer on the targets in fuzz/src/targets.rs, from the committed corpora (see fuzz.rs):
    /// `fuzz [TARGET...] [--time S] [--runs N] [--minimize]`, `fuzz --seed`, `fuzz --list`.
    Fuzz(fuzz::FuzzArgs),
}

fn raw_args_after(subcommand: &str) -> Vec<OsString> {
    std::env::args_os().skip(1).skip_while(|a| a != subcommand).skip(1).collect()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Dist => dist().map(|_| ()),
        Cmd::FetchModels => layout().and_then(|l| {
            let fetched = fetch::fetch(&l)?;
            fetch::print(&fetched, &l.workspace_root);
            Ok(())
        }),
        Cmd::Demo { photos } => apps::demo(&photos),
        // Forward what followed `test` verbatim: clap drops a `--`, which `cargo test` needs to
        // tell its own options from the test binaries' (`cargo xtask test -- --nocapture`).
        Cmd::Test { args: _ } => test(&raw_args_after("test")),
        Cmd::Bench { mode } => bench::bench(mode),
        Cmd::Runtimes { pulley_cases } => dist().and_then(|_| runtimes(&layout()?, pulley_cases)),
        Cmd::Worker { serve, addr } => {
            build_worker().and_then(|l| if serve { worker::serve(&l, &addr) } else { Ok(()) })
        }
        Cmd::Compose { plug, socket, out } => layout().and_then(|l| wasi_nn::compose_files(&l, &plug, &socket, &out)),
        Cmd::Quantize(args) => edge_classify_cli::quantize::run(args),
        Cmd::Check => layout().and_then(|l| check(&l)),
        Cmd::Fuzz(args) => layout().and_then(|l| fuzz::fuzz(&l, args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:?}");
            ExitCode::FAILURE
        }
    }
}

/// One wasm build of the guest. `dist` builds [`BASELINE`] (scalar) and [`SIMD`] (`+simd128`), each
/// with its own output name; the SIMD build has its own target subdirectory (different rustflags
/// must not invalidate the baseline's cache).
pub(crate) struct WasmBuild {
    /// The crate and the core module cargo writes for it.
    package: &'static str,
    artifact: &'static str,
    /// Output file under `dist/`.
    output: &'static str,
    /// The core module as compiled (no model), under `dist/parts/` (for `edge-classify bake`).
    part: Option<&'static str>,
    target: &'static str,
    /// `-C` flags for the guest only (passed through CARGO_ENCODED_RUSTFLAGS).
    rustflags: &'static [&'static str],
    /// Subdirectory of the target dir for builds with their own rustflags, so switching between
    /// builds does not rebuild either from scratch.
    target_subdir: Option<&'static str>,
}

const BASELINE: WasmBuild = WasmBuild {
    package: GUEST_PACKAGE,
    artifact: GUEST_ARTIFACT,
    output: "classifier.wasm",
    part: Some(edge_classify_cli::bake::CORE_SCALAR),
    target: "wasm32-unknown-unknown",
    rustflags: &[],
    target_subdir: None,
};

/// The same guest with wasm SIMD128 enabled (every runtime in the matrix supports it).
const SIMD: WasmBuild = WasmBuild {
    package: GUEST_PACKAGE,
    artifact: GUEST_ARTIFACT,
    output: "classifier-simd.wasm",
    part: Some(edge_classify_cli::bake::CORE_SIMD),
    target: "wasm32-unknown-unknown",
    rustflags: &["-Ctarget-feature=+simd128"],
    target_subdir: Some("simd"),
};

const GUEST_PACKAGE: &str = "edge-classify";
const GUEST_ARTIFACT: &str = "edge_classify.wasm";

pub(crate) fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

pub(crate) fn run(mut command: Command) -> Result<()> {
    let shown = format!("{command:?}");
    eprintln!("xtask: running {shown}");
    let status = command.status().with_context(|| format!("starting {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}

/// The workspace root and the target directory, as cargo sees them (honours
/// `CARGO_TARGET_DIR`, `build.target-dir` and friends).
pub(crate) struct Layout {
    workspace_root: PathBuf,
    target_dir: PathBuf,
}

pub(crate) fn layout() -> Result<Layout> {
    let output =
        cargo().args(["metadata", "--format-version", "1", "--no-deps"]).output().context("running cargo metadata")?;
    if !output.status.success() {
        bail!("cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("parsing cargo metadata output")?;
    let path = |key: &str| -> Result<PathBuf> {
        metadata[key].as_str().map(PathBuf::from).with_context(|| format!("cargo metadata has no {key}"))
    };
    Ok(Layout { workspace_root: path("workspace_root")?, target_dir: path("target_directory")? })
}

pub(crate) fn dist() -> Result<PathBuf> {
    dist_with_models().map(|(simd, _)| simd)
}

/// `dist`, also returning where it found the models (so a later step does not look them up and
/// hash them again).
fn dist_with_models() -> Result<(PathBuf, fetch::Fetched)> {
    let layout = layout()?;
    ensure_targets()?;
    let fetched = fetch::fetch(&layout)?;
    std::fs::create_dir_all(apps::parts_dir(&layout)).context("creating dist/parts")?;
    let bundle = apps::embedded_bundle(&fetched)?;
    build_component(&layout, &BASELINE, &bundle)?;
    let simd = build_component(&layout, &SIMD, &bundle)?;
    // The apps get the SIMD build: every runtime in the matrix runs it, with the same bits, faster.
    apps::build_and_compose(&layout, &fetched, &simd)?;
    wasi_nn::build(&layout, &bundle)?;
    Ok((simd, fetched))
}

/// The wasm targets the builds need, added through rustup when missing (a fresh machine has only
/// the host's), so the README's two commands set everything up themselves.
fn ensure_targets() -> Result<()> {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    let Ok(installed) = installed else {
        return Ok(()); // no rustup: a toolchain managed otherwise must bring its targets itself
    };
    let installed = String::from_utf8_lossy(&installed.stdout);
    let missing: Vec<&str> =
        [BASELINE.target, "wasm32-wasip2"].into_iter().filter(|t| !installed.lines().any(|l| l.trim() == *t)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut add = Command::new("rustup");
    add.args(["target", "add"]).args(&missing);
    run(add).context("adding the wasm targets with rustup")
}

/// Compiles a guest (no model in it), keeps its core module under `dist/parts/` if it has a part
/// name, and writes the component with `bundle` baked in.
pub(crate) fn build_component(layout: &Layout, build: &WasmBuild, bundle: &[u8]) -> Result<PathBuf> {
    let mut command = cargo();
    command.current_dir(&layout.workspace_root).args([
        "build",
        "--release",
        "-p",
        build.package,
        "--target",
        build.target,
    ]);
    if !build.rustflags.is_empty() {
        command.env("CARGO_ENCODED_RUSTFLAGS", build.rustflags.join("\x1f"));
    }
    let target_dir = match build.target_subdir {
        Some(sub) => layout.target_dir.join(sub),
        None => layout.target_dir.clone(),
    };
    if build.target_subdir.is_some() {
        command.arg("--target-dir").arg(&target_dir);
    }
    run(command).with_context(|| format!("building {} for {}", build.package, build.target))?;

    let module_path = target_dir.join(build.target).join("release").join(build.artifact);
    let module =
        std::fs::read(&module_path).with_context(|| format!("reading the core module {}", module_path.display()))?;
    if let Some(part) = build.part {
        let part = apps::parts_dir(layout).join(part);
        std::fs::write(&part, &module).with_context(|| format!("writing {}", part.display()))?;
    }
    let component = edge_classify_cli::bake::classifier(&module, bundle)
        .with_context(|| format!("baking the default model into {}", module_path.display()))?;

    let out = layout.workspace_root.join("dist").join(build.output);
    std::fs::write(&out, &component).with_context(|| format!("writing {}", out.display()))?;

    let (imports, exports) =
        top_level_names(&component).with_context(|| format!("reading imports and exports of {}", out.display()))?;
    println!(
        "{}: {} bytes (core module {} bytes + model bundle {} bytes)",
        display_relative(&out, &layout.workspace_root),
        component.len(),
        module.len(),
        bundle.len()
    );
    println!("  imports: {}", list(&imports));
    println!("  exports: {}", list(&exports));
    Ok(out)
}

pub(crate) fn list(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".to_owned()
    } else {
        names.join(", ")
    }
}

pub(crate) fn display_relative(path: &Path, root: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).display().to_string()
}

pub(crate) use edge_classify_cli::wasm::top_level_names;

fn check(layout: &Layout) -> Result<()> {
    ensure_targets()?;
    let mut fmt = cargo();
    fmt.current_dir(&layout.workspace_root).args(["fmt", "--all", "--check"]);
    run(fmt).context("rustfmt: run `cargo fmt --all`")?;
    // Import circles: the executor's modules read one way (issue 30). Textual, so it runs first.
    let circles = modules::circles(&layout.workspace_root.join("component"))?;
    for c in &circles {
        eprintln!("import circle in component/: {} -> {}", c.join(" -> "), c[0]);
    }
    ensure!(
        circles.is_empty(),
        "{} import circle(s) in component/ (xtask/src/modules.rs says how they are found)",
        circles.len()
    );
    let mut native = cargo();
    native.current_dir(&layout.workspace_root).args([
        "clippy",
        "--release",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    run(native).context("clippy (native)")?;
    // The shipped build (the WIT glue) and the one the SIMD kernel tests run in, in the SIMD
    // build's own target dir as `dist` uses it.
    for (target, tests) in [("wasm32-unknown-unknown", false), ("wasm32-wasip2", true)] {
        let mut c = cargo();
        c.current_dir(&layout.workspace_root)
            .env("CARGO_ENCODED_RUSTFLAGS", SIMD.rustflags.join("\x1f"))
            .args(["clippy", "--release", "-p", GUEST_PACKAGE, "--lib"])
            .args(tests.then_some("--tests"))
            .args(["--target", target, "--target-dir"])
            .arg(layout.target_dir.join(SIMD.target_subdir.unwrap_or("simd")))
            .args(["--", "-D", "warnings"]);
        run(c).with_context(|| format!("clippy ({target}, simd128)"))?;
    }
    // The wasi:nn provider's glue, in the target dir its build uses, and the example guest.
    let mut c = cargo();
    c.current_dir(&layout.workspace_root)
        .env("CARGO_ENCODED_RUSTFLAGS", wasi_nn::PROVIDER.rustflags.join("\x1f"))
        .args(["clippy", "--release", "-p", wasi_nn::PROVIDER.package, "--lib", "--target", wasi_nn::PROVIDER.target])
        .arg("--target-dir")
        .arg(layout.target_dir.join(wasi_nn::PROVIDER.target_subdir.unwrap_or("simd-nn")))
        .args(["--", "-D", "warnings"]);
    run(c).context("clippy (the wasi:nn provider, wasm32)")?;
    let mut c = cargo();
    c.current_dir(&layout.workspace_root).args([
        "clippy",
        "--release",
        "-p",
        "wasi-nn-classify",
        "--target",
        "wasm32-wasip2",
        "--",
        "-D",
        "warnings",
    ]);
    run(c).context("clippy (the wasi-nn example guest, wasm32-wasip2)")?;
    Ok(())
}

/// `dist`, then `dist/worker/`.
fn build_worker() -> Result<Layout> {
    build_worker_with_models().map(|(layout, _)| layout)
}

fn build_worker_with_models() -> Result<(Layout, fetch::Fetched)> {
    let (_, fetched) = dist_with_models()?;
    let layout = layout()?;
    worker::build(&layout, &fetched)?;
    Ok((layout, fetched))
}

/// `npm ci` in `project` (`what` names it in errors) when its `node_modules` is missing or older
/// than its lock file.
pub(crate) fn npm_ci_if_stale(project: &Path, what: &str) -> Result<()> {
    let modified = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
    let installed = modified(&project.join("node_modules").join(".package-lock.json"));
    if installed.is_none() || installed < modified(&project.join("package-lock.json")) {
        let mut npm = Command::new("npm");
        npm.current_dir(project).args(["ci", "--no-audit", "--no-fund"]);
        run(npm).with_context(|| format!("npm ci in {what}"))?;
    }
    Ok(())
}

fn test(args: &[OsString]) -> Result<()> {
    let layout = build_worker()?;
    let wasmtime = wasi_nn::wasmtime_cli(&layout)?;
    let mut command = cargo();
    command
        .current_dir(&layout.workspace_root)
        .env("WASMTIME_CLI", wasmtime)
        .args(["test", "--release", "--workspace"])
        .args(args);
    run(command).context("tests failed")?;
    simd_kernel_tests(&layout)?;
    runtimes(&layout, 1)
}

/// The kernel tests again, compiled for wasm32-wasip2 with `simd128` and run by `run-wasi`
/// (wasmtime-wasi): there the per-precision entry points are the `simd128` micro-kernels, which the
/// native build does not compile, so this is where they are proptested bit for bit against the
/// scalar loops. The workspace is preopened at its own path for `golden/kernel_cases.txt`.
fn simd_kernel_tests(layout: &Layout) -> Result<()> {
    let mut build = cargo();
    build.current_dir(&layout.workspace_root).args([
        "build",
        "--quiet",
        "--release",
        "-p",
        "host-tests",
        "--bin",
        "run-wasi",
    ]);
    run(build).context("building run-wasi")?;
    let runner = layout.target_dir.join("release").join("run-wasi");
    let root = layout.workspace_root.display().to_string();
    ensure!(
        !root.contains(char::is_whitespace),
        "the workspace path {root} has whitespace, which a cargo runner cannot take"
    );
    let mut command = cargo();
    command
        .current_dir(&layout.workspace_root)
        .env("CARGO_TARGET_WASM32_WASIP2_RUNNER", format!("{} --dir {root}::{root}", runner.display()))
        .env("CARGO_ENCODED_RUSTFLAGS", SIMD.rustflags.join("\x1f"))
        .args(["test", "--release", "-p", GUEST_PACKAGE, "--lib", "--target", "wasm32-wasip2", "--target-dir"])
        .arg(layout.target_dir.join(SIMD.target_subdir.unwrap_or("simd")))
        .args(["--", "kernels::"]);
    run(command).context("kernel tests in wasm32-wasip2 with simd128")
}

fn runtimes(layout: &Layout, pulley_cases: u32) -> Result<()> {
    let mut command = cargo();
    command
        .current_dir(&layout.workspace_root)
        .args(["run", "--quiet", "--release", "-p", "host-tests", "--bin", "runtimes", "--"])
        .arg("--work")
        .arg(layout.target_dir.join("runtimes"))
        .arg("--pulley-cases")
        .arg(pulley_cases.to_string());
    run(command).context("runtime matrix")
}
