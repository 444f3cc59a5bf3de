//! TFLite views → validated [`Graph`]. Every check that can fail on a bad file happens here, so
//! planning and execution can trust shapes and types.

use super::*;
use crate::error::{bail, Error, Result};
use crate::tflite::{self, op, tensor_type, Operator};

/// Largest single tensor we agree to hold (activation or constant): far above any MobileNet
/// (the biggest activation of MobileNetV2 224 is 1.2 MB), far below a wasm32 address space.
pub const MAX_TENSOR_BYTES: usize = 256 << 20;
/// Largest dilated filter extent or stride we accept (MobileNets use 3 and 2).
const MAX_WINDOW: usize = 1 << 16;
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
    let name = sg.name().filter(|n| !n.is_empty()).or(model.description()).unwrap_or("model").to_string();
    Ok(Graph { name, tensors, nodes, input, output, input_uint8, output_uint8 })
}

fn malformed(msg: impl Into<String>) -> Error {
    Error::MalformedModel(msg.into())
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

fn activation(code: i8) -> Result<Activation> {
    Ok(match code {
        0 => Activation::None,
        1 => Activation::Relu,
        3 => Activation::Relu6,
        2 => bail!(UnsupportedModel, "fused activation RELU_N1_TO_1"),
        4 => bail!(UnsupportedModel, "fused activation TANH"),
        5 => bail!(UnsupportedModel, "fused activation SIGN_BIT"),
        other => bail!(MalformedModel, "fused activation {other}"),
    })
}

fn padding(code: i8) -> Result<Padding> {
    match code {
        0 => Ok(Padding::Same),
        1 => Ok(Padding::Valid),
        other => bail!(MalformedModel, "padding {other}"),
    }
}

fn positive(v: i32, what: &str) -> Result<usize> {
    if v >= 1 {
        Ok(v as usize)
    } else {
        bail!(MalformedModel, "{what} is {v}")
    }
}

/// TFLite's output size for one spatial dimension.
pub fn out_size(padding: Padding, input: usize, filter: usize, stride: usize, dilation: usize) -> Result<usize> {
    let effective = (filter - 1)
        .checked_mul(dilation)
        .and_then(|e| e.checked_add(1))
        .ok_or_else(|| malformed("filter too large"))?;
    // Bounding both keeps every window coordinate (`o * stride + f * dilation`, the padding sums) below
    // input + 2^16, so none of it can wrap in wasm32's 32-bit usize.
    if effective > MAX_WINDOW || stride > MAX_WINDOW {
        bail!(UnsupportedModel, "filter extent {effective} or stride {stride} exceeds {MAX_WINDOW}");
    }
    match padding {
        Padding::Same => Ok(input.div_ceil(stride)),
        Padding::Valid if input >= effective => Ok((input - effective) / stride + 1),
        Padding::Valid => {
            bail!(MalformedModel, "filter extent {effective} exceeds input size {input} with VALID padding")
        }
    }
}

/// TFLite's `ComputePaddingHeightWidth`: the top/left padding offset.
pub fn pad_before(input: usize, filter: usize, stride: usize, dilation: usize, output: usize) -> usize {
    let effective = (filter - 1) * dilation + 1;
    let total = ((output.saturating_sub(1)) * stride + effective).saturating_sub(input);
    total / 2
}

struct Check<'t> {
    tensors: &'t [Tensor],
    ins: &'t [Option<usize>],
}

impl<'t> Check<'t> {
    fn input(&self, i: usize, what: &str) -> Result<&'t Tensor> {
        match self.ins.get(i).copied().flatten() {
            Some(t) => Ok(&self.tensors[t]),
            None => bail!(MalformedModel, "missing {what} (input {i})"),
        }
    }
    fn optional(&self, i: usize) -> Option<&'t Tensor> {
        self.ins.get(i).copied().flatten().map(|t| &self.tensors[t])
    }
    fn count(&self, lo: usize, hi: usize) -> Result<()> {
        if self.ins.len() < lo || self.ins.len() > hi {
            bail!(MalformedModel, "has {} inputs, expects {lo}..={hi}", self.ins.len());
        }
        Ok(())
    }
}

