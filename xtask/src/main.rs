//! Build orchestration: `cargo xtask <command>` (alias in `.cargo/config.toml`).
//!
//! - `dist`: build the guest for wasm32 and wrap it into `dist/classifier.wasm`.
//! - `test`: `dist`, then the whole workspace's tests. This is what CI runs.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod quantize;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "edge-classify build tasks")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the guest for wasm32 and encode it as the component dist/classifier.wasm.
    Dist,
    /// Run `dist`, then `cargo test --release --workspace [ARGS...]`.
    Test {
        /// Passed through to `cargo test` as given (e.g. a test-name filter, `-p host-tests`,
        /// `-- --nocapture`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Run `dist`, then print median load and inference times of every golden model, natively
    /// and in wasmtime (Cranelift), from one process.
    Bench {
        /// Timed inferences per model and runtime (after one warm-up).
        #[arg(long, default_value_t = 5)]
        runs: u32,
    },
    /// Quantize a TFLite model (natively): `quantize --target int8 --calibrate <dir> in.tflite out.tflite`.
    Quantize(quantize::QuantizeArgs),
}

fn raw_args_after(subcommand: &str) -> Vec<OsString> {
    std::env::args_os().skip(1).skip_while(|a| a != subcommand).skip(1).collect()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Dist => dist().map(|_| ()),
        // Forward what followed `test` verbatim: clap drops a `--`, which `cargo test` needs to
        // tell its own options from the test binaries' (`cargo xtask test -- --nocapture`).
        Cmd::Test { args: _ } => test(&raw_args_after("test")),
        Cmd::Bench { runs } => bench(runs),
        Cmd::Quantize(args) => quantize::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:?}");
            ExitCode::FAILURE
        }
    }
}

/// One wasm build of the guest. `dist` builds [`BASELINE`]; a SIMD build (`+simd128`) becomes a
/// second constant here with its own output name and its own target subdirectory (different
/// rustflags must not invalidate the baseline's cache).
struct WasmBuild {
    /// Output file under `dist/`.
    output: &'static str,
    target: &'static str,
    /// `-C` flags for the guest only (passed through CARGO_ENCODED_RUSTFLAGS).
    rustflags: &'static [&'static str],
}

const BASELINE: WasmBuild = WasmBuild { output: "classifier.wasm", target: "wasm32-unknown-unknown", rustflags: &[] };

const GUEST_PACKAGE: &str = "edge-classify";
const GUEST_ARTIFACT: &str = "edge_classify.wasm";

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn run(mut command: Command) -> Result<()> {
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
struct Layout {
    workspace_root: PathBuf,
    target_dir: PathBuf,
}

fn layout() -> Result<Layout> {
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

fn dist() -> Result<PathBuf> {
    let layout = layout()?;
    build_component(&layout, &BASELINE)
}

fn build_component(layout: &Layout, build: &WasmBuild) -> Result<PathBuf> {
    let mut command = cargo();
    command.current_dir(&layout.workspace_root).args([
        "build",
        "--release",
        "-p",
        GUEST_PACKAGE,
        "--target",
        build.target,
    ]);
    if !build.rustflags.is_empty() {
        command.env("CARGO_ENCODED_RUSTFLAGS", build.rustflags.join("\x1f"));
    }
    run(command).with_context(|| format!("building {GUEST_PACKAGE} for {}", build.target))?;

    let module_path = layout.target_dir.join(build.target).join("release").join(GUEST_ARTIFACT);
    let module =
        std::fs::read(&module_path).with_context(|| format!("reading the core module {}", module_path.display()))?;

    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .with_context(|| {
            format!(
                "{} has no usable component-type section (does the guest export the world \
                 through wit-bindgen?)",
                module_path.display()
            )
        })?
        .validate(true)
        .encode()
        .with_context(|| format!("encoding {} as a component", module_path.display()))?;

    let dist_dir = layout.workspace_root.join("dist");
    std::fs::create_dir_all(&dist_dir).with_context(|| format!("creating {}", dist_dir.display()))?;
    let out = dist_dir.join(build.output);
    std::fs::write(&out, &component).with_context(|| format!("writing {}", out.display()))?;

    let (imports, exports) =
        top_level_names(&component).with_context(|| format!("reading imports and exports of {}", out.display()))?;
    println!(
        "{}: {} bytes (core module {} bytes)",
        display_relative(&out, &layout.workspace_root),
        component.len(),
        module.len()
    );
    println!("  imports: {}", list(&imports));
    println!("  exports: {}", list(&exports));
    Ok(out)
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".to_owned()
    } else {
        names.join(", ")
    }
}

fn display_relative(path: &Path, root: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).display().to_string()
}

/// The component's own imports and exports (not those of the modules nested inside it).
fn top_level_names(component: &[u8]) -> Result<(Vec<String>, Vec<String>)> {
    use wasmparser::{Parser, Payload};
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(component) {
        match payload? {
            Payload::Version { .. } => depth += 1,
            Payload::End(_) => depth -= 1,
            Payload::ComponentImportSection(section) if depth == 1 => {
                for import in section {
                    imports.push(import?.name.full_name().into_owned());
                }
            }
            Payload::ComponentExportSection(section) if depth == 1 => {
                for export in section {
                    exports.push(export?.name.full_name().into_owned());
                }
            }
            _ => {}
        }
    }
    Ok((imports, exports))
}

fn test(args: &[OsString]) -> Result<()> {
    let layout = layout()?;
    build_component(&layout, &BASELINE)?;
    let mut command = cargo();
    command.current_dir(&layout.workspace_root).args(["test", "--release", "--workspace"]).args(args);
    run(command).context("tests failed")
}

fn bench(runs: u32) -> Result<()> {
    let layout = layout()?;
    build_component(&layout, &BASELINE)?;
    let mut command = cargo();
    command
        .current_dir(&layout.workspace_root)
        .args(["run", "--quiet", "--release", "-p", "host-tests", "--bin", "bench", "--", "--runs"])
        .arg(runs.to_string());
    run(command).context("running the benchmark")
}
