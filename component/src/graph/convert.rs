//! Precision conversions on the graph IR, done once at load (or by the quantizer) so that planning and
//! the kernels only ever see a graph that is homogeneous in one precision.
//!
//! * [`to_fp32`]: quantized → float. Weights `real = scale · (q − zero_point)`; biases
//!   `real = q · s_input · s_weight[c]`, the scale the integer kernels actually apply (the bias tensor's own
//!   scale is not read by TFLite, and the shipped person detector's bias parameters are known to be off);
//!   QUANTIZE/DEQUANTIZE become free aliases because every tensor is float now.
//! * [`quantize_with_ranges`]: float graph + one real range per activation tensor → int8 (asymmetric activations,
//!   per-channel symmetric int8 weights, int32 bias) or 16x8 (symmetric int16 activations, zero point 0,
//!   per-channel symmetric int8 weights, int64 bias), TFLite's two integer schemes.
//! * [`convert`]: what `load` does for `load-options.precision`: int8 ↔ int16 goes through float with the
//!   ranges the source quantization can represent ([`source_ranges`]), int8 → int16 with headroom
//!   ([`int16_ranges`]). A float model has no ranges: that needs the quantizer's calibration.
//! * [`float_softmax_tail`]: a 16x8 graph we write ends in DEQUANTIZE → float SOFTMAX where its source
//!   ends in SOFTMAX ([`Int16Tail`]; issue 31): TFLite's 16-bit SOFTMAX saturates its exp table below −10,
//!   most of the int16 error on 1001 classes, while the int16 body itself is near-lossless.

use super::{ConstData, DType, Graph, Op, Precision, Quant, Tensor};
use crate::error::{bail, Result};

/// The real interval `[lo, hi]` an activation tensor is quantized to cover.
pub type Range = (f32, f32);

/// How a 16x8 graph that we write ends, where its source ends in SOFTMAX. A file already at 16x8
/// keeps its own tail (its semantics are its author's): only graphs we convert or quantize get one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Int16Tail {
    /// DEQUANTIZE, then a float SOFTMAX with a float32 output: a valid TFLite graph whose reference
    /// kernels we equal, without the 16-bit SOFTMAX's saturating exp table.
    #[default]
    FloatSoftmax,
    /// TFLite's 16-bit SOFTMAX, int16 output: a pure 16x8 graph for integer-only targets.
    Int16Softmax,
}

/// The graph at `target` precision (a no-op when it already is), a 16x8 one with the default tail.
pub fn convert(g: &Graph, target: Precision) -> Result<Graph> {
    convert_with(g, target, Int16Tail::default())
}

/// [`convert`] with the tail a 16x8 result gets.
pub fn convert_with(g: &Graph, target: Precision, tail: Int16Tail) -> Result<Graph> {
    let mut out = convert_body(g, target)?;
    if g.precision() != target && target == Precision::Int16 && tail == Int16Tail::FloatSoftmax {
        float_softmax_tail(&mut out);
    }
    Ok(out)
}

/// Ends `g`'s final SOFTMAX in float: its int16 input goes through a new DEQUANTIZE, and the SOFTMAX
/// output (and any RESHAPE after it, up to the graph's output) becomes float32 without quantization.
/// A graph that does not end in an int16 SOFTMAX is left as it is.
pub fn float_softmax_tail(g: &mut Graph) {
    if !g.ends_in_softmax() {
        return;
    }
    let Some(k) = g.nodes.iter().rposition(|n| matches!(n.op, Op::Softmax { .. })) else { return };
    let x = g.nodes[k].input(0);
    if g.tensors[x].dtype != DType::I16 || g.tensors[g.nodes[k].output].dtype != DType::I16 {
        return;
    }
    let mut logits = g.tensors[x].clone();
    logits.name = format!("{}_dequantized", logits.name);
    (logits.dtype, logits.quant, logits.from_uint8) = (DType::F32, None, false);
    g.tensors.push(logits);
    let dequantized = g.tensors.len() - 1;
    g.nodes.insert(k, super::Node { op: Op::Dequantize, inputs: vec![Some(x)], output: dequantized });
    g.nodes[k + 1].inputs[0] = Some(dequantized);
    // What follows the SOFTMAX only moves its values (ends_in_softmax): all of it is float now.
    for n in &mut g.nodes[k + 1..] {
        if matches!(n.op, Op::Quantize | Op::Dequantize) {
            n.op = Op::Reshape;
        }
        let t = &mut g.tensors[n.output];
        (t.dtype, t.quant, t.from_uint8) = (DType::F32, None, false);
    }
    g.output_uint8 = false;
}

fn convert_body(g: &Graph, target: Precision) -> Result<Graph> {
    let own = g.precision();
    if own == target {
        return Ok(g.clone());
    }
    match (own, target) {
        (_, Precision::Fp32) => to_fp32(g),
        (Precision::Fp32, t) => bail!(
            InvalidInput,
            "the model is float32; running it in {t:?} needs activation ranges, which a float model does not \
             carry: quantize it first with calibration images (the `quantizer` interface or `cargo xtask quantize`)"
        ),
        (_, t) => {
            let float = to_fp32(g)?;
            let ranges =
                if (own, t) == (Precision::Int8, Precision::Int16) { int16_ranges(g) } else { source_ranges(g) };
            let mut out = quantize_with_ranges(&float, &ranges, t)?;
            keep_exact_weights(g, &float, &mut out)?;
            Ok(out)
        }
    }
}

