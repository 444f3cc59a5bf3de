//! `edge-classify inspect`: what a user needs to decide whether and how to use a model.
//!
//! What the file itself says (tensors, operators) is read straight from the flatbuffer, so a model
//! this executor cannot run is still described, with the reason it cannot; what needs the
//! validated graph (cost, precision) is shown when lowering succeeds.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use edge_classify::graph::{self, Precision};
use edge_classify::model::{LoadOptions, Model};
use edge_classify::tflite::{self, metadata, op, tensor_type};
use serde_json::{json, Value};

use crate::read;

/// TFLite's `BuiltinOperator::CUSTOM`: the operator is named by its `custom_code` instead.
const CUSTOM: i32 = 32;

#[derive(Args)]
pub struct InspectArgs {
    /// The TFLite model.
    pub model: PathBuf,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also list the kernel every step runs at each precision, named `precision/loop/arch`, as the
    /// SIMD component (`dist/classifier-simd.wasm`) binds them; the scalar component runs the
    /// `scalar` kernel of the same loop.
    #[arg(long)]
    pub kernels: bool,
}

/// A graph input or output as the file declares it (uint8 stays uint8 here).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSummary {
    pub name: String,
    pub shape: Vec<i32>,
    /// TFLite's spelling: `UINT8`, `FLOAT32`, ...
    pub element: &'static str,
    /// Per tensor: one (scale, zero point); per channel: one per channel.
    pub quantization: Vec<(f32, i64)>,
}

/// Whether `Model::load` accepts the model at one precision.
#[derive(Debug, Clone, PartialEq)]
pub struct Runs {
    pub precision: Precision,
    /// The model's own precision (nothing converted at load).
    pub native: bool,
    /// `Err`: why not, one line.
    pub result: Result<(), String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub name: String,
    pub file_bytes: u64,
    /// `None` when the graph could not be lowered (see `runs` for why).
    pub precision: Option<Precision>,
    pub inputs: Vec<TensorSummary>,
    pub outputs: Vec<TensorSummary>,
    pub subgraphs: usize,
    pub tensors: usize,
    /// (operator, count), most frequent first.
    pub operators: Vec<(String, usize)>,
    pub macs: Option<u64>,
    pub parameter_bytes: Option<u64>,
    pub runs: Vec<Runs>,
}

pub fn run(a: &InspectArgs, out: &mut impl Write) -> Result<()> {
    let bytes = read(&a.model, "model")?;
    let mut report = report(&bytes).with_context(|| a.model.display().to_string())?;
    if report.name.is_empty() {
        report.name = crate::file_stem(&a.model);
    }
    let kernels = if a.kernels { kernels(&bytes) } else { Vec::new() };
    let text = if a.json {
        let mut v = to_json(&report, &a.model);
        (v["metadata"], v["metadata_error"]) = metadata_json(&bytes);
        if a.kernels {
            v["kernels"] = kernels.iter().map(|(p, ks)| (p.name().to_owned(), json!(ks))).collect();
        }
        format!("{v}\n")
    } else {
        let mut text = human(&report, &a.model, &metadata_rows(&bytes));
        for (p, ks) in &kernels {
            text.push_str(&format!("kernels at {} (simd128 build)\n", p.name()));
            for (step, k) in ks.iter().enumerate() {
                text.push_str(&format!("  {step:>3}  {k}\n"));
            }
        }
        text
    };
    out.write_all(text.as_bytes()).context("writing to stdout")
}

/// The SIMD build's kernel per step at every precision the model loads at.
fn kernels(bytes: &[u8]) -> Vec<(Precision, Vec<String>)> {
    Precision::ALL
        .iter()
        .filter_map(|&p| {
            let m = Model::load(bytes, &LoadOptions { precision: Some(p), ..LoadOptions::default() }).ok()?;
            Some((p, m.kernels(Some(edge_classify::kernels::Arch::Simd128))))
        })
        .collect()
}

