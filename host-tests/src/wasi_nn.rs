//! The wasi-nn guest composed with `dist/wasi-nn.wasm` (`dist/wasi-nn-classify.wasm`) on two hosts,
//! wasmtime-wasi (as `wasmtime run`) and jco in Node (preview2-shim), and the check both the app
//! tests and the runtime matrix make with it: every golden case's output equals the native
//! executor's `infer`, bit for bit, in the form the provider is specified to return it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};

use crate::api::{LoadOptions, ModelInfo, Precision, Tensor, TensorData};
use crate::apps::{Output, WasiCommand};
use crate::golden::{Golden, GoldenModel};
use crate::native_rt::NativeRuntime;
use crate::runtime::Runtime;

/// Where a wasi:cli command runs.
pub enum GuestHost {
    Wasmtime(WasiCommand),
    /// The transpiled module, run by `host-tests/jco/run-command.mjs`.
    Jco(PathBuf),
}

impl GuestHost {
    /// `component` transpiled by the pinned jco under `host-tests/jco` (whose preview2-shim the
    /// module then imports).
    pub fn jco(component: &Path) -> Result<GuestHost> {
        let name = component.file_stem().and_then(|s| s.to_str()).context("component file name")?;
        let out = crate::jco_rt::jco_dir().join("node_modules/.cache").join(name);
        crate::jco_rt::transpile_named(component, &out, name)?;
        Ok(GuestHost::Jco(out.join(format!("{name}.js"))))
    }

    pub fn name(&self) -> &'static str {
        match self {
            GuestHost::Wasmtime(_) => "wasmtime-cranelift",
            GuestHost::Jco(_) => "jco-node",
        }
    }

    /// Runs with `dirs` preopened (host, guest) and `args`, stdout and stderr captured.
    pub fn run(&self, dirs: &[(PathBuf, String)], args: &[String]) -> Result<Output> {
        match self {
            GuestHost::Wasmtime(c) => c.run(dirs, args),
            GuestHost::Jco(module) => {
                let mut node = Command::new("node");
                node.arg(crate::jco_rt::jco_dir().join("run-command.mjs")).arg(module);
                for (host, guest) in dirs {
                    node.arg(format!("{}::{guest}", host.display()));
                }
                let o = node.arg("--").args(args).output().context("starting node")?;
                let Some(exit_code) = o.status.code() else { bail!("node was killed: {}", o.status) };
                let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                Ok(Output { exit_code, stdout: text(&o.stdout), stderr: text(&o.stderr) })
            }
        }
    }
}

/// One `output NAME TYPE DIMS` + `values ...` pair the guest printed.
#[derive(Debug, PartialEq)]
pub struct Printed {
    pub name: String,
    pub ty: String,
    pub dims: Vec<u32>,
    pub values: Vec<f32>,
}

pub fn parse(stdout: &str) -> Result<Vec<Printed>> {
    let mut lines = stdout.lines();
    let mut out = Vec::new();
    while let Some(head) = lines.next() {
        let mut words = head.splitn(4, ' ');
        ensure!(words.next() == Some("output"), "expected an `output` line, got {head:?}");
        let (Some(name), Some(ty), Some(dims)) = (words.next(), words.next(), words.next()) else {
            bail!("short output line {head:?}")
        };
        let dims = dims
            .trim_matches(['[', ']'])
            .split(", ")
            .map(|d| d.parse().with_context(|| format!("dims in {head:?}")))
            .collect::<Result<_>>()?;
        let values = lines.next().and_then(|l| l.strip_prefix("values ")).context("no `values` line")?;
        let values =
            values.split(' ').map(|v| v.parse().with_context(|| format!("value {v:?}"))).collect::<Result<_>>()?;
        out.push(Printed { name: name.into(), ty: ty.into(), dims, values });
    }
    Ok(out)
}

/// What the provider is specified to return for the executor's raw output: U8 as it is, FP32 as
/// it is, int8/int16 dequantized (`scale * (q - zero_point)`).
pub fn expected(info: &ModelInfo, name: &str, out: &Tensor) -> Result<Printed> {
    let deq = |q: i32| -> Result<f32> {
        let p = info.output.quantization.context("an integer output without quantization")?;
        Ok(p.scale * (q - p.zero_point) as f32)
    };
    let (ty, values) = match &out.data {
        TensorData::Uint8(v) => ("U8", v.iter().map(|&q| q as f32).collect()),
        TensorData::Float32(v) => ("FP32", v.clone()),
        data => ("FP32", data.to_i32().context("integer data")?.into_iter().map(deq).collect::<Result<_>>()?),
    };
    Ok(Printed { name: name.into(), ty: ty.into(), dims: out.shape.clone(), values })
}