/// Re-deriving per-channel scales from dequantized weights (`max|w| / 127`) re-rounds every weight of a
/// channel whose largest `|q − zero_point|` is not exactly 127. Where the source integers fit the
/// symmetric int8 range, keep them and their scale instead: the converted weights are then the source
/// weights exactly, and only the activation arithmetic changes. (uint8 weights with a zero point far
/// from 128 can exceed 127 and keep the re-derived scale.)
fn keep_exact_weights(src: &Graph, float: &Graph, out: &mut Graph) -> Result<()> {
    let wide = out.tensors.iter().any(|t| t.dtype == DType::I16 && !t.is_const());
    for (x, f, b, axis) in weighted(src) {
        let st = &src.tensors[f];
        let (Some(sq), Some(ConstData::I8(sv))) = (&st.quant, &st.data) else { continue };
        if !sq.per_tensor() && sq.axis != axis {
            continue;
        }
        let shape = st.shape.clone();
        let channels = shape[axis];
        let per = |c: usize| if sq.per_tensor() { 0 } else { c };
        let mut max = vec![0i32; channels];
        let ch = channel_index(&shape, axis);
        for (i, &v) in sv.iter().enumerate() {
            let c = ch(i);
            max[c] = max[c].max((v as i32 - sq.zero_points[per(c)]).abs());
        }
        let s_in = out.tensors[x].quant.as_ref().map(|q| q.scale()).unwrap_or(1.0) as f64;
        let bias_real = match b.map(|b| &float.tensors[b].data) {
            Some(Some(ConstData::F32(v))) => Some(v.clone()),
            _ => None,
        };
        // Channels that can keep their source integers (and whose bias still fits at that scale).
        let keep: Vec<bool> = (0..channels)
            .map(|c| {
                let s = sq.scales[per(c)] as f64;
                let fits = |v: f32| {
                    let q = (v as f64 / (s_in * s)).round();
                    if wide {
                        q.abs() < (1u64 << 62) as f64
                    } else {
                        q.abs() < (1u64 << 30) as f64
                    }
                };
                max[c] <= 127 && bias_real.as_ref().is_none_or(|bv| fits(bv[c]))
            })
            .collect();
        let ot = &mut out.tensors[f];
        let (Some(oq), Some(ConstData::I8(ov))) = (&mut ot.quant, &mut ot.data) else { continue };
        for (i, (o, &v)) in ov.iter_mut().zip(sv).enumerate() {
            let c = ch(i);
            if keep[c] {
                *o = (v as i32 - sq.zero_points[per(c)]) as i8;
            }
        }
        for (c, scale) in oq.scales.iter_mut().enumerate().filter(|&(c, _)| keep[c]) {
            *scale = sq.scales[per(c)];
        }
        let scales = oq.scales.clone();
        if let (Some(b), Some(bv)) = (b, bias_real) {
            let bt = &mut out.tensors[b];
            let bias_scales: Vec<f32> = scales.iter().map(|&s| (s_in * s as f64) as f32).collect();
            let ints = bv.iter().zip(&bias_scales).map(|(&v, &s)| (v as f64 / s as f64).round() as i64);
            match &mut bt.data {
                Some(ConstData::I32(d)) => {
                    for (d, v) in d.iter_mut().zip(ints) {
                        *d = i32::try_from(v).map_err(|_| crate::Error::InvalidInput(format!("bias {v} overflows")))?;
                    }
                }
                Some(ConstData::I64(d)) => d.iter_mut().zip(ints).for_each(|(d, v)| *d = v),
                _ => continue,
            }
            if let Some(bq) = &mut bt.quant {
                bq.scales = bias_scales;
            }
        }
    }
    Ok(())
}

/// Index of `i` along `axis` of a row-major `shape`.
#[cfg(test)]
fn channel_of(i: usize, shape: &[usize], axis: usize) -> usize {
    channel_index(shape, axis)(i)
}

/// [`channel_of`] for one `shape` and `axis`, its stride computed once: conversions call it for every
/// weight, millions of times.
fn channel_index(shape: &[usize], axis: usize) -> impl Fn(usize) -> usize {
    let inner: usize = shape[axis + 1..].iter().product::<usize>().max(1);
    let dim = shape[axis].max(1);
    move |i| (i / inner) % dim
}

/// Real values of a quantized constant (per tensor or per channel).
pub fn dequantize_const(t: &Tensor) -> Result<Vec<f32>> {
    let Some(q) = &t.quant else { bail!(UnsupportedModel, "constant {} has no quantization", t.name) };
    let ch = channel_index(&t.shape, q.axis);
    let per_tensor = q.per_tensor();
    // f32 product of f32 operands: what TFLite's DEQUANTIZE computes, so the float file we write and this
    // in-memory conversion agree bit for bit.
    let real = |(i, v): (usize, i64)| {
        let c = if per_tensor { 0 } else { ch(i) };
        q.scales[c] * (v - q.zero_points[c] as i64) as f32
    };
    Ok(match &t.data {
        Some(ConstData::I8(v)) => v.iter().map(|&x| x as i64).enumerate().map(real).collect(),
        Some(ConstData::I16(v)) => v.iter().map(|&x| x as i64).enumerate().map(real).collect(),
        Some(ConstData::I32(v)) => v.iter().map(|&x| x as i64).enumerate().map(real).collect(),
        Some(ConstData::I64(v)) => v.iter().copied().enumerate().map(real).collect(),
        _ => bail!(UnsupportedModel, "constant {} of type {:?} cannot be dequantized", t.name, t.dtype),
    })
}

