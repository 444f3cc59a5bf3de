//! `cargo xtask worker`: `dist/worker/`, the Cloudflare Worker around `dist/classifier-simd.wasm`
//! (`apps/worker/worker.js`), ready for `wrangler deploy` and for plain workerd; `worker --serve`
//! serves it with workerd in the foreground.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{ensure, Context, Result};

use crate::fetch::Fetched;
use crate::{apps, run, Layout};

/// Pinned with a lock file: jco (the transpiler) and workerd (whose binary ships in this package).
const PROJECT: &str = "apps/worker";
/// workerd's date: no newer than the pinned workerd release supports.
const COMPATIBILITY_DATE: &str = "2025-06-01";
/// The core modules jco writes for the classifier, which `worker.js` imports by name.
const CORE_MODULES: &[&str] = &["classifier.core.wasm", "classifier.core2.wasm", "classifier.core3.wasm"];

pub fn dir(layout: &Layout) -> PathBuf {
    layout.workspace_root.join("dist").join("worker")
}

pub fn workerd(layout: &Layout) -> PathBuf {
    layout.workspace_root.join(PROJECT).join("node_modules/@cloudflare/workerd-linux-64/bin/workerd")
}

/// Writes `dist/worker/` from `dist/classifier-simd.wasm` (built by `dist`).
pub fn build(layout: &Layout, fetched: &Fetched) -> Result<PathBuf> {
    let classifier = layout.workspace_root.join("dist").join("classifier-simd.wasm");
    build_from(layout, fetched, &classifier, &dir(layout))
}

/// Writes the Worker around `classifier` (any baked classifier: its embedded model is the default,
/// `model=imagenet`) to `out`.
pub fn build_from(layout: &Layout, fetched: &Fetched, classifier: &Path, out: &Path) -> Result<PathBuf> {
    let root = &layout.workspace_root;
    let project = root.join(PROJECT);
    crate::npm_ci_if_stale(&project, PROJECT)?;
    let out = out.to_path_buf();
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("removing {}", out.display()))?;
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    // `--instantiation`: the bindings take the core modules from the caller, which hands over the ones
    // it imports statically, instead of compiling bytes (which Workers refuse); `sync` because every
    // module is already compiled when the Worker's top level runs.
    let mut transpile = Command::new("node");
    transpile
        .arg(project.join("node_modules/@bytecodealliance/jco/dist/jco.js"))
        .args(["transpile", "--quiet", "--name", "classifier", "--instantiation", "sync", "--no-nodejs-compat"])
        .args(["--no-typescript", "-o"])
        .arg(&out)
        .arg(classifier);
    run(transpile).with_context(|| format!("jco transpile of {}", classifier.display()))?;
    let mut cores: Vec<String> = std::fs::read_dir(&out)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".wasm"))
        .collect();
    cores.sort();
    ensure!(cores == CORE_MODULES, "jco wrote the core modules {cores:?}; worker.js imports {CORE_MODULES:?}");
    copy(&project.join("worker.js"), &out.join("worker.js"))?;
    copy(fetched.path(apps::DOORBELL_MODEL)?, &out.join("person.bin"))?;
    let contract = contract_js();
    write(&out.join("contract.js"), &contract)?;
    let modules: String = ["worker.js", "classifier.js", "contract.js"]
        .iter()
        .map(|m| format!("    (name = \"{m}\", esModule = embed \"{m}\"),\n"))
        .chain(CORE_MODULES.iter().map(|m| format!("    (name = \"{m}\", wasm = embed \"{m}\"),\n")))
        .chain(["    (name = \"person.bin\", data = embed \"person.bin\"),\n".to_owned()])
        .collect();
    write(
        &out.join("config.capnp"),
        &format!(
            "# Written by `cargo xtask worker`: `workerd serve config.capnp [--socket-addr http=HOST:PORT]`.\n\
             using Workerd = import \"/workerd/workerd.capnp\";\n\n\
             const config :Workerd.Config = (\n  services = [ (name = \"main\", worker = .classifier) ],\n  \
             sockets = [ (name = \"http\", address = \"127.0.0.1:8787\", http = (), service = \"main\") ],\n);\n\n\
             const classifier :Workerd.Worker = (\n  modules = [\n{modules}  ],\n  \
             compatibilityDate = \"{COMPATIBILITY_DATE}\",\n);\n"
        ),
    )?;
    write(
        &out.join("wrangler.toml"),
        &format!(
            "# Written by `cargo xtask worker`: `wrangler deploy` from this directory (wrangler's default\n\
             # rules upload *.wasm as compiled modules and *.bin as data).\n\
             name = \"edge-classify\"\nmain = \"worker.js\"\ncompatibility_date = \"{COMPATIBILITY_DATE}\"\n\n\
             [limits]\n# Paid plan: one ImageNet inference is ~20-40 ms of CPU, over the free plan's 10 ms.\ncpu_ms = 30000\n"
        ),
    )?;
    let files: Vec<_> =
        std::fs::read_dir(&out)?.filter_map(|e| e.ok()?.metadata().ok()).filter(|m| m.is_file()).collect();
    let bytes: u64 = files.iter().map(|m| m.len()).sum();
    println!("{}: {} files, {bytes} bytes", crate::display_relative(&out, root), files.len());
    Ok(out)
}

/// `workerd serve` of `dist/worker/` on `addr`, in the foreground.
pub fn serve(layout: &Layout, addr: &str) -> Result<()> {
    let mut workerd = Command::new(workerd(layout));
    workerd.current_dir(dir(layout)).args(["serve", "config.capnp", "--socket-addr"]).arg(format!("http={addr}"));
    eprintln!("xtask: serving dist/worker on http://{addr}/ (Ctrl-C stops it)");
    run(workerd).context("workerd serve dist/worker/config.capnp")
}

/// `contract.js`: classify-http's contract as the tables `worker.js` looks up
/// ([`classify_http::contract::worker_tables`]), each `export const NAME = JSON;`.
fn contract_js() -> String {
    let mut js = String::from(
        "// Written by `cargo xtask worker` from classify-http's contract (apps/http/src/contract.rs):\n\
         // what worker.js looks up. The shapes' `$` placeholders name WIT fields as jco spells them.\n",
    );
    for (name, value) in classify_http::contract::worker_tables() {
        let value = if name.ends_with("_SHAPE") { jco_placeholders(&value) } else { value };
        let json = serde_json::to_string_pretty(&value).expect("JSON values serialize");
        js.push_str(&format!("export const {name} = {json};\n"));
    }
    js
}

/// A shape with its placeholders' WIT names (`$info.parameter-bytes`) spelled as jco's bindings name
/// them, in lowerCamelCase (`$info.parameterBytes`).
fn jco_placeholders(shape: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match shape {
        Value::String(s) if s.starts_with('$') => {
            let mut camel = String::with_capacity(s.len());
            let mut upper = false;
            for c in s.chars() {
                match c {
                    '-' => upper = true,
                    c if upper => {
                        camel.extend(c.to_uppercase());
                        upper = false;
                    }
                    c => camel.push(c),
                }
            }
            Value::String(camel)
        }
        Value::Array(items) => Value::Array(items.iter().map(jco_placeholders).collect()),
        Value::Object(fields) => Value::Object(fields.iter().map(|(k, v)| (k.clone(), jco_placeholders(v))).collect()),
        other => other.clone(),
    }
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