fn rank(t: &Tensor, r: usize, what: &str) -> Result<()> {
    if t.shape.len() != r {
        bail!(UnsupportedModel, "{what} has rank {} (shape {:?}), expects {r}", t.shape.len(), t.shape);
    }
    if t.shape.contains(&0) {
        bail!(MalformedModel, "{what} has an empty dimension (shape {:?})", t.shape);
    }
    Ok(())
}

fn constant<'t>(t: &'t Tensor, what: &str) -> Result<&'t Tensor> {
    if !t.is_const() {
        bail!(UnsupportedModel, "{what} is not a constant");
    }
    Ok(t)
}

/// An int32 or int64 constant (axes, paddings) as i64.
fn int_list(t: &Tensor, what: &str) -> Result<Vec<i64>> {
    match &t.data {
        Some(ConstData::I32(v)) => Ok(v.iter().map(|&a| a as i64).collect()),
        Some(ConstData::I64(v)) => Ok(v.clone()),
        _ => bail!(MalformedModel, "{what} must be int32 or int64"),
    }
}

fn expect_shape(out: &Tensor, expected: &[usize]) -> Result<()> {
    if out.shape != expected {
        bail!(MalformedModel, "output shape {:?} should be {expected:?}", out.shape);
    }
    Ok(())
}

fn same_dtype(a: &Tensor, b: &Tensor, what: &str) -> Result<()> {
    if a.dtype != b.dtype || a.from_uint8 != b.from_uint8 {
        bail!(UnsupportedModel, "{what}: element types {:?} and {:?} differ", a.dtype, b.dtype);
    }
    Ok(())
}

/// Activations must be f32, or int8/int16 quantized per tensor.
fn activation_tensor(t: &Tensor, what: &str) -> Result<()> {
    match (t.dtype, &t.quant) {
        (DType::F32, None) => Ok(()),
        (DType::I8 | DType::I16, Some(q)) if q.per_tensor() => Ok(()),
        (DType::I8 | DType::I16, Some(_)) => bail!(UnsupportedModel, "{what} is quantized per channel"),
        (dt, _) => bail!(UnsupportedModel, "{what} has element type {dt:?}"),
    }
}

/// Filter/bias types that go with the activation type: f32/f32/f32, int8/int8/int32, int16/int8/int64.
fn weights(
    input: &Tensor,
    filter: &Tensor,
    bias: Option<&Tensor>,
    out_channels: usize,
    filter_axis: usize,
) -> Result<()> {
    let expected_bias = match (input.dtype, filter.dtype) {
        (DType::F32, DType::F32) => DType::F32,
        (DType::I8, DType::I8) => DType::I32,
        (DType::I16, DType::I8) => DType::I64,
        (a, f) => bail!(UnsupportedModel, "{a:?} activations with {f:?} weights"),
    };
    if input.from_uint8 != filter.from_uint8 {
        bail!(UnsupportedModel, "mixed uint8 and int8 tensors");
    }
    if let Some(q) = &filter.quant {
        if !q.per_tensor() && (q.axis != filter_axis || q.scales.len() != out_channels) {
            bail!(UnsupportedModel, "filter quantized along axis {} with {} scales", q.axis, q.scales.len());
        }
        if input.dtype == DType::I16 && q.zero_points.iter().any(|&z| z != 0) {
            bail!(UnsupportedModel, "16x8 filter with a non-zero zero point");
        }
        if !filter.from_uint8 && !q.per_tensor() && q.zero_points.iter().any(|&z| z != 0) {
            bail!(UnsupportedModel, "per-channel filter with non-zero zero points");
        }
    }
    if let Some(b) = bias {
        constant(b, "bias")?;
        if b.dtype != expected_bias {
            bail!(UnsupportedModel, "bias of type {:?}, expects {expected_bias:?}", b.dtype);
        }
        if b.numel() != out_channels {
            bail!(MalformedModel, "bias has {} elements for {out_channels} output channels", b.numel());
        }
    }
    Ok(())
}