/// Float inputs of weighted operators: (filter tensor, bias tensor, per-output-channel axis of the filter).
fn weighted(g: &Graph) -> Vec<(usize, usize, Option<usize>, usize)> {
    g.nodes
        .iter()
        .filter_map(|n| match n.op {
            Op::Conv2d { .. } | Op::FullyConnected { .. } => Some((n.input(0), n.input(1), n.optional_input(2), 0)),
            Op::DepthwiseConv2d { .. } => Some((n.input(0), n.input(1), n.optional_input(2), 3)),
            _ => None,
        })
        .collect()
}

/// Quantized → float: same tensors (same indices), float data, no quantization.
pub fn to_fp32(g: &Graph) -> Result<Graph> {
    let mut out = g.clone();
    // Biases first, while the input and filter scales are still at hand.
    for (x, f, b, _) in weighted(g) {
        let Some(b) = b else { continue };
        let (xt, ft, bt) = (&g.tensors[x], &g.tensors[f], &g.tensors[b]);
        if xt.dtype == DType::F32 {
            continue;
        }
        let (Some(xq), Some(fq)) = (&xt.quant, &ft.quant) else {
            bail!(UnsupportedModel, "quantized operator without input or filter quantization");
        };
        let ints: Vec<i64> = match &bt.data {
            Some(ConstData::I32(v)) => v.iter().map(|&x| x as i64).collect(),
            Some(ConstData::I64(v)) => v.clone(),
            _ => bail!(UnsupportedModel, "bias {} of type {:?}", bt.name, bt.dtype),
        };
        let real = ints
            .iter()
            .enumerate()
            .map(|(c, &v)| {
                let sw = if fq.per_tensor() { fq.scale() } else { fq.scales[c] };
                // The kernels accumulate in integers scaled by s_in · s_w[c]: that is the bias's true scale.
                (v as f64 * xq.scale() as f64 * sw as f64) as f32
            })
            .collect();
        let t = &mut out.tensors[b];
        t.data = Some(ConstData::F32(real));
        t.dtype = DType::F32;
        t.quant = None;
        t.from_uint8 = false;
    }
    for (i, t) in g.tensors.iter().enumerate() {
        let o = &mut out.tensors[i];
        match (t.dtype, t.is_const()) {
            (DType::I8 | DType::I16, true) => {
                o.data = Some(ConstData::F32(dequantize_const(t)?));
            }
            (DType::I8 | DType::I16, false) => {}
            _ => continue,
        }
        o.dtype = DType::F32;
        o.quant = None;
        o.from_uint8 = false;
    }
    for n in &mut out.nodes {
        match n.op {
            // Float to float: the same elements under a new name, which is what RESHAPE is to the plan.
            Op::Quantize | Op::Dequantize => n.op = Op::Reshape,
            Op::Add { activation, .. } => n.op = Op::Add { activation, pot_scale_int16: false },
            _ => {}
        }
    }
    out.input_uint8 = false;
    out.output_uint8 = false;
    Ok(out)
}

/// The real range each quantized activation tensor can represent (None for constants and floats).
pub fn source_ranges(g: &Graph) -> Vec<Option<Range>> {
    g.tensors
        .iter()
        .map(|t| {
            let q = t.quant.as_ref().filter(|q| q.per_tensor() && !t.is_const())?;
            // uint8 is already re-centred to −128..127 (zero point shifted alike).
            let (lo, hi) = match t.dtype {
                DType::I8 => (-128i32, 127i32),
                DType::I16 => (-32768, 32767),
                _ => return None,
            };
            Some((q.scale() * (lo - q.zero_point()) as f32, q.scale() * (hi - q.zero_point()) as f32))
        })
        .collect()
}

/// How much wider than the 8-bit source's range an activation becomes at int8 → int16. Those ranges are
/// where the source's training or calibration chose to clip; the real values they stand for exceed them,
/// and an int16 graph keeping the same clips keeps int8's largest errors for nothing. Twice the range
/// costs one of int16's eight extra bits. Measured (`cargo test --release -p host-tests --test
/// conformance fidelity -- --nocapture`, 2026-12-03) with 1, 2, 4, 8 and 16: 2 gave the best logit
/// cosine on every 8-bit shared model (the ptq ImageNet model: 1 − cos 2.1e-4 → 5e-7, max |dp| 0.133
/// → 0.032; the dog int8 model 1.8e-3 → 8.1e-4; the person detector unchanged within 1e-4).
pub const INT16_HEADROOM: f32 = 2.0;