/// Fails only when the bytes are not a readable TFLite file; everything past that is reported.
pub fn report(bytes: &[u8]) -> Result<Report> {
    let model = tflite::read(bytes)?;
    let subgraphs = model.subgraphs().filter(|s| !s.is_empty()).context("the model has no subgraphs")?;
    let sg = subgraphs.get(0);
    let fb_tensors: Vec<_> = sg.tensors().map(|t| t.iter().collect()).unwrap_or_default();
    let summaries = |ids: Vec<i32>| -> Vec<TensorSummary> {
        ids.iter().filter_map(|&i| fb_tensors.get(usize::try_from(i).ok()?)).map(summary).collect()
    };
    let inputs = summaries(sg.inputs().map(|v| v.iter().collect()).unwrap_or_default());
    let outputs = summaries(sg.outputs().map(|v| v.iter().collect()).unwrap_or_default());

    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let codes = model.operator_codes();
    for o in sg.operators().map(|o| o.iter().collect::<Vec<_>>()).unwrap_or_default() {
        let k = o.opcode_index() as usize;
        let name = match codes.filter(|c| k < c.len()).map(|c| c.get(k)) {
            Some(c) if c.code() == CUSTOM => format!("CUSTOM ({})", c.custom_code().unwrap_or("unnamed")),
            Some(c) => op::name(c.code()),
            None => "(bad opcode index)".to_owned(),
        };
        *counts.entry(name).or_default() += 1;
    }
    let mut operators: Vec<(String, usize)> = counts.into_iter().collect();
    operators.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));

    let lowered = graph::lower(bytes);
    let runs = Precision::ALL
        .iter()
        .map(|&p| {
            let own = lowered.as_ref().ok().map(|g| g.precision());
            let options = LoadOptions { precision: Some(p), ..LoadOptions::default() };
            let result = match Model::load(bytes, &options) {
                Ok(_) => Ok(()),
                Err(_) if own == Some(Precision::Fp32) && p != Precision::Fp32 => Err(calibration_hint(p)),
                Err(e) => Err(e.to_string()),
            };
            Runs { precision: p, native: own == Some(p), result }
        })
        .collect();
    // As `Model::load` names a model: its metadata's name, else none here (`run` gives the file's stem);
    // never the file's description, which is the converter's text ("TOCO Converted.").
    let name = match metadata::read_lenient(bytes) {
        Ok((Some(m), _)) => m.name.filter(|n| !n.is_empty()).unwrap_or_default(),
        _ => String::new(),
    };
    Ok(Report {
        name,
        file_bytes: bytes.len() as u64,
        precision: lowered.as_ref().ok().map(|g| g.precision()),
        inputs,
        outputs,
        subgraphs: subgraphs.len(),
        tensors: fb_tensors.len(),
        operators,
        macs: lowered.as_ref().ok().map(|g| g.macs()),
        parameter_bytes: lowered.as_ref().ok().map(|g| g.parameter_bytes()),
        runs,
    })
}

/// Why a float model does not run at integer precision `p`, and the command that fixes it (the
/// executor's own message names its WIT interface, not this command).
pub fn calibration_hint(p: Precision) -> String {
    format!(
        "a float model needs calibration to run in {0}: quantize it first \
         (edge-classify quantize --target {0} --calibrate IMAGES_DIR MODEL OUT.tflite)",
        p.name()
    )
}

fn summary(t: &tflite::Tensor<'_>) -> TensorSummary {
    let scales: Vec<f32> = t.quantization().and_then(|q| q.scale()).map(|s| s.iter().collect()).unwrap_or_default();
    let zps: Vec<i64> = t.quantization().and_then(|q| q.zero_point()).map(|z| z.iter().collect()).unwrap_or_default();
    TensorSummary {
        name: t.name().unwrap_or("").to_owned(),
        shape: t.shape().map(|s| s.iter().collect()).unwrap_or_default(),
        element: tensor_type::name(t.tensor_type()),
        quantization: scales.iter().enumerate().map(|(i, &s)| (s, zps.get(i).copied().unwrap_or(0))).collect(),
    }
}

