//! TFLite views → validated [`Graph`]: the subgraph walk, tensors and constants here, each operator's
//! checks in [`super::operators`]. Every check that can fail on a bad file happens in these two, so
//! planning and execution can trust shapes and types.

use super::operators::{lower_op, malformed};
use super::*;
use crate::error::{bail, Error, Result};
use crate::tflite::{self, op, tensor_type};

/// Largest single tensor we agree to hold (activation or constant): far above any MobileNet
/// (the biggest activation of MobileNetV2 224 is 1.2 MB), far below a wasm32 address space.
pub const MAX_TENSOR_BYTES: usize = 256 << 20;
/// Most tensors / operators in one graph.
const MAX_TENSORS: usize = 100_000;

pub fn lower(bytes: &[u8]) -> Result<Graph> {
    let model = tflite::read(bytes)?;
    let subgraphs = model.subgraphs().ok_or_else(|| malformed("no subgraphs"))?;
    if subgraphs.is_empty() {
        bail!(MalformedModel, "no subgraphs");
    }
    let sg = subgraphs.get(0);
    let codes = model.operator_codes().ok_or_else(|| malformed("no operator codes"))?;
    let buffers = model.buffers();
    let fb_tensors = sg.tensors().ok_or_else(|| malformed("subgraph has no tensors"))?;
    if fb_tensors.len() > MAX_TENSORS {
        bail!(TooLarge, "{} tensors", fb_tensors.len());
    }

    let mut tensors = Vec::with_capacity(fb_tensors.len());
    for (i, t) in fb_tensors.iter().enumerate() {
        tensors.push(lower_tensor(bytes, buffers, i, t)?);
    }

    let index = |v: i32, what: &str| -> Result<usize> {
        usize::try_from(v)
            .ok()
            .filter(|&i| i < tensors.len())
            .ok_or_else(|| malformed(format!("{what} refers to tensor {v}, the subgraph has {}", tensors.len())))
    };
    let ios = |v: Option<flatbuffers::Vector<'_, i32>>, what: &str| -> Result<Vec<usize>> {
        v.map(|v| v.iter().map(|i| index(i, what)).collect()).unwrap_or(Ok(Vec::new()))
    };
    let inputs = ios(sg.inputs(), "subgraph input")?;
    let outputs = ios(sg.outputs(), "subgraph output")?;
    let [input] = inputs[..] else {
        bail!(UnsupportedModel, "the graph has {} inputs; one image input is supported", inputs.len());
    };
    let [output] = outputs[..] else {
        bail!(UnsupportedModel, "the graph has {} outputs; one is supported", outputs.len());
    };
    if tensors[input].is_const() {
        bail!(MalformedModel, "the graph input is a constant");
    }

    // Tensors produced so far: each operator may only read these or constants, which also rules
    // out cycles and operators out of order.
    let mut defined = vec![false; tensors.len()];
    defined[input] = true;
    for (i, t) in tensors.iter().enumerate() {
        defined[i] |= t.is_const();
    }

    let fb_ops = sg.operators().map(|o| o.iter().collect::<Vec<_>>()).unwrap_or_default();
    if fb_ops.len() > MAX_TENSORS {
        bail!(TooLarge, "{} operators", fb_ops.len());
    }
    let mut nodes = Vec::with_capacity(fb_ops.len());
    for (k, o) in fb_ops.iter().enumerate() {
        let code_index = o.opcode_index() as usize;
        if code_index >= codes.len() {
            bail!(MalformedModel, "operator {k} uses opcode {code_index}, the model has {}", codes.len());
        }
        let code = codes.get(code_index).code();
        let ins: Vec<Option<usize>> = o
            .inputs()
            .map(|v| {
                v.iter()
                    .map(|i| if i < 0 { Ok(None) } else { index(i, "operator input").map(Some) })
                    .collect::<Result<_>>()
            })
            .unwrap_or(Ok(Vec::new()))?;
        let outs = ios(o.outputs(), "operator output")?;
        let [out] = outs[..] else {
            bail!(UnsupportedModel, "operator {k} ({}) has {} outputs", op::name(code), outs.len());
        };
        for &i in ins.iter().flatten() {
            if !defined[i] {
                bail!(MalformedModel, "operator {k} ({}) reads tensor {i} before it is computed", op::name(code));
            }
        }
        if defined[out] {
            bail!(MalformedModel, "operator {k} ({}) overwrites tensor {out}", op::name(code));
        }
        let node = lower_op(&tensors, code, *o, ins, out).map_err(|e| context(e, k, code))?;
        defined[out] = true;
        nodes.push(node);
    }
    if !defined[output] {
        bail!(MalformedModel, "the graph output is never computed");
    }

    let input_uint8 = tensors[input].from_uint8;
    let output_uint8 = tensors[output].from_uint8;
    // The subgraph's own name only: the file's description is the converter's text ("TOCO Converted."),
    // never a name. Neither is what `ModelInfo::name` reports (model.rs).
    let name = sg.name().unwrap_or("").to_string();
    Ok(Graph { name, tensors, nodes, input, output, input_uint8, output_uint8 })
}