/// [`source_ranges`] widened by [`INT16_HEADROOM`] for int8 → int16, except the graph input (its
/// values are the caller's, all representable) and ReLU6 outputs, which the operator bounds to [0, 6]
/// (widened up to 6 at most).
pub fn int16_ranges(g: &Graph) -> Vec<Option<Range>> {
    let mut relu6 = vec![false; g.tensors.len()];
    for n in &g.nodes {
        let activation = match n.op {
            Op::Conv2d { activation, .. }
            | Op::DepthwiseConv2d { activation, .. }
            | Op::FullyConnected { activation }
            | Op::AveragePool2d { activation, .. }
            | Op::Add { activation, .. } => activation,
            _ => continue,
        };
        relu6[n.output] = activation == crate::kernels::Activation::Relu6;
    }
    let mut ranges = source_ranges(g);
    for (i, r) in ranges.iter_mut().enumerate() {
        let Some((lo, hi)) = *r else { continue };
        if i == g.input {
            continue;
        }
        *r = Some(if relu6[i] {
            (lo, (hi * INT16_HEADROOM).min(6.0).max(hi))
        } else {
            (lo * INT16_HEADROOM, hi * INT16_HEADROOM)
        });
    }
    ranges
}

/// TFLite's activation quantization for a real range: int8 asymmetric over 256 steps with zero
/// exactly representable; int16 symmetric, zero point 0.
pub fn activation_quant(range: Range, target: Precision) -> Result<Quant> {
    let (lo, hi) = range;
    if !(lo.is_finite() && hi.is_finite()) || lo > hi {
        bail!(InvalidInput, "activation range [{lo}, {hi}] is not a finite interval");
    }
    // Zero must be representable (padding, ReLU); a degenerate range still needs a positive scale.
    let (lo, hi) = (lo.min(0.0) as f64, hi.max(0.0) as f64);
    let tiny = 1e-8;
    Ok(match target {
        Precision::Int8 => {
            let scale = ((hi - lo) / 255.0).max(tiny);
            let zp = (-128.0 - lo / scale).round().clamp(-128.0, 127.0) as i32;
            Quant { scales: vec![scale as f32], zero_points: vec![zp], axis: 0 }
        }
        Precision::Int16 => {
            let scale = (lo.abs().max(hi) / 32767.0).max(tiny);
            Quant { scales: vec![scale as f32], zero_points: vec![0], axis: 0 }
        }
        Precision::Fp32 => bail!(InvalidInput, "fp32 has no activation quantization"),
    })
}

/// Per-channel symmetric int8 weights along `axis`: `scale[c] = max|w_c| / 127`.
pub fn quantize_weights(w: &[f32], shape: &[usize], axis: usize) -> (Vec<i8>, Vec<f32>) {
    quantize_weights_min(w, shape, axis, &[])
}

/// [`quantize_weights`] with a floor per channel on the scale (see [`quantize_with_ranges`]'s bias handling).
pub fn quantize_weights_min(w: &[f32], shape: &[usize], axis: usize, min_scale: &[f32]) -> (Vec<i8>, Vec<f32>) {
    let channels = shape[axis];
    let mut max = vec![0f32; channels];
    let ch = channel_index(shape, axis);
    for (i, &v) in w.iter().enumerate() {
        let c = ch(i);
        max[c] = max[c].max(v.abs());
    }
    // An all-zero channel quantizes to zeros under any scale; 1 keeps the bias scale s_in · s_w usable.
    let scales: Vec<f32> = max
        .iter()
        .enumerate()
        .map(|(c, &m)| {
            let s = if m > 0.0 { m / 127.0 } else { 1.0 };
            s.max(min_scale.get(c).copied().unwrap_or(0.0))
        })
        .collect();
    let q = w.iter().enumerate().map(|(i, &v)| (v / scales[ch(i)]).round().clamp(-127.0, 127.0) as i8).collect();
    (q, scales)
}