/// The model's TFLite Support metadata as `(key, value)` rows: `(none)` when the file has none,
/// the reason when it is unreadable (a broken archive must not hide the rest of the report). As
/// `Model::load` takes it: unreadable metadata is ignored (the model's `metadata_error`), only a label
/// archive over the limits refuses the model.
fn metadata_rows(bytes: &[u8]) -> Vec<(String, String)> {
    let m = match metadata::read_lenient(bytes) {
        Ok((Some(m), _)) => m,
        Ok((None, None)) => return vec![("metadata".into(), "(none)".into())],
        Ok((None, Some(e))) => {
            return vec![("metadata".into(), format!("(unreadable, the model loads without it: {e})"))]
        }
        Err(e) => return vec![("metadata".into(), format!("(refused, the model does not load: {e})"))],
    };
    let mut rows = vec![("metadata".into(), String::new())];
    let mut row = |k: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            rows.push((format!("  {k}"), v.replace(['\r', '\n'], " ")));
        }
    };
    row("name", m.name);
    row("description", m.description);
    row("version", m.version);
    row("author", m.author);
    row("license", m.license);
    row("normalization", m.normalization.map(|n| format!("mean {:?}, std {:?}", n.mean, n.std)));
    row("color space", m.input_color_space);
    row(
        "labels",
        m.labels.map(|l| {
            // Quoted: ImageNet's labels have commas of their own.
            let first: Vec<String> = l.iter().take(3).map(|l| format!("{l:?}")).collect();
            let more = if l.len() > 3 { ", ..." } else { "" };
            let file = m.label_file.as_deref().map(|f| format!(" in {f}")).unwrap_or_default();
            format!("{}{file}: {}{more}", l.len(), first.join(", "))
        }),
    );
    row("files", Some(m.associated_files.join(", ")));
    rows
}

/// `--json`'s `"metadata"` and `"metadata_error"`. `"metadata"`: the reader's fields, `null` without
/// metadata, `{"error"}` if unreadable or refused. `"metadata_error"`: the model's `metadata_error`,
/// why the load ignores its metadata (`null` when it is read, absent, or refuses the model).
fn metadata_json(bytes: &[u8]) -> (Value, Value) {
    match metadata::read_lenient(bytes) {
        Ok((Some(m), _)) => (serde_json::to_value(&m).unwrap_or(Value::Null), Value::Null),
        Ok((None, None)) => (Value::Null, Value::Null),
        Ok((None, Some(e))) => (json!({ "error": e }), json!(e)),
        Err(e) => (json!({"error": e.to_string()}), Value::Null),
    }
}

fn tensor_text(t: &TensorSummary) -> String {
    let shape = t.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ");
    let quant = match &t.quantization[..] {
        [] => String::new(),
        [(scale, zp)] => format!(", scale {scale}, zero point {zp}"),
        many => format!(", per channel ({} scales)", many.len()),
    };
    let name = if t.name.is_empty() { String::new() } else { format!("{}: ", t.name) };
    format!("{name}[{shape}] {}{quant}", t.element)
}

fn runs_text(r: &Runs) -> String {
    match &r.result {
        Ok(()) if r.native => "yes (its own precision)".to_owned(),
        Ok(()) => "yes (converted on load)".to_owned(),
        Err(e) => format!("no: {e}"),
    }
}

/// `1234567` as `1.2 M` (powers of 1000), for counts read at a glance.
fn short(n: u64, units: [&str; 4]) -> String {
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < units.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} {}", units[0]).trim_end().to_owned()
    } else {
        format!("{v:.1} {}", units[unit])
    }
}