fn lower_op(tensors: &[Tensor], code: i32, o: Operator<'_>, ins: Vec<Option<usize>>, out_i: usize) -> Result<Node> {
    let c = Check { tensors, ins: &ins };
    let out = &tensors[out_i];
    if out.is_const() {
        bail!(MalformedModel, "output is a constant");
    }
    let op = match code {
        op::CONV_2D | op::DEPTHWISE_CONV_2D => {
            c.count(2, 3)?;
            let (x, f, b) = (c.input(0, "input")?, constant(c.input(1, "filter")?, "filter")?, c.optional(2));
            rank(x, 4, "input")?;
            rank(f, 4, "filter")?;
            rank(out, 4, "output")?;
            activation_tensor(x, "input")?;
            activation_tensor(out, "output")?;
            same_dtype(x, out, "input and output")?;
            let depthwise = code == op::DEPTHWISE_CONV_2D;
            let (pad, sw, sh, dw, dh, act, mult) = if depthwise {
                let opt = o.depthwise_options().ok_or_else(|| malformed("missing options"))?;
                (
                    opt.padding(),
                    opt.stride_w(),
                    opt.stride_h(),
                    opt.dilation_w_factor(),
                    opt.dilation_h_factor(),
                    opt.fused_activation_function(),
                    Some(opt.depth_multiplier()),
                )
            } else {
                let opt = o.conv2d_options().ok_or_else(|| malformed("missing options"))?;
                (
                    opt.padding(),
                    opt.stride_w(),
                    opt.stride_h(),
                    opt.dilation_w_factor(),
                    opt.dilation_h_factor(),
                    opt.fused_activation_function(),
                    None,
                )
            };
            let padding = padding(pad)?;
            let stride = [positive(sh, "stride_h")?, positive(sw, "stride_w")?];
            let dilation = [positive(dh, "dilation_h")?, positive(dw, "dilation_w")?];
            let activation = activation(act)?;
            let [n, h, w, ic] = x.shape[..] else { unreachable!("rank checked") };
            let [f0, kh, kw, f3] = f.shape[..] else { unreachable!("rank checked") };
            let oc = if depthwise {
                if f0 != 1 {
                    bail!(MalformedModel, "depthwise filter shape {:?} must start with 1", f.shape);
                }
                if f3 % ic != 0 {
                    bail!(MalformedModel, "depthwise filter has {f3} channels for {ic} input channels");
                }
                f3
            } else {
                if f3 != ic {
                    bail!(UnsupportedModel, "filter depth {f3} differs from input depth {ic} (grouped convolution)");
                }
                f0
            };
            weights(x, f, b, oc, if depthwise { 3 } else { 0 })?;
            let oh = out_size(padding, h, kh, stride[0], dilation[0])?;
            let ow = out_size(padding, w, kw, stride[1], dilation[1])?;
            expect_shape(out, &[n, oh, ow, oc])?;
            if depthwise {
                // Files written by old converters store 0 or a stale value; the shapes are authoritative.
                let depth_multiplier = oc / ic;
                if let Some(m) = mult.filter(|&m| m > 0) {
                    if m as usize != depth_multiplier {
                        bail!(MalformedModel, "depth_multiplier {m} contradicts filter shape {:?}", f.shape);
                    }
                }
                Op::DepthwiseConv2d { stride, dilation, padding, depth_multiplier, activation }
            } else {
                Op::Conv2d { stride, dilation, padding, activation }
            }
        }
        op::FULLY_CONNECTED => {
            c.count(2, 3)?;
            let (x, wt, b) = (c.input(0, "input")?, constant(c.input(1, "weights")?, "weights")?, c.optional(2));
            rank(wt, 2, "weights")?;
            activation_tensor(x, "input")?;
            activation_tensor(out, "output")?;
            same_dtype(x, out, "input and output")?;
            let opt = o.fully_connected_options();
            if opt.is_some_and(|o| o.weights_format() != 0) {
                bail!(UnsupportedModel, "shuffled weights format");
            }
            let act = activation(opt.map(|o| o.fused_activation_function()).unwrap_or(0))?;
            let [units, depth] = wt.shape[..] else { unreachable!("rank checked") };
            weights(x, wt, b, units, 0)?;
            if x.numel() % depth != 0 || x.numel() == 0 {
                bail!(MalformedModel, "input of {} elements is not rows of {depth}", x.numel());
            }
            if out.numel() != x.numel() / depth * units {
                bail!(
                    MalformedModel,
                    "output shape {:?} does not hold {} rows of {units}",
                    out.shape,
                    x.numel() / depth
                );
            }
            Op::FullyConnected { activation: act }
        }
        op::AVERAGE_POOL_2D => {
            c.count(1, 1)?;
            let x = c.input(0, "input")?;
            rank(x, 4, "input")?;
            activation_tensor(x, "input")?;
            activation_tensor(out, "output")?;
            same_dtype(x, out, "input and output")?;
            if let (Some(a), Some(b)) = (&x.quant, &out.quant) {
                if a != b {
                    bail!(UnsupportedModel, "input and output quantization differ");
                }
            }
            let opt = o.pool2d_options().ok_or_else(|| malformed("missing options"))?;
            let padding = padding(opt.padding())?;
            let filter =
                [positive(opt.filter_height(), "filter_height")?, positive(opt.filter_width(), "filter_width")?];
            let stride = [positive(opt.stride_h(), "stride_h")?, positive(opt.stride_w(), "stride_w")?];
            let activation = activation(opt.fused_activation_function())?;
            let [n, h, w, ch] = x.shape[..] else { unreachable!("rank checked") };
            let oh = out_size(padding, h, filter[0], stride[0], 1)?;
            let ow = out_size(padding, w, filter[1], stride[1], 1)?;
            expect_shape(out, &[n, oh, ow, ch])?;
            Op::AveragePool2d { filter, stride, padding, activation }
        }
        op::MEAN => {
            c.count(2, 2)?;
            let (x, axes) = (c.input(0, "input")?, constant(c.input(1, "axes")?, "axes")?);
            rank(x, 4, "input")?;
            activation_tensor(x, "input")?;
            activation_tensor(out, "output")?;
            same_dtype(x, out, "input and output")?;
            let mut axes = int_list(axes, "axes")?;
            for a in &mut axes {
                if *a < 0 {
                    *a += 4;
                }
            }
            axes.sort_unstable();
            axes.dedup();
            if axes != [1, 2] {
                bail!(UnsupportedModel, "MEAN over axes {axes:?}; only the spatial mean (axes 1, 2) is supported");
            }
            let keep_dims = o.reducer_options().is_some_and(|r| r.keep_dims());
            let [n, _, _, ch] = x.shape[..] else { unreachable!("rank checked") };
            if keep_dims {
                expect_shape(out, &[n, 1, 1, ch])?;
            } else {
                expect_shape(out, &[n, ch])?;
            }
            Op::MeanHw
        }
        op::ADD => {
            c.count(2, 2)?;
            let (a, b) = (c.input(0, "input 1")?, c.input(1, "input 2")?);
            for (t, what) in [(a, "input 1"), (b, "input 2"), (out, "output")] {
                activation_tensor(t, what)?;
                same_dtype(t, out, what)?;
            }
            if a.shape != b.shape || a.shape != out.shape {
                bail!(UnsupportedModel, "broadcasting ADD ({:?} + {:?} -> {:?})", a.shape, b.shape, out.shape);
            }
            if a.is_const() || b.is_const() {
                bail!(UnsupportedModel, "ADD of a constant");
            }
            let opt = o.add_options();
            let act = activation(opt.map(|o| o.fused_activation_function()).unwrap_or(0))?;
            // Without an options table TFLite zero-initialises the params (pot_scale_int16 = false); with
            // one, an absent field takes the schema default (true).
            Op::Add { activation: act, pot_scale_int16: opt.map(|o| o.pot_scale_int16()).unwrap_or(false) }
        }
        op::RESHAPE => {
            c.count(1, 2)?;
            let x = c.input(0, "input")?;
            if x.is_const() {
                // Its output would alias the constant's storage, which the arenas do not hold.
                bail!(UnsupportedModel, "RESHAPE of a constant");
            }
            same_dtype(x, out, "input and output")?;
            if x.quant != out.quant {
                bail!(UnsupportedModel, "RESHAPE that changes quantization");
            }
            if x.numel() != out.numel() {
                bail!(MalformedModel, "reshape of {:?} to {:?} changes the element count", x.shape, out.shape);
            }
            Op::Reshape
        }
        op::SOFTMAX => {
            c.count(1, 1)?;
            let x = c.input(0, "input")?;
            activation_tensor(x, "input")?;
            activation_tensor(out, "output")?;
            same_dtype(x, out, "input and output")?;
            if x.shape != out.shape || x.shape.is_empty() || x.numel() == 0 {
                bail!(MalformedModel, "softmax of {:?} to {:?}", x.shape, out.shape);
            }
            let beta = o.softmax_options().map(|s| s.beta()).unwrap_or(1.0);
            if !beta.is_finite() || beta <= 0.0 {
                bail!(MalformedModel, "softmax beta {beta}");
            }
            Op::Softmax { beta }
        }
        op::QUANTIZE | op::DEQUANTIZE => {
            c.count(1, 1)?;
            let x = c.input(0, "input")?;
            activation_tensor(x, "input")?;
            activation_tensor(out, "output")?;
            if x.shape != out.shape {
                bail!(MalformedModel, "shape {:?} -> {:?}", x.shape, out.shape);
            }
            if code == op::QUANTIZE {
                if out.dtype == DType::F32 {
                    bail!(MalformedModel, "QUANTIZE to float");
                }
                Op::Quantize
            } else {
                if out.dtype != DType::F32 || x.dtype == DType::F32 {
                    bail!(UnsupportedModel, "DEQUANTIZE from {:?} to {:?}", x.dtype, out.dtype);
                }
                Op::Dequantize
            }
        }
        op::PAD => {
            c.count(2, 2)?;
            let (x, p) = (c.input(0, "input")?, constant(c.input(1, "paddings")?, "paddings")?);
            rank(x, 4, "input")?;
            activation_tensor(x, "input")?;
            same_dtype(x, out, "input and output")?;
            if x.quant != out.quant {
                bail!(UnsupportedModel, "PAD that changes quantization");
            }
            let pads = int_list(p, "paddings")?;
            if p.shape != [4, 2] {
                bail!(MalformedModel, "paddings of shape {:?}, expects [4, 2]", p.shape);
            }
            let mut before = [0usize; 4];
            let mut after = [0usize; 4];
            let mut expected = [0usize; 4];
            for d in 0..4 {
                let (b, a) = (pads[2 * d], pads[2 * d + 1]);
                if !(0..=1 << 16).contains(&b) || !(0..=1 << 16).contains(&a) {
                    bail!(MalformedModel, "padding {b}, {a} of dimension {d}");
                }
                before[d] = b as usize;
                after[d] = a as usize;
                expected[d] = x.shape[d] + before[d] + after[d];
            }
            expect_shape(out, &expected)?;
            Op::Pad { before, after }
        }
        other => bail!(UnsupportedModel, "operator {} is not supported", op::name(other)),
    };
    Ok(Node { op, inputs: ins, output: out_i })
}