/// Prefixes an operator's error with where it happened, keeping its kind.
fn context(e: Error, k: usize, code: i32) -> Error {
    let at = format!("operator {k} ({})", op::name(code));
    match e {
        Error::MalformedModel(m) => Error::MalformedModel(format!("{at}: {m}")),
        Error::UnsupportedModel(m) => Error::UnsupportedModel(format!("{at}: {m}")),
        Error::TooLarge(m) => Error::TooLarge(format!("{at}: {m}")),
        other => other,
    }
}

fn lower_tensor(
    bytes: &[u8],
    buffers: Option<flatbuffers::Vector<'_, flatbuffers::ForwardsUOffset<tflite::Buffer<'_>>>>,
    i: usize,
    t: tflite::Tensor<'_>,
) -> Result<Tensor> {
    let name = t.name().unwrap_or("").to_string();
    let at = |m: String| malformed(format!("tensor {i} ({name}): {m}"));
    if t.has_sparsity() {
        bail!(UnsupportedModel, "tensor {i} ({name}) is sparse");
    }
    let raw_shape: Vec<i32> = t.shape().map(|s| s.iter().collect()).unwrap_or_default();
    if raw_shape.len() > 6 {
        return Err(at(format!("rank {} is more than 6", raw_shape.len())));
    }
    let mut shape = Vec::with_capacity(raw_shape.len());
    for &d in &raw_shape {
        if d < 0 {
            bail!(UnsupportedModel, "tensor {i} ({name}) has a dynamic dimension");
        }
        shape.push(d as usize);
    }
    let tt = t.tensor_type();
    let (dtype, from_uint8) = match tt {
        tensor_type::FLOAT32 => (DType::F32, false),
        tensor_type::UINT8 => (DType::I8, true),
        tensor_type::INT8 => (DType::I8, false),
        tensor_type::INT16 => (DType::I16, false),
        tensor_type::INT32 => (DType::I32, false),
        tensor_type::INT64 => (DType::I64, false),
        other => bail!(UnsupportedModel, "tensor {i} ({name}) has element type {}", tensor_type::name(other)),
    };
    let numel = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let nbytes = numel.and_then(|n| n.checked_mul(dtype.size()));
    match nbytes {
        Some(n) if n <= MAX_TENSOR_BYTES => {}
        _ => bail!(TooLarge, "tensor {i} ({name}) of shape {shape:?} needs more than {MAX_TENSOR_BYTES} bytes"),
    }
    let numel = numel.unwrap_or(0);

    let quant = match t.quantization() {
        Some(q) if q.scale().is_some_and(|s| !s.is_empty()) => {
            if q.details_type() != 0 {
                bail!(UnsupportedModel, "tensor {i} ({name}) uses custom quantization");
            }
            let scales: Vec<f32> = q.scale().map(|s| s.iter().collect()).unwrap_or_default();
            let zps: Vec<i64> = q.zero_point().map(|z| z.iter().collect()).unwrap_or_default();
            let zps = match zps.len() {
                0 => vec![0; scales.len()],
                n if n == scales.len() => zps,
                n => return Err(at(format!("{} scales but {n} zero points", scales.len()))),
            };
            if let Some(s) = scales.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
                return Err(at(format!("quantization scale {s} is not a positive number")));
            }
            let (lo, hi) = match (dtype, from_uint8) {
                (DType::I8, true) => (0, 255),
                (DType::I8, false) => (-128, 127),
                (DType::I16, _) => (-32768, 32767),
                _ => (i32::MIN as i64, i32::MAX as i64),
            };
            if let Some(z) = zps.iter().find(|&&z| z < lo || z > hi) {
                return Err(at(format!("zero point {z} is outside the element range")));
            }
            let shift = if from_uint8 { 128 } else { 0 };
            let zero_points = zps.iter().map(|&z| (z - shift) as i32).collect();
            let axis = if scales.len() == 1 {
                0
            } else {
                let qd = q.quantized_dimension();
                match usize::try_from(qd) {
                    Ok(a) if a < shape.len() && shape[a] == scales.len() => a,
                    // TFLite Micro accepts a 1-D per-channel tensor whose quantized_dimension points past
                    // its rank (the shipped person detector's biases say 3): there is only one axis.
                    _ if shape.len() == 1 && shape[0] == scales.len() => 0,
                    _ => {
                        return Err(at(format!(
                            "{} scales do not match quantized dimension {qd} of shape {shape:?}",
                            scales.len()
                        )))
                    }
                }
            };
            Some(Quant { scales, zero_points, axis })
        }
        _ => None,
    };
    if matches!(dtype, DType::I8 | DType::I16) && quant.is_none() {
        // Quantized activations and weights without parameters cannot be interpreted.
        return Err(at("quantized element type without quantization parameters".into()));
    }

    let data = match t.buffer() {
        0 => None,
        b => {
            let buffers = buffers.ok_or_else(|| at("refers to a buffer but the model has none".into()))?;
            let b = b as usize;
            if b >= buffers.len() {
                return Err(at(format!("buffer {b} does not exist ({} buffers)", buffers.len())));
            }
            let buf = buffers.get(b);
            let raw: &[u8] = if let Some(d) = buf.data() {
                d.bytes()
            } else if buf.offset() > 1 {
                // Large models keep tensor data after the flatbuffer, addressed from the file start.
                let (o, n) = (buf.offset() as usize, buf.size() as usize);
                o.checked_add(n)
                    .and_then(|end| bytes.get(o..end))
                    .ok_or_else(|| at(format!("buffer {b} lies outside the file")))?
            } else {
                &[]
            };
            if raw.is_empty() {
                None
            } else {
                if raw.len() != numel * dtype.size() {
                    return Err(at(format!(
                        "has {} bytes of data, shape {shape:?} needs {}",
                        raw.len(),
                        numel * dtype.size()
                    )));
                }
                Some(decode_const(raw, dtype, from_uint8))
            }
        }
    };
    Ok(Tensor { name, shape, dtype, quant, data, from_uint8 })
}

fn decode_const(raw: &[u8], dtype: DType, from_uint8: bool) -> ConstData {
    fn le<const N: usize, T>(raw: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
        raw.chunks_exact(N).map(|c| f(c.try_into().expect("chunks_exact"))).collect()
    }
    match dtype {
        DType::F32 => ConstData::F32(le(raw, f32::from_le_bytes)),
        DType::I8 if from_uint8 => ConstData::I8(raw.iter().map(|&v| (v as i32 - 128) as i8).collect()),
        DType::I8 => ConstData::I8(raw.iter().map(|&v| v as i8).collect()),
        DType::I16 => ConstData::I16(le(raw, i16::from_le_bytes)),
        DType::I32 => ConstData::I32(le(raw, i32::from_le_bytes)),
        DType::I64 => ConstData::I64(le(raw, i64::from_le_bytes)),
    }
}
