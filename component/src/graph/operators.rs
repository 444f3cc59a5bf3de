//! Each TFLite operator we run, checked and lowered to an [`Op`]: its input count and types, its options
//! decoded, its output shape computed as TFLite computes it and compared with the file's.

use super::*;
use crate::error::{bail, Error, Result};
use crate::tflite::{op, Operator};

/// Largest dilated filter extent or stride we accept (MobileNets use 3 and 2).
const MAX_WINDOW: usize = 1 << 16;

pub(super) fn malformed(msg: impl Into<String>) -> Error {
    Error::MalformedModel(msg.into())
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

pub(super) fn lower_op(
    tensors: &[Tensor],
    code: i32,
    o: Operator<'_>,
    ins: Vec<Option<usize>>,
    out_i: usize,
) -> Result<Node> {
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
