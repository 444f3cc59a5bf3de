//! `dist/wasi-nn.wasm` through an unmodified wasi-nn guest: `dist/wasi-nn-classify.wasm`
//! (`examples/wasi-nn-classify`, written against the wasi:nn WIT only) composed with the provider,
//! run as `wasmtime run` runs it (wasmtime-wasi, no wasi-nn support linked) and by jco in Node, and
//! every run's output compared between the two. Its outputs must equal
//! `infer` of the executor on every golden case of every shared model (the runtime matrix holds
//! the native executor and `classifier.infer` on every engine to the same bits), fed as U8 and as
//! FP32; its errors carry the codes wasmtime's own wasi-nn host gives.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{bail, ensure, Context, Result};
use host_tests::api::{Precision, TensorData};
use host_tests::apps::{Output, WasiCommand};
use host_tests::golden::Dtype;
use host_tests::wasi_nn::{check_model, fresh_dir, parse, GuestHost, Printed};

use crate::common::{
    check_top1_label, dist, engine, golden, golden_model, images_dir, models_dir, once, strings, EMBEDDED_MODEL_ID,
};

/// The composed guest on each host: wasmtime-wasi (as `wasmtime run`) and jco in Node. A host that
/// cannot start fails every test that needs it.
fn hosts() -> &'static [GuestHost] {
    static CELL: OnceLock<Result<Vec<GuestHost>, String>> = OnceLock::new();
    once::<Vec<GuestHost>>(&CELL, || {
        let component = dist("wasi-nn-classify.wasm");
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR"));
        Ok(vec![
            GuestHost::Wasmtime(
                WasiCommand::new(engine(), &component, Some(cache)).context("compiling dist/wasi-nn-classify.wasm")?,
            ),
            GuestHost::jco(&component).context("transpiling dist/wasi-nn-classify.wasm with jco")?,
        ])
    })
}

fn scratch(name: &str) -> Result<PathBuf> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasi-nn").join(name);
    fresh_dir(&dir)?;
    Ok(dir)
}

/// Runs on every host; fails unless they all print the same.
fn run(dirs: &[(PathBuf, String)], args: &[String]) -> Result<Output> {
    let mut first: Option<Output> = None;
    for host in hosts() {
        let o =
            host.run(dirs, args).with_context(|| format!("{}: wasi-nn-classify {}", host.name(), args.join(" ")))?;
        if let Some(f) = &first {
            ensure!(
                (f.exit_code, &f.stdout, &f.stderr) == (o.exit_code, &o.stdout, &o.stderr),
                "{} and {} differ on {args:?}:
{f:?}
{o:?}",
                hosts()[0].name(),
                host.name()
            );
        }
        first.get_or_insert(o);
    }
    first.context("no hosts")
}