/// Aligned `key  value` rows; operator and precision rows indented under their heading.
pub fn human(r: &Report, path: &Path, metadata: &[(String, String)]) -> String {
    let mut rows: Vec<(String, String)> = vec![
        ("name".into(), r.name.clone()),
        ("file".into(), format!("{} ({} bytes, {})", path.display(), r.file_bytes, short(r.file_bytes, BYTES))),
        ("precision".into(), r.precision.map_or("(not runnable, see below)".into(), |p| p.name().into())),
    ];
    let io = |what: &str, ts: &[TensorSummary], rows: &mut Vec<(String, String)>| {
        if ts.is_empty() {
            rows.push((what.into(), "(none)".into()));
        }
        for (i, t) in ts.iter().enumerate() {
            let key = if ts.len() == 1 { what.to_owned() } else { format!("{what} {i}") };
            rows.push((key, tensor_text(t)));
        }
    };
    io("input", &r.inputs, &mut rows);
    io("output", &r.outputs, &mut rows);
    if r.subgraphs > 1 {
        rows.push(("subgraphs".into(), format!("{} (only the first is run)", r.subgraphs)));
    }
    rows.push(("tensors".into(), r.tensors.to_string()));
    let total: usize = r.operators.iter().map(|o| o.1).sum();
    rows.push(("operators".into(), total.to_string()));
    let width = r.operators.iter().map(|o| o.0.len()).max().unwrap_or(0);
    let count_width = r.operators.iter().map(|o| o.1.to_string().len()).max().unwrap_or(0);
    for (name, n) in &r.operators {
        rows.push((String::new(), format!("{name:width$}  {n:>count_width$}")));
    }
    let na = || "(unknown: not runnable)".to_owned();
    rows.push(("MACs".into(), r.macs.map_or_else(na, |m| format!("{m} ({})", short(m, COUNT)))));
    rows.push(("parameters".into(), r.parameter_bytes.map_or_else(na, |b| format!("{b} bytes ({})", short(b, BYTES)))));
    rows.push(("runs at".into(), String::new()));
    for run in &r.runs {
        rows.push((format!("  {}", run.precision.name()), runs_text(run)));
    }
    rows.extend(metadata.iter().cloned());
    let key_width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    rows.iter().map(|(k, v)| format!("{k:key_width$}  {v}").trim_end().to_owned() + "\n").collect()
}

const BYTES: [&str; 4] = ["bytes", "kB", "MB", "GB"];
const COUNT: [&str; 4] = ["", "k", "M", "G"];

fn tensor_json(t: &TensorSummary) -> Value {
    let quantization = match &t.quantization[..] {
        [] => Value::Null,
        [(scale, zp)] => json!({"scale": scale, "zero_point": zp}),
        many => json!({
            "scales": many.iter().map(|q| q.0).collect::<Vec<_>>(),
            "zero_points": many.iter().map(|q| q.1).collect::<Vec<_>>(),
        }),
    };
    json!({"name": t.name, "shape": t.shape, "type": t.element, "quantization": quantization})
}

pub fn to_json(r: &Report, path: &Path) -> Value {
    let runs: serde_json::Map<String, Value> = r
        .runs
        .iter()
        .map(|run| {
            let v = json!({"runs": run.result.is_ok(), "native": run.native, "error": run.result.as_ref().err()});
            (run.precision.name().to_owned(), v)
        })
        .collect();
    let operators: serde_json::Map<String, Value> = r.operators.iter().map(|(n, c)| (n.clone(), json!(c))).collect();
    json!({
        "file": path.display().to_string(),
        "file_bytes": r.file_bytes,
        "name": r.name,
        "precision": r.precision.map(Precision::name),
        "inputs": r.inputs.iter().map(tensor_json).collect::<Vec<_>>(),
        "outputs": r.outputs.iter().map(tensor_json).collect::<Vec<_>>(),
        "subgraphs": r.subgraphs,
        "tensors": r.tensors,
        "operator_count": r.operators.iter().map(|o| o.1).sum::<usize>(),
        "operators": operators,
        "macs": r.macs,
        "parameter_bytes": r.parameter_bytes,
        "precisions": runs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unreadable metadata is reported as the load takes it: ignored, with the model's `metadata_error`.
    #[test]
    fn unreadable_metadata_is_ignored_and_named() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/models/mobilenet_v2_1.0_224_quant.tflite");
        let good = std::fs::read(path).unwrap();
        assert_eq!(metadata_json(&good).1, Value::Null);
        // Scrambles the metadata flatbuffer after its "M001" identifier.
        let mut bytes = good.clone();
        let at = bytes.windows(4).position(|w| w == b"M001").unwrap();
        for (i, b) in bytes[at + 4..at + 200].iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(151) ^ 0x5A;
        }
        let reason = Model::load(&bytes, &LoadOptions::default()).unwrap().info().metadata_error.clone().unwrap();
        assert!(reason.contains("TFLITE_METADATA"), "{reason}");
        assert_eq!(metadata_json(&bytes), (json!({ "error": reason }), json!(reason)));
        let rows = metadata_rows(&bytes);
        assert_eq!(rows, [("metadata".to_owned(), format!("(unreadable, the model loads without it: {reason})"))]);
        assert!(report(&bytes).unwrap().runs.iter().all(|r| r.result.is_ok()));
    }
}
