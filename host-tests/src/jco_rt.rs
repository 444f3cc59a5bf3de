//! The component transpiled by jco and run by V8 in Node: the JS-host column of the runtime matrix.
//!
//! `jco transpile` turns `dist/classifier.wasm` into ES modules plus the core wasm; `jco/driver.mjs`
//! imports them and answers one JSON request per line on stdin. One Node process serves a runtime
//! and all its models (each model is a handle into the driver's table), so V8 compiles the core
//! module once, as a JS host would.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::api::{self, ApiError, ErrorKind, Precision, Tensor, TensorData};
use crate::runtime::{Model, Runtime};

/// Where the committed `package.json` / `package-lock.json` and the driver live.
pub fn jco_dir() -> PathBuf {
    crate::paths::workspace_root().join("host-tests/jco")
}

/// `npm ci` (only when `node_modules` is missing or older than the lockfile), then `jco transpile`
/// `component` into `out`. Both are pinned by the lockfile, so every run transpiles with the same jco.
pub fn transpile(component: &Path, out: &Path) -> Result<()> {
    transpile_named(component, out, "classifier")
}

/// [`transpile`] to `out/NAME.js`.
pub fn transpile_named(component: &Path, out: &Path, name: &str) -> Result<()> {
    let dir = jco_dir();
    let lock = dir.join("package-lock.json");
    let installed = dir.join("node_modules/.package-lock.json");
    let fresh = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
    if fresh(&installed).is_none() || fresh(&installed) < fresh(&lock) {
        run(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir)).context("npm ci")?;
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    run(Command::new("node")
        .arg(dir.join("node_modules/@bytecodealliance/jco/dist/jco.js"))
        .args(["transpile", "--quiet", "--name", name, "-o"])
        .arg(out)
        .arg(component))
    .context("jco transpile")
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} exited with {status}");
    }
    Ok(())
}

struct Driver {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Driver {
    /// One request, one response line: `Ok(Ok(value))`, a WIT error, or an engine failure.
    fn call(&mut self, request: Value) -> api::Call<Value> {
        let mut line = serde_json::to_string(&request)?;
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).context("writing to the jco driver")?;
        self.stdin.flush()?;
        let mut response = String::new();
        if self.stdout.read_line(&mut response).context("reading from the jco driver")? == 0 {
            bail!("the jco driver exited ({:?})", self.child.try_wait());
        }
        let mut response: Value = serde_json::from_str(&response).context("jco driver response")?;
        if let Some(fatal) = response.get("fatal") {
            bail!("jco: {}", fatal.as_str().unwrap_or_default());
        }
        if let Some(err) = response.get("err") {
            return Ok(Err(ApiError {
                kind: error_kind(err["tag"].as_str().unwrap_or_default())?,
                message: err["val"].as_str().unwrap_or_default().to_string(),
            }));
        }
        Ok(Ok(response.get_mut("ok").context("response without ok/err")?.take()))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The component in V8 via jco.
pub struct JcoRuntime {
    name: String,
    driver: Arc<Mutex<Driver>>,
}

impl JcoRuntime {
    /// Start `node driver.mjs` on a directory produced by [`transpile`].
    pub fn start(name: impl Into<String>, transpiled: &Path) -> Result<Self> {
        let mut child = Command::new("node")
            .arg(jco_dir().join("driver.mjs"))
            .arg(transpiled)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting node (Node 20 or later is needed for the jco runtime)")?;
        let stdin = child.stdin.take().context("driver stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("driver stdout")?);
        Ok(Self { name: name.into(), driver: Arc::new(Mutex::new(Driver { child, stdin, stdout })) })
    }

    fn call(&self, request: Value) -> api::Call<Value> {
        self.driver.lock().map_err(|_| anyhow::anyhow!("jco driver poisoned"))?.call(request)
    }

    fn model(&self, request: Value) -> api::Call<Box<dyn Model>> {
        Ok(self.call(request)?.map(|h| {
            Box::new(JcoModel { driver: self.driver.clone(), handle: h.as_u64().unwrap_or(0) }) as Box<dyn Model>
        }))
    }
}

impl Runtime for JcoRuntime {
    fn name(&self) -> &str {
        &self.name
    }

    fn load(&self, tflite: &[u8], options: &api::LoadOptions) -> api::Call<Box<dyn Model>> {
        self.model(json!({"op": "load", "tflite": B64.encode(tflite), "options": to_options(options)}))
    }

    fn embedded(&self, options: &api::LoadOptions) -> api::Call<Box<dyn Model>> {
        self.model(json!({"op": "embedded", "options": to_options(options)}))
    }

    fn quantize(&self, tflite: &[u8], target: Precision, c: &api::Calibration) -> api::Call<Vec<u8>> {
        let calibration = json!({
            "images": c.images.iter().map(|i| B64.encode(i)).collect::<Vec<_>>(),
            "mean": c.mean,
            "std": c.std,
        });
        let request = json!({
            "op": "quantize",
            "tflite": B64.encode(tflite),
            "target": target.name(),
            "calibration": calibration,
        });
        match self.call(request)? {
            Ok(v) => Ok(Ok(B64.decode(v.as_str().context("quantize returns bytes")?)?)),
            Err(e) => Ok(Err(e)),
        }
    }
}

struct JcoModel {
    driver: Arc<Mutex<Driver>>,
    handle: u64,
}

impl JcoModel {
    fn call(&self, mut request: Value) -> api::Call<Value> {
        request["model"] = json!(self.handle);
        self.driver.lock().map_err(|_| anyhow::anyhow!("jco driver poisoned"))?.call(request)
    }
}

impl Model for JcoModel {
    fn info(&mut self) -> Result<api::ModelInfo> {
        match self.call(json!({"op": "info"}))? {
            Ok(v) => from_info(&v),
            Err(e) => bail!("info cannot fail, got {e}"),
        }
    }