#[test]
fn every_golden_case_through_wasi_nn_equals_infer_fed_as_u8_and_as_fp32() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for model in golden().models() {
        let mut runs: Vec<(Option<Precision>, &str)> = vec![(None, "fp32")];
        if model.input.dtype == Dtype::Uint8 {
            runs.push((None, "u8"));
        }
        // The second graph builder's precision, both directions from the uint8 file.
        if model.id == EMBEDDED_MODEL_ID {
            runs.extend([
                (Some(Precision::Int16), "u8"),
                (Some(Precision::Fp32), "fp32"),
                (Some(Precision::Int16), "fp32"),
            ]);
        }
        for (precision, ty) in runs {
            for (h, host) in hosts().iter().enumerate() {
                let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasi-nn").join(format!("golden-{h}"));
                match check_model(host, golden(), model, precision, ty, &work) {
                    Ok(n) => checked += n,
                    Err(e) => failures.push(format!("{e:#}")),
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("wasi-nn: {checked} golden cases on {} hosts, every output bit-identical to infer", hosts().len());
    assert!(checked >= 80, "only {checked} cases checked");
}

/// The input of the first golden case of the embedded model as U8 bytes, NHWC.
fn grace_hopper_u8() -> Result<(Vec<u8>, Vec<u32>)> {
    let model = golden_model(EMBEDDED_MODEL_ID);
    let case = model.cases.iter().find(|c| c.image.starts_with("grace_hopper")).context("no grace_hopper case")?;
    let input = case.input(golden())?.to_tensor()?;
    let TensorData::Uint8(v) = input.data else { bail!("the embedded model's input is not uint8") };
    Ok((v, input.shape))
}

#[test]
fn nchw_input_is_transposed_to_the_models_nhwc() -> Result<()> {
    let (nhwc, shape) = grace_hopper_u8()?;
    let [1, h, w, c] = shape[..] else { bail!("shape {shape:?}") };
    let (h, w, c) = (h as usize, w as usize, c as usize);
    let mut nchw = vec![0u8; nhwc.len()];
    for y in 0..h {
        for x in 0..w {
            for ch in 0..c {
                nchw[(ch * h + y) * w + x] = nhwc[(y * w + x) * c + ch];
            }
        }
    }
    let work = scratch("nchw")?;
    std::fs::write(work.join("nhwc.bin"), &nhwc)?;
    std::fs::write(work.join("nchw.bin"), &nchw)?;
    let dirs = [(work, "/work".to_owned())];
    let out = |dims: &str, file: &str| -> Result<Vec<Printed>> {
        let o = run(&dirs, &strings(&["--name", "imagenet", "--dims", dims, "--type", "u8", "--input", file]))?;
        ensure!(o.exit_code == 0, "exit {}: {}", o.exit_code, o.stderr);
        parse(&o.stdout)
    };
    let a = out("1,224,224,3", "/work/nhwc.bin")?;
    let b = out("1,3,224,224", "/work/nchw.bin")?;
    assert_eq!(a, b, "NCHW input gave another output than the same pixels in NHWC");
    assert_eq!(a[0].dims, vec![1, 1001]);
    Ok(())
}

#[test]
fn names_serve_the_baked_model_at_each_precision_as_the_file_does() -> Result<()> {
    let (nhwc, _) = grace_hopper_u8()?;
    let work = scratch("names")?;
    std::fs::write(work.join("in.bin"), &nhwc)?;
    let model = golden_model(EMBEDDED_MODEL_ID).model_path();
    let dirs = [(work, "/work".to_owned()), (model.parent().context("folder")?.to_owned(), "/model".to_owned())];
    let file = format!("/model/{}", model.file_name().context("file name")?.to_string_lossy());
    let tensor = strings(&["--dims", "1,224,224,3", "--type", "u8", "--input", "/work/in.bin"]);
    for (name, options) in
        [("imagenet", None), ("default/int8", Some("precision=int8")), ("imagenet/int16", Some("precision=int16"))]
    {
        let mut by_name = strings(&["--name", name]);
        by_name.extend(tensor.iter().cloned());
        let mut by_file = vec!["--model".to_owned(), file.clone()];
        if let Some(o) = options {
            by_file.extend(["--options".to_owned(), o.to_owned()]);
        }
        by_file.extend(tensor.iter().cloned());
        let (a, b) = (run(&dirs, &by_name)?, run(&dirs, &by_file)?);
        ensure!(a.exit_code == 0 && b.exit_code == 0, "{name}: {} / {}", a.stderr, b.stderr);
        assert_eq!(parse(&a.stdout)?, parse(&b.stdout)?, "load-by-name {name:?} differs from load of the file");
    }
    Ok(())
}

#[test]
fn every_mistake_gets_wasmtimes_error_code_and_a_message_never_a_trap() -> Result<()> {
    let work = scratch("errors")?;
    std::fs::write(work.join("short.bin"), [0u8; 1000])?;
    std::fs::write(work.join("rgba.bin"), vec![0u8; 224 * 224 * 4])?;
    std::fs::write(work.join("u8.bin"), vec![0u8; 224 * 224 * 3])?;
    std::fs::write(work.join("person_u8.bin"), vec![0u8; 96 * 96])?;
    let dirs = [images_dir(), models_dir(), (work, "/work".to_owned())];
    let quant = "/models/mobilenet_v2_1.0_224_quant.tflite";
    let photo = "/photos/grace_hopper.bmp";
    let cases: &[(&[&str], &str, &str)] = &[
        (&["--name", "resnet50", "--image", photo], "not-found", "no graph named \"resnet50\""),
        (&["--name", "imagenet/int4", "--image", photo], "not-found", "imagenet/int16"),
        (&["--model", quant, "--encoding", "onnx", "--image", photo], "invalid-encoding", "TFLite"),
        (&["--model", photo, "--encoding", "autodetect", "--image", photo], "invalid-encoding", "TFL3"),
        (&["--model", photo, "--image", photo], "runtime-error", "TFLite"),
        (&["--model", quant, "--target", "gpu", "--image", photo], "unsupported-operation", "cpu"),
        (&["--model", quant, "--options", "precision=int4", "--image", photo], "invalid-argument", "int4"),
        (&["--model", quant, "--options", "threads=2", "--image", photo], "invalid-argument", "threads"),
        (
            &["--name", "imagenet", "--dims", "1,224,224,4", "--type", "u8", "--input", "/work/rgba.bin"],
            "runtime-error",
            "[1, 224, 224, 3] (NHWC) or [1, 3, 224, 224] (NCHW)",
        ),
        (&["--name", "imagenet", "--type", "u8", "--input", "/work/short.bin"], "runtime-error", "150528 expected"),
        (&["--name", "imagenet", "--type", "fp32", "--input", "/work/u8.bin"], "runtime-error", "602112 expected"),
        (&["--name", "imagenet", "--type", "fp16", "--input", "/work/u8.bin"], "runtime-error", "takes U8 or FP32"),
        (&["--name", "imagenet", "--type", "i32", "--input", "/work/u8.bin"], "runtime-error", "takes U8 or FP32"),
        (
            &[
                "--model",
                "/models/person_detect.tflite",
                "--dims",
                "1,96,96,1",
                "--type",
                "u8",
                "--input",
                "/work/person_u8.bin",
            ],
            "runtime-error",
            "takes FP32",
        ),
    ];
    let mut failures = Vec::new();
    for (args, code, says) in cases {
        let o = run(&dirs, &strings(args))?;
        let line = o.stderr.trim_end();
        let want = format!("error: {code}: ");
        if o.exit_code != 1 || !line.starts_with(&want) || !line.contains(says) {
            failures.push(format!("{args:?}: exit {}, stderr {line:?}; want `{want}...{says}...`", o.exit_code));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

#[test]
fn a_photo_through_the_guest_gets_the_references_top1() -> Result<()> {
    let model = golden_model(EMBEDDED_MODEL_ID);
    let case = model.cases.iter().find(|c| c.image == "grace_hopper.bmp").context("no grace_hopper.bmp case")?;
    let labels = model.labels()?;
    let o = run(
        &[images_dir(), models_dir()],
        &strings(&[
            "--name",
            "imagenet",
            "--image",
            "/photos/grace_hopper.bmp",
            "--labels",
            "/models/imagenet_labels.txt",
        ]),
    )?;
    ensure!(o.exit_code == 0, "exit {}: {}", o.exit_code, o.stderr);
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "top-5 expected:\n{}", o.stdout);
    let first = lines[0].splitn(3, ' ').collect::<Vec<_>>();
    // The guest resizes with the `image` crate, not Pillow: only the clear top-1 is compared.
    let index: usize = first[0].parse()?;
    assert_eq!(first[2], labels[index], "index and label disagree: {}", lines[0]);
    check_top1_label(model, case, first[2])
}

/// The real `wasmtime` CLI (`$WASMTIME_CLI`, else `wasmtime` on PATH; `cargo xtask test` installs
/// 48.0.8 when neither is there) runs the composed guest with no `-S nn`: the provider inside
/// answers every wasi:nn call, so the host needs no ML backend.
#[test]
fn the_wasmtime_cli_prints_a_photos_top5_with_no_wasi_nn_in_the_host() -> Result<()> {
    let cli = std::env::var_os("WASMTIME_CLI").unwrap_or_else(|| "wasmtime".into());
    let version = std::process::Command::new(&cli).arg("--version").output().with_context(|| {
        format!("running {cli:?} --version: install it with `cargo install wasmtime-cli@48.0.8 --locked` (cargo xtask test does)")
    })?;
    ensure!(version.status.success(), "{cli:?} --version failed");
    let (images, photos) = images_dir();
    let (models, models_guest) = models_dir();
    let args = strings(&[
        "--name",
        "imagenet",
        "--image",
        "/photos/grace_hopper.bmp",
        "--labels",
        &format!("{models_guest}/imagenet_labels.txt"),
    ]);
    let o = std::process::Command::new(&cli)
        .arg("run")
        .arg("--dir")
        .arg(format!("{}::{photos}", images.display()))
        .arg("--dir")
        .arg(format!("{}::{models_guest}", models.display()))
        .arg(dist("wasi-nn-classify.wasm"))
        .args(&args)
        .output()
        .with_context(|| format!("running {cli:?} run"))?;
    let stdout = String::from_utf8_lossy(&o.stdout);
    ensure!(o.status.success(), "{cli:?} run: {}\n{}", o.status, String::from_utf8_lossy(&o.stderr));
    let same = run(&[images_dir(), models_dir()], &args)?;
    assert_eq!(stdout, same.stdout, "the wasmtime CLI printed other than wasmtime-wasi and jco");
    let top1 = stdout.lines().next().context("no output")?.splitn(3, ' ').nth(2).context("no label")?;
    let model = golden_model(EMBEDDED_MODEL_ID);
    let case = model.cases.iter().find(|c| c.image == "grace_hopper.bmp").context("no grace_hopper.bmp case")?;
    eprintln!("{} run dist/wasi-nn-classify.wasm:\n{stdout}", String::from_utf8_lossy(&version.stdout).trim());
    check_top1_label(model, case, top1)
}

/// `cargo xtask compose`'s check: a plug that satisfies none of the socket's imports is refused,
/// and composing the provider leaves no wasi:nn import.
#[test]
fn compose_plugs_every_wasi_nn_import_or_refuses() -> Result<()> {
    let read = |f: &str| std::fs::read(dist(f)).with_context(|| format!("reading dist/{f}"));
    let guest = dist("parts/wasi-nn-classify.wasm");
    let guest = std::fs::read(&guest).with_context(|| format!("reading {}", guest.display()))?;
    let (imports, _) = edge_classify_cli::wasm::top_level_names(&guest)?;
    assert!(imports.iter().any(|i| i.starts_with("wasi:nn/")), "the unplugged guest imports no wasi:nn: {imports:?}");
    let composed = edge_classify_cli::wasm::compose(&read("wasi-nn.wasm")?, &guest, "wasi-nn", "guest")?;
    let (imports, _) = edge_classify_cli::wasm::top_level_names(&composed)?;
    assert!(imports.iter().all(|i| i.starts_with("wasi:") && !i.starts_with("wasi:nn/")), "{imports:?}");
    let wrong = edge_classify_cli::wasm::compose(&read("classifier.wasm")?, &guest, "classifier", "guest");
    let message = format!("{:#}", wrong.err().context("the classifier plugged into a wasi-nn guest")?);
    assert!(message.contains("imports none of what classifier exports"), "{message}");
    Ok(())
}
