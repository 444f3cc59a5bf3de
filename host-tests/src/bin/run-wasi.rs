//! `run-wasi [--dir HOST::GUEST]... COMPONENT [ARGS...]`: runs a `wasi:cli` command component the
//! way `wasmtime run` does (same libraries, same argument and preopen conventions), so
//! `cargo xtask demo` needs no wasmtime CLI installed. Exits with the component's exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use host_tests::apps::{engine, WasiCommand};

fn main() -> ExitCode {
    match run() {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("run-wasi: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run() -> Result<i32> {
    let mut args = std::env::args().skip(1);
    let mut dirs = Vec::new();
    let component = loop {
        match args.next() {
            Some(flag) if flag == "--dir" => {
                let spec = args.next().context("--dir needs HOST::GUEST")?;
                let (host, guest) = spec.split_once("::").unwrap_or((&spec, &spec));
                dirs.push((PathBuf::from(host), guest.to_owned()));
            }
            Some(path) => break PathBuf::from(path),
            None => bail!("usage: run-wasi [--dir HOST::GUEST]... COMPONENT [ARGS...]"),
        }
    };
    let cache = std::env::temp_dir().join("edge-classify-cwasm");
    let command = WasiCommand::new(&engine()?, &component, Some(&cache))?;
    command.run_inherited(&dirs, &args.collect::<Vec<_>>())
}