    fn classify(&mut self, image: &[u8], top_k: u32) -> api::Call<Vec<api::Prediction>> {
        let preds = match self.call(json!({"op": "classify", "image": B64.encode(image), "topK": top_k}))? {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        let preds = preds.as_array().context("classify returns a list")?;
        let preds = preds
            .iter()
            .map(|p| {
                Ok(api::Prediction {
                    index: p["index"].as_u64().context("index")? as u32,
                    label: p["label"].as_str().map(str::to_string),
                    // f32 -> JS double -> shortest JSON -> f64 -> f32 round-trips exactly.
                    score: p["score"].as_f64().context("score")? as f32,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Ok(preds))
    }

    fn infer(&mut self, input: &Tensor) -> api::Call<Tensor> {
        match self.call(json!({"op": "infer", "input": to_tensor(input)}))? {
            Ok(v) => Ok(Ok(from_tensor(&v)?)),
            Err(e) => Ok(Err(e)),
        }
    }
}

impl Drop for JcoModel {
    fn drop(&mut self) {
        let _ = self.call(json!({"op": "drop"}));
    }
}

fn error_kind(tag: &str) -> Result<ErrorKind> {
    Ok(match tag {
        "malformed-model" => ErrorKind::MalformedModel,
        "unsupported-model" => ErrorKind::UnsupportedModel,
        "invalid-image" => ErrorKind::InvalidImage,
        "invalid-input" => ErrorKind::InvalidInput,
        "too-large" => ErrorKind::TooLarge,
        other => bail!("unknown error tag {other:?}"),
    })
}

fn to_options(o: &api::LoadOptions) -> Value {
    json!({
        "precision": o.precision.map(Precision::name),
        "labels": o.labels,
        "mean": o.mean,
        "std": o.std,
    })
}

fn element_type(name: &str) -> Result<api::ElementType> {
    api::ElementType::parse(name).with_context(|| format!("unknown element type {name:?}"))
}

fn to_tensor(t: &Tensor) -> Value {
    let bytes: Vec<u8> = match &t.data {
        TensorData::Float32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::Uint8(v) => v.clone(),
        TensorData::Int8(v) => v.iter().map(|&x| x as u8).collect(),
        TensorData::Int16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    };
    json!({"shape": t.shape, "tag": t.data.element_type().name(), "data": B64.encode(bytes)})
}

fn from_tensor(v: &Value) -> Result<Tensor> {
    let shape = v["shape"]
        .as_array()
        .context("tensor shape")?
        .iter()
        .map(|d| d.as_u64().map(|d| d as u32).context("shape dimension"))
        .collect::<Result<Vec<_>>>()?;
    let bytes = B64.decode(v["data"].as_str().context("tensor data")?)?;
    let data = match element_type(v["tag"].as_str().context("tensor tag")?)? {
        api::ElementType::Float32 => {
            TensorData::Float32(bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect())
        }
        api::ElementType::Uint8 => TensorData::Uint8(bytes),
        api::ElementType::Int8 => TensorData::Int8(bytes.into_iter().map(|b| b as i8).collect()),
        api::ElementType::Int16 => {
            TensorData::Int16(bytes.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect())
        }
    };
    Ok(Tensor { shape, data })
}

fn from_tensor_info(v: &Value) -> Result<api::TensorInfo> {
    let q = &v["quantization"];
    Ok(api::TensorInfo {
        shape: v["shape"].as_array().context("shape")?.iter().map(|d| d.as_u64().unwrap_or(0) as u32).collect(),
        element: element_type(v["element"].as_str().context("element")?)?,
        quantization: if q.is_null() {
            None
        } else {
            Some(api::Quantization {
                scale: q["scale"].as_f64().context("scale")? as f32,
                zero_point: q["zeroPoint"].as_i64().context("zeroPoint")? as i32,
            })
        },
    })
}

fn from_info(v: &Value) -> Result<api::ModelInfo> {
    let precision = v["precision"].as_str().context("precision")?;
    let precision = Precision::parse(precision).with_context(|| format!("unknown precision {precision:?}"))?;
    let number = |k: &str| -> Result<u64> { Ok(v[k].as_str().context("u64 as string")?.parse()?) };
    Ok(api::ModelInfo {
        name: v["name"].as_str().context("name")?.to_string(),
        // jco maps `option<string>` to a string or undefined, which JSON leaves out.
        description: v["description"].as_str().map(str::to_string),
        version: v["version"].as_str().map(str::to_string),
        precision,
        input: from_tensor_info(&v["input"])?,
        output: from_tensor_info(&v["output"])?,
        classes: v["classes"].as_u64().context("classes")? as u32,
        operators: v["operators"].as_u64().context("operators")? as u32,
        macs: number("macs")?,
        parameter_bytes: number("parameterBytes")?,
    })
}