/// The bytes of `golden` (a case's file-level input) as a wasi:nn tensor of `ty` (`u8`, `fp32`):
/// its own uint8 values, or its real values (dequantized with the file's input parameters).
pub fn tensor_bytes(model: &GoldenModel, golden: &Tensor, ty: &str) -> Result<Vec<u8>> {
    Ok(match (ty, &golden.data) {
        ("u8", TensorData::Uint8(v)) => v.clone(),
        ("fp32", TensorData::Float32(v)) => v.iter().flat_map(|f| f.to_le_bytes()).collect(),
        ("fp32", data) => {
            let scale = model.input.scale.context("quantized golden input without a scale")?;
            let zp = model.input.zero_point.unwrap_or(0);
            let q = data.to_i32().context("integer data")?;
            q.into_iter().flat_map(|q| (scale * (q - zp) as f32).to_le_bytes()).collect()
        }
        (ty, data) => bail!("no {ty} tensor for {:?} data", data.element_type()),
    })
}

/// `dir`, emptied (created if missing): a run's input files never mix with an earlier run's.
pub fn fresh_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// Every case of `model` at `precision` (none: its own) fed as `ty` through the guest on `host`,
/// input files written under `work`; fails unless every output equals native `infer`'s, bit for bit.
/// Returns the number of cases.
pub fn check_model(
    host: &GuestHost,
    golden: &Golden,
    model: &GoldenModel,
    precision: Option<Precision>,
    ty: &str,
    work: &Path,
) -> Result<usize> {
    let tflite = model.model_bytes()?;
    let mut native = NativeRuntime.load(&tflite, &LoadOptions { precision, ..Default::default() })??;
    let info = native.info()?;
    let own = edge_classify::model::Model::load(&tflite, &Default::default()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let name = own.info().output.name.clone();
    let precision_name = precision.map(Precision::name);
    let label = format!("{} {} {}/{ty}", host.name(), model.id, precision_name.unwrap_or("own"));
    fresh_dir(work)?;
    let model_path = model.model_path();
    let model_dir = model_path.parent().context("model path without a folder")?;
    let file = model_path.file_name().context("model file name")?.to_string_lossy();
    let mut args = vec!["--model".to_owned(), format!("/model/{file}")];
    if let Some(p) = &precision_name {
        args.extend(["--options".into(), format!("precision={p}")]);
    }
    let dims: Vec<String> = model.input.shape.iter().map(u32::to_string).collect();
    args.extend(["--dims".into(), dims.join(","), "--type".into(), ty.into()]);
    let mut want = Vec::new();
    for (i, case) in model.cases.iter().enumerate() {
        let input = case.input(golden)?.to_tensor()?;
        std::fs::write(work.join(format!("{i}.bin")), tensor_bytes(model, &input, ty)?)?;
        args.extend(["--input".into(), format!("/work/{i}.bin")]);
        let out = native.infer(&model.input_for(&info, input)?)??;
        want.push(expected(&info, &name, &out)?);
    }
    let dirs = [(model_dir.to_owned(), "/model".to_owned()), (work.to_owned(), "/work".to_owned())];
    let o = host.run(&dirs, &args).with_context(|| label.clone())?;
    ensure!(o.exit_code == 0, "{label}: exit {}: {}", o.exit_code, o.stderr);
    let got = parse(&o.stdout).with_context(|| label.clone())?;
    ensure!(got.len() == want.len(), "{label}: {} outputs for {} cases", got.len(), want.len());
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    for ((g, w), case) in got.iter().zip(&want).zip(&model.cases) {
        ensure!(
            (&g.name, &g.ty, &g.dims) == (&w.name, &w.ty, &w.dims),
            "{label} {}: output {} {} {:?}, expected {} {} {:?}",
            case.image,
            g.name,
            g.ty,
            g.dims,
            w.name,
            w.ty,
            w.dims
        );
        let differ = bits(&g.values).iter().zip(bits(&w.values)).filter(|(a, b)| *a != b).count();
        ensure!(differ == 0, "{label} {}: {differ} of {} elements differ from infer", case.image, w.values.len());
    }
    Ok(want.len())
}