/// Float graph → int8 or 16x8, given a range for every activation tensor.
pub fn quantize_with_ranges(g: &Graph, ranges: &[Option<Range>], target: Precision) -> Result<Graph> {
    let act = match target {
        Precision::Int8 => DType::I8,
        Precision::Int16 => DType::I16,
        Precision::Fp32 => return Ok(g.clone()),
    };
    if g.tensors.iter().any(|t| t.dtype != DType::F32 && t.quant.is_some()) {
        bail!(UnsupportedModel, "quantize expects a float graph (convert the quantized one to fp32 first)");
    }
    let mut out = g.clone();
    let is_activation = |i: usize| !g.tensors[i].is_const() && g.tensors[i].dtype == DType::F32;
    for i in 0..g.tensors.len() {
        if !is_activation(i) {
            continue;
        }
        let Some(range) = ranges.get(i).copied().flatten() else {
            bail!(InvalidInput, "no activation range for tensor {} ({})", i, g.tensors[i].name);
        };
        let t = &mut out.tensors[i];
        t.quant = Some(activation_quant(range, target)?);
        t.dtype = act;
        t.from_uint8 = false;
    }
    // Operators whose integer kernels fix or share their output quantization, in execution order so
    // a chain of aliases propagates.
    for n in &mut out.nodes {
        let input_quant = out.tensors[n.input(0)].quant.clone();
        match n.op {
            Op::Softmax { .. } => {
                let (scale, zp) = if act == DType::I8 { (1.0 / 256.0, -128) } else { (1.0 / 32768.0, 0) };
                out.tensors[n.output].quant = Some(Quant { scales: vec![scale], zero_points: vec![zp], axis: 0 });
            }
            Op::AveragePool2d { .. } | Op::Pad { .. } | Op::Reshape | Op::Quantize | Op::Dequantize => {
                out.tensors[n.output].quant = input_quant;
                if matches!(n.op, Op::Quantize | Op::Dequantize) {
                    n.op = Op::Reshape;
                }
            }
            // Scales here are not powers of two: the general int16 ADD.
            Op::Add { activation, .. } => n.op = Op::Add { activation, pot_scale_int16: false },
            _ => {}
        }
    }
    for (x, f, b, axis) in weighted(g) {
        let ft = &g.tensors[f];
        let Some(ConstData::F32(w)) = &ft.data else { bail!(UnsupportedModel, "filter {} is not float", ft.name) };
        let s_in = out.tensors[x].quant.as_ref().expect("activations were just quantized").scale();
        let bias = match b.map(|b| &g.tensors[b]) {
            Some(bt) => match &bt.data {
                Some(ConstData::F32(v)) => Some(v),
                _ => bail!(UnsupportedModel, "bias {} is not float", bt.name),
            },
            None => None,
        };
        // Channels whose weights are (nearly) dead get a scale so small that s_in · s_w underflows or the
        // bias overflows its integer type; raise such a channel's scale until the bias fits in 2^30
        // (2^62 for int64) with a normal bias scale. Its few non-zero weights then round to 0, as TFLite's
        // converter does in the same case.
        let limit = if act == DType::I8 { (1u64 << 30) as f64 } else { (1u64 << 62) as f64 };
        let min_scale: Vec<f32> = match bias {
            Some(v) => v
                .iter()
                .map(|&b| ((b.abs() as f64 / limit / s_in as f64) as f32).max(f32::MIN_POSITIVE / s_in.min(1.0)))
                .collect(),
            None => Vec::new(),
        };
        let (qw, scales) = quantize_weights_min(w, &ft.shape, axis, &min_scale);
        // Found by fuzzing: an infinite weight gives an infinite scale, which the file
        // would carry and every reader refuses.
        let bad = |s: &f32| !(s.is_finite() && *s > 0.0);
        if let Some(s) = scales.iter().find(|s| bad(s)) {
            bail!(UnsupportedModel, "filter {} cannot be quantized: its weights give the scale {s}", ft.name);
        }
        if let (Some(b), Some(bias)) = (b, bias) {
            let bt = &g.tensors[b];
            let bias_scales: Vec<f32> = scales.iter().map(|&s| (s_in as f64 * s as f64) as f32).collect();
            if let Some(s) = bias_scales.iter().find(|s| bad(s)) {
                bail!(UnsupportedModel, "bias of {} cannot be quantized: its scale would be {s}", ft.name);
            }
            let ints: Vec<i64> =
                bias.iter().zip(&bias_scales).map(|(&v, &s)| (v as f64 / s as f64).round() as i64).collect();
            let o = &mut out.tensors[b];
            if act == DType::I8 {
                if let Some(v) = ints.iter().find(|v| i32::try_from(**v).is_err()) {
                    bail!(InvalidInput, "bias {} quantizes to {v}, outside int32", bt.name);
                }
                o.data = Some(ConstData::I32(ints.iter().map(|&v| v as i32).collect()));
                o.dtype = DType::I32;
            } else {
                o.data = Some(ConstData::I64(ints));
                o.dtype = DType::I64;
            }
            let n = bias_scales.len();
            o.quant = Some(Quant { scales: bias_scales, zero_points: vec![0; n], axis: 0 });
        }
        let o = &mut out.tensors[f];
        o.data = Some(ConstData::I8(qw));
        o.dtype = DType::I8;
        let n = scales.len();
        o.quant = Some(Quant { scales, zero_points: vec![0; n], axis });
        o.from_uint8 = false;
    }
    out.input_uint8 = false;
    out.output_uint8 = false;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Node, Padding};
    use crate::kernels::Activation;
    use crate::model::{ElementType, LoadOptions, Model};
    use crate::plan::Plan;
    use proptest::prelude::*;

    fn shared_model(name: &str) -> Vec<u8> {
        let path = format!("{}/../../shared/models/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    const QUANTIZED: [&str; 5] = [
        "mobilenet_v2_1.0_224_quant.tflite",
        "mobilenet_v2_1.0_224_ptq_int8.tflite",
        "person_detect.tflite",
        "dog_breeds_mobilenet_v2_160_int8.tflite",
        "dog_breeds_mobilenet_v2_160_int16x8.tflite",
    ];

    #[test]
    fn every_quantized_model_loads_at_every_precision_and_says_so() {
        for name in QUANTIZED {
            let bytes = shared_model(name);
            for p in [Precision::Fp32, Precision::Int16, Precision::Int8] {
                let m = Model::load(&bytes, &LoadOptions { precision: Some(p), ..Default::default() })
                    .unwrap_or_else(|e| panic!("{name} at {p:?}: {e}"));
                let i = m.info();
                assert_eq!(i.precision, p, "{name}");
                match p {
                    Precision::Fp32 => {
                        assert_eq!(i.input.element, ElementType::Float32, "{name}");
                        assert_eq!(i.input.quantization, None, "{name}");
                    }
                    Precision::Int16 => {
                        assert_eq!(i.input.element, ElementType::Int16, "{name}");
                        assert_eq!(i.input.quantization.unwrap().zero_point, 0, "{name}: 16x8 is symmetric");
                    }
                    // uint8 files keep their uint8 interface at their own precision (re-centred inside).
                    Precision::Int8 => assert!(matches!(i.input.element, ElementType::Int8 | ElementType::Uint8)),
                }
            }
        }
    }

    #[test]
    fn a_float_model_at_int8_or_int16_asks_for_activation_ranges() {
        let bytes = shared_model("dog_breeds_mobilenet_v2_160_float.tflite");
        for p in [Precision::Int16, Precision::Int8] {
            let e = Model::load(&bytes, &LoadOptions { precision: Some(p), ..Default::default() }).unwrap_err();
            match e {
                crate::Error::InvalidInput(m) => assert!(m.contains("activation ranges"), "{m}"),
                other => panic!("{other:?}"),
            }
        }
    }

    /// 16x8 from a quantized model: every activation's int16 range covers what the source could
    /// represent, weights stay int8 per channel with zero point 0, biases are int64.
    #[test]
    fn int16_conversion_follows_tflite_16x8() {
        for name in QUANTIZED {
            let g = crate::graph::lower(&shared_model(name)).unwrap();
            if g.precision() == Precision::Int16 {
                continue; // already 16x8: nothing is converted
            }
            let src = source_ranges(&g);
            let h = convert_with(&g, Precision::Int16, Int16Tail::Int16Softmax).unwrap();
            for (i, t) in h.tensors.iter().enumerate() {
                match (&t.data, t.dtype) {
                    (None, DType::I16) => {
                        let q = t.quant.as_ref().unwrap();
                        assert_eq!(q.zero_points, [0]);
                        let softmax_out = h.nodes.iter().any(|n| n.output == i && matches!(n.op, Op::Softmax { .. }));
                        let aliased = h.nodes.iter().any(|n| {
                            n.output == i && matches!(n.op, Op::Reshape | Op::AveragePool2d { .. } | Op::Pad { .. })
                        });
                        if let (Some((lo, hi)), false, false) = (src[i], softmax_out, aliased) {
                            let top = q.scale() as f64 * 32767.0;
                            assert!(
                                top >= lo.abs().max(hi) as f64 * (1.0 - 1e-6),
                                "{name} {}: {top} < [{lo}, {hi}]",
                                t.name
                            );
                        }
                    }
                    (None, dt) => panic!("{name} {}: activation {dt:?}", t.name),
                    (Some(ConstData::I8(_)), _) => {
                        assert!(t.quant.as_ref().unwrap().zero_points.iter().all(|&z| z == 0))
                    }
                    (Some(ConstData::I64(_) | ConstData::I32(_)), _) => {}
                    (Some(d), _) => panic!("{name} {}: constant {d:?}", t.name),
                }
            }
            let biases = h.nodes.iter().filter_map(|n| match n.op {
                Op::Conv2d { .. } | Op::DepthwiseConv2d { .. } | Op::FullyConnected { .. } => n.optional_input(2),
                _ => None,
            });
            for b in biases {
                assert_eq!(h.tensors[b].dtype, DType::I64, "{name}");
            }
        }
    }

    /// The default 16x8 conversion is the pure one up to the final SOFTMAX's input, then DEQUANTIZE →
    /// float SOFTMAX (issue 31); a file that is 16x8 already keeps its own 16-bit SOFTMAX.
    #[test]
    fn int16_conversion_ends_in_a_float_softmax() {
        for name in QUANTIZED {
            let g = crate::graph::lower(&shared_model(name)).unwrap();
            let (pure, ours) = (
                convert_with(&g, Precision::Int16, Int16Tail::Int16Softmax).unwrap(),
                convert(&g, Precision::Int16).unwrap(),
            );
            if g.precision() == Precision::Int16 {
                assert_eq!(ours, g, "{name}: its own graph");
                continue;
            }
            let k = pure.nodes.iter().rposition(|n| matches!(n.op, Op::Softmax { .. })).unwrap();
            assert_eq!(ours.nodes[..k], pure.nodes[..k], "{name}");
            assert_eq!(ours.tensors[..pure.tensors.len()].len(), pure.tensors.len());
            let (deq, soft) = (&ours.nodes[k], &ours.nodes[k + 1]);
            assert_eq!((&deq.op, deq.inputs[0]), (&Op::Dequantize, pure.nodes[k].inputs[0]), "{name}");
            assert_eq!(soft.inputs[0], Some(deq.output), "{name}");
            assert_eq!(ours.tensors[pure.nodes[k].input(0)].dtype, DType::I16, "{name}: int16 logits");
            for t in [deq.output, soft.output, ours.output] {
                assert_eq!((ours.tensors[t].dtype, &ours.tensors[t].quant), (DType::F32, &None), "{name}");
            }
            assert_eq!(ours.precision(), Precision::Int16);
            crate::plan::Plan::new(&ours).unwrap();
        }
    }

    /// int8 → int16 widens each activation's range by [`INT16_HEADROOM`] (ReLU6 outputs up to 6, the
    /// input not at all): the int16 scale is the widened range over 32767.
    #[test]
    fn int16_conversion_gives_activations_headroom_past_the_8_bit_clips() {
        for name in ["mobilenet_v2_1.0_224_ptq_int8.tflite", "dog_breeds_mobilenet_v2_160_int8.tflite"] {
            let g = crate::graph::lower(&shared_model(name)).unwrap();
            let (src, wide) = (source_ranges(&g), int16_ranges(&g));
            let (mut widened, mut capped) = (0, 0);
            for (i, (s, w)) in src.iter().zip(&wide).enumerate() {
                let (Some((slo, shi)), Some((wlo, whi))) = (*s, *w) else { continue };
                if i == g.input {
                    assert_eq!((slo, shi), (wlo, whi), "{name}: the input keeps its range");
                } else if whi == shi * INT16_HEADROOM && wlo == slo * INT16_HEADROOM {
                    widened += 1;
                } else {
                    assert!(whi <= 6.0 && whi >= shi && wlo == slo, "{name} {}: [{wlo}, {whi}]", g.tensors[i].name);
                    capped += 1;
                }
            }
            assert!(widened > 20 && capped > 20, "{name}: {widened} widened, {capped} capped at ReLU6");
            let h = convert(&g, Precision::Int16).unwrap();
            let conv = g
                .nodes
                .iter()
                .find(
                    |n| matches!(n.op, Op::Conv2d { activation, .. } if activation == crate::kernels::Activation::None),
                )
                .unwrap();
            let (lo, hi) = wide[conv.output].unwrap();
            let scale = h.tensors[conv.output].quant.as_ref().unwrap().scale() as f64;
            assert!((scale * 32767.0 - lo.abs().max(hi) as f64).abs() < 1e-6 * scale * 32767.0, "{name}");
        }
    }

    /// Symmetric int8 per-channel weights survive the 16x8 conversion bit for bit, scales included.
    #[test]
    fn int16_conversion_keeps_symmetric_int8_weights_exactly() {
        for name in ["mobilenet_v2_1.0_224_ptq_int8.tflite", "dog_breeds_mobilenet_v2_160_int8.tflite"] {
            let g = crate::graph::lower(&shared_model(name)).unwrap();
            let h = convert(&g, Precision::Int16).unwrap();
            let mut filters = 0;
            for (_, f, _, _) in weighted(&g) {
                assert_eq!(h.tensors[f].data, g.tensors[f].data, "{name} {}", g.tensors[f].name);
                assert_eq!(h.tensors[f].quant, g.tensors[f].quant, "{name} {}", g.tensors[f].name);
                filters += 1;
            }
            assert!(filters > 50, "{name}: {filters}");
        }
    }

    /// Dequantizing is exact where it can be: the int8 weight `q` becomes `scale · (q − zp)`, which
    /// re-quantizes to `q`.
    #[test]
    fn fp32_conversion_dequantizes_weights_exactly() {
        for name in QUANTIZED {
            let g = crate::graph::lower(&shared_model(name)).unwrap();
            let f = to_fp32(&g).unwrap();
            for (t, u) in g.tensors.iter().zip(&f.tensors) {
                if let (Some(ConstData::I8(q)), Some(ConstData::F32(r))) = (&t.data, &u.data) {
                    let qp = t.quant.as_ref().unwrap();
                    for (i, (&q, &r)) in q.iter().zip(r).enumerate() {
                        let c = if qp.per_tensor() { 0 } else { channel_of(i, &t.shape, qp.axis) };
                        let back = (r / qp.scales[c]).round() as i32 + qp.zero_points[c];
                        assert_eq!(back, q as i32, "{name} {}", t.name);
                    }
                }
            }
            assert!(f.tensors.iter().all(|t| t.quant.is_none()), "{name}");
        }
    }

    /// A one-convolution float graph `x [1, h, w, ic] → CONV(k×k) → y`.
    fn conv_graph(h: usize, ic: usize, oc: usize, k: usize, w: Vec<f32>, b: Vec<f32>) -> Graph {
        let t = |name: &str, shape: Vec<usize>, data: Option<ConstData>| Tensor {
            name: name.into(),
            shape,
            dtype: DType::F32,
            quant: None,
            data,
            from_uint8: false,
        };
        Graph {
            name: "conv".into(),
            tensors: vec![
                t("x", vec![1, h, h, ic], None),
                t("w", vec![oc, k, k, ic], Some(ConstData::F32(w))),
                t("b", vec![oc], Some(ConstData::F32(b))),
                t("y", vec![1, h, h, oc], None),
            ],
            nodes: vec![Node {
                op: Op::Conv2d {
                    stride: [1, 1],
                    dilation: [1, 1],
                    padding: Padding::Same,
                    activation: Activation::None,
                },
                inputs: vec![Some(0), Some(1), Some(2)],
                output: 3,
            }],
            input: 0,
            output: 3,
            input_uint8: false,
            output_uint8: false,
        }
    }

    fn run_float(g: &Graph, x: &[f32]) -> Vec<f32> {
        let plan = Plan::new(g).unwrap();
        let mut a = plan.arenas();
        a.f32[plan.input.slot.range()].copy_from_slice(x);
        plan.run(&mut a);
        a.f32[plan.output.slot.range()].to_vec()
    }

    /// Runs a quantized graph on real input, returns the real output.
    fn run_quantized(g: &Graph, x: &[f32]) -> Vec<f32> {
        let plan = Plan::new(g).unwrap();
        let mut a = plan.arenas();
        let qi = g.tensors[g.input].quant.clone().unwrap();
        let qo = g.tensors[g.output].quant.clone().unwrap();
        let r = plan.input.slot.range();
        let deq = |v: i32| qo.scale() * (v - qo.zero_point()) as f32;
        match g.tensors[g.input].dtype {
            DType::I8 => {
                for (d, &v) in a.i8[r].iter_mut().zip(x) {
                    *d = crate::kernels::math::quantize_value(v, qi.scale(), qi.zero_point(), -128, 127) as i8;
                }
                plan.run(&mut a);
                a.i8[plan.output.slot.range()].iter().map(|&v| deq(v as i32)).collect()
            }
            _ => {
                for (d, &v) in a.i16[r].iter_mut().zip(x) {
                    *d = crate::kernels::math::quantize_value(v, qi.scale(), 0, -32768, 32767) as i16;
                }
                plan.run(&mut a);
                a.i16[plan.output.slot.range()].iter().map(|&v| deq(v as i32)).collect()
            }
        }
    }

    fn min_max(v: &[f32]) -> Range {
        v.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)))
    }

    proptest! {
        /// Quantize then dequantize within the range lands within half a step of the real value.
        #[test]
        fn activation_round_trip_is_within_half_a_step(
            lo in -100f32..0.0, width in 0.01f32..200.0, t in 0f32..=1.0, sixteen in any::<bool>(),
        ) {
            let hi = lo + width;
            let target = if sixteen { Precision::Int16 } else { Precision::Int8 };
            let (qmin, qmax) = if sixteen { (-32768, 32767) } else { (-128, 127) };
            let q = activation_quant((lo, hi), target).unwrap();
            let x = lo + t * (hi - lo);
            let v = crate::kernels::math::quantize_value(x, q.scale(), q.zero_point(), qmin, qmax);
            let back = q.scale() * (v - q.zero_point()) as f32;
            // Half a step, plus the f32 rounding of the operands.
            let tol = q.scale() as f64 / 2.0 + (x.abs().max(hi.abs()) as f64) * 4.0 * f32::EPSILON as f64;
            prop_assert!(((back - x) as f64).abs() <= tol, "{x} in [{lo}, {hi}] -> {v} -> {back}, scale {}", q.scale());
        }

        /// Per-channel symmetric weights: every weight within half its channel's step.
        #[test]
        fn weight_round_trip_is_within_half_a_step(w in prop::collection::vec(-10f32..10.0, 24)) {
            let shape = [4usize, 1, 2, 3];
            let (q, scales) = quantize_weights(&w, &shape, 0);
            for (i, (&v, &q)) in w.iter().zip(&q).enumerate() {
                let s = scales[channel_of(i, &shape, 0)];
                prop_assert!(((q as f32 * s - v) as f64).abs() <= s as f64 / 2.0 * (1.0 + 1e-6), "{v} -> {q} · {s}");
            }
        }

        /// The same float layer quantized to int16 (16x8) is never less accurate than int8. Both share
        /// the int8 weights, so the reference is the layer with those weights in float: what is left
        /// is the activation arithmetic each precision is about. Layers have 18+ outputs and the error
        /// is the largest over them, so a lucky int8 rounding of one output cannot decide the outcome.
        #[test]
        fn int16_error_never_exceeds_int8_error_on_the_same_layer(
            h in 3usize..6, ic in 1usize..4, oc in 2usize..5, k in prop::sample::select(vec![1usize, 3]),
            seed in prop::collection::vec(-1f32..1.0, 256),
            scale in 0.01f32..10.0,
        ) {
            let take = |n: usize, off: usize| (0..n).map(|i| seed[(i * 7 + off) % seed.len()] * scale).collect::<Vec<f32>>();
            let x = take(h * h * ic, 0);
            let shape = [oc, k, k, ic];
            let (q, s) = quantize_weights(&take(oc * k * k * ic, 3), &shape, 0);
            let w = q.iter().enumerate().map(|(i, &v)| v as f32 * s[channel_of(i, &shape, 0)]).collect();
            let b = take(oc, 11);
            let g = conv_graph(h, ic, oc, k, w, b);
            let y = run_float(&g, &x);
            let ranges = vec![Some(min_max(&x)), None, None, Some(min_max(&y))];
            let err = |p| {
                let q = quantize_with_ranges(&g, &ranges, p).unwrap();
                run_quantized(&q, &x).iter().zip(&y).map(|(a, b)| (a - b).abs() as f64).fold(0.0, f64::max)
            };
            let (e16, e8) = (err(Precision::Int16), err(Precision::Int8));
            prop_assert!(e16 <= e8, "int16 error {e16} > int8 error {e8}");
        }
    }
}
