//! `dist/wasi-nn.wasm` (the `wasi:nn` provider, `wasi-nn/`), the example guest composed with it
//! (`dist/wasi-nn-classify.wasm`), and `cargo xtask compose`, the same composition as a command.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::{build_component, cargo, display_relative, list, run, top_level_names, Layout, WasmBuild};

/// The provider, built like the SIMD classifier (same flags) with the same bundle. Its own target
/// dir: it builds `edge-classify` without the `wit` feature, and a cdylib's file name carries no
/// feature hash, so sharing the classifier's dir would rebuild both every time.
pub const PROVIDER: WasmBuild = WasmBuild {
    package: "edge-classify-wasi-nn",
    artifact: "edge_classify_wasi_nn.wasm",
    output: "wasi-nn.wasm",
    part: Some(edge_classify_cli::bake::CORE_NN),
    target: "wasm32-unknown-unknown",
    rustflags: crate::SIMD.rustflags,
    target_subdir: Some("simd-nn"),
};

const EXAMPLE: &str = "wasi-nn-classify";

/// Writes `dist/wasi-nn.wasm` with `bundle` baked in, then `dist/wasi-nn-classify.wasm`: the example
/// guest (`examples/wasi-nn-classify`, world `wasi:nn/ml`; unplugged in `dist/parts/`) composed with it.
pub fn build(layout: &Layout, bundle: &[u8]) -> Result<PathBuf> {
    let provider = build_component(layout, &PROVIDER, bundle)?;
    let mut command = cargo();
    command.current_dir(&layout.workspace_root).args([
        "build",
        "--release",
        "-p",
        EXAMPLE,
        "--target",
        "wasm32-wasip2",
    ]);
    run(command).with_context(|| format!("building {EXAMPLE} for wasm32-wasip2"))?;
    // The guest before composition, kept beside the other parts: what a user's own wasi-nn app is.
    let built = layout.target_dir.join("wasm32-wasip2").join("release").join(format!("{EXAMPLE}.wasm"));
    let guest = crate::apps::parts_dir(layout).join(edge_classify_cli::bake::NN_GUEST);
    std::fs::copy(&built, &guest).with_context(|| format!("copying {} to {}", built.display(), guest.display()))?;
    let out = layout.workspace_root.join("dist").join(format!("{EXAMPLE}.wasm"));
    compose_files(layout, &provider, &guest, &out)?;
    Ok(provider)
}

/// `cargo xtask compose --plug PLUG SOCKET -o OUT`.
pub fn compose_files(layout: &Layout, plug: &Path, socket: &Path, out: &Path) -> Result<()> {
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let name = |p: &Path| display_relative(p, &layout.workspace_root);
    let composed = edge_classify_cli::wasm::compose(&read(plug)?, &read(socket)?, &name(plug), &name(socket))?;
    std::fs::write(out, &composed).with_context(|| format!("writing {}", out.display()))?;
    let (imports, exports) = top_level_names(&composed)?;
    println!("{}: {} bytes ({} plugged into {})", name(out), composed.len(), name(plug), name(socket));
    println!("  imports: {}", list(&imports));
    println!("  exports: {}", list(&exports));
    Ok(())
}

/// The `wasmtime` CLI the tests run the composed guest with: `wasmtime` on PATH if it is
/// [`WASMTIME_CLI_VERSION`], else one `cargo install`ed into the target dir (~21 min on 2 cores the
/// first time; kept there for later runs).
pub fn wasmtime_cli(layout: &Layout) -> Result<PathBuf> {
    const WASMTIME_CLI_VERSION: &str = "48.0.8";
    let version_of = |cli: &Path| -> Option<String> {
        let o = std::process::Command::new(cli).arg("--version").output().ok()?;
        Some(String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let wanted = |v: Option<String>| v.is_some_and(|v| v.split_whitespace().nth(1) == Some(WASMTIME_CLI_VERSION));
    if wanted(version_of(Path::new("wasmtime"))) {
        return Ok("wasmtime".into());
    }
    let root = layout.target_dir.join("wasmtime-cli");
    let cli = root.join("bin").join("wasmtime");
    if !wanted(version_of(&cli)) {
        let mut install = cargo();
        install
            .args(["install", "--locked", "--quiet", &format!("wasmtime-cli@{WASMTIME_CLI_VERSION}"), "--root"])
            .arg(&root)
            .arg("--target-dir")
            .arg(root.join("build"));
        eprintln!("xtask: installing wasmtime-cli {WASMTIME_CLI_VERSION} (about 21 minutes on 2 cores, once)");
        run(install).context("cargo install wasmtime-cli")?;
    }
    Ok(cli)
}
