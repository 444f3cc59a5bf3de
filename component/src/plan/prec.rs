//! The per-precision half of planning and execution: which kernel module runs a step, and how its
//! params are prepared from the graph's quantization. One small impl per precision.

use crate::error::{bail, Result};
use crate::graph::{ConstData, Graph, Node, Op, Tensor};
use crate::kernels::{self, fp32, int16, int8, Activation, Kernels, TensorQuant};
pub use crate::kernels::{F32, I16, I8};

use super::weights::Pod;

/// What a precision's `prepare` calls may ask of the node being planned.
pub struct Ctx<'g> {
    pub g: &'g Graph,
    pub node: &'g Node,
}

impl Ctx<'_> {
    fn tq(&self, t: usize) -> TensorQuant {
        super::tq(self.g, t)
    }
    fn input(&self, i: usize) -> TensorQuant {
        self.tq(self.node.input(i))
    }
    fn output(&self) -> TensorQuant {
        self.tq(self.node.output)
    }
    fn filter(&self) -> &Tensor {
        &self.g.tensors[self.node.input(1)]
    }
    fn filter_scales(&self) -> &[f32] {
        &self.filter().quant.as_ref().expect("lowering checked quantized weights").scales
    }
    fn filter_zero_point(&self) -> i32 {
        self.filter().quant.as_ref().expect("lowering checked quantized weights").zero_points[0]
    }
    fn input_from_uint8(&self) -> bool {
        self.g.tensors[self.node.input(0)].from_uint8
    }
    fn activation(&self) -> Activation {
        match self.node.op {
            Op::Conv2d { activation, .. }
            | Op::DepthwiseConv2d { activation, .. }
            | Op::FullyConnected { activation }
            | Op::AveragePool2d { activation, .. }
            | Op::Add { activation, .. } => activation,
            _ => Activation::None,
        }
    }
    fn pad_amounts(&self) -> ([usize; 4], [usize; 4]) {
        match self.node.op {
            Op::Pad { before, after } => (before, after),
            _ => unreachable!("pad params are only prepared for PAD"),
        }
    }
    fn beta(&self) -> f32 {
        match self.node.op {
            Op::Softmax { beta } => beta,
            _ => unreachable!("softmax params are only prepared for SOFTMAX"),
        }
    }
    /// TFLite only defines quantized softmax for one output quantization per type.
    fn softmax_output(&self, scale: f32, zero_point: i32) -> Result<()> {
        let o = self.output();
        if o.zero_point != zero_point || (o.scale - scale).abs() > 0.001 * scale {
            bail!(
                UnsupportedModel,
                "SOFTMAX output quantized as scale {} zero point {}; TFLite requires {scale}, {zero_point}",
                o.scale,
                o.zero_point
            );
        }
        Ok(())
    }
}

/// The planning half of a precision: how its params are prepared from the graph's quantization and
/// its constants read. The kernels half (types, run functions) is [`Kernels`].
pub trait Prec: Kernels<Weight: Pod, Bias: Pod> {
    fn prepare_conv(c: &Ctx) -> Result<Self::Conv>;
    fn prepare_fc(c: &Ctx) -> Result<Self::Fc>;
    fn prepare_avg_pool(c: &Ctx) -> Result<Self::AvgPool>;
    fn prepare_mean(c: &Ctx) -> Result<Self::Mean>;
    fn prepare_add(c: &Ctx) -> Result<Self::Add>;
    fn prepare_softmax(c: &Ctx) -> Result<Self::Softmax>;
    fn prepare_pad(c: &Ctx) -> Result<Self::Pad>;
    /// Borrowed: most filters are repacked, so copying them first would only cost a load time.
    fn weights(t: &Tensor) -> Result<&[Self::Weight]>;
    fn bias(t: &Tensor) -> Result<Vec<Self::Bias>>;
}

/// Constant data of `t` as `T`, or an error naming what was found.
fn consts<T>(t: &Tensor, pick: impl Fn(&ConstData) -> Option<&Vec<T>>) -> Result<&[T]> {
    match t.data.as_ref().and_then(&pick) {
        Some(v) => Ok(v),
        None => bail!(UnsupportedModel, "constant {} has element type {:?}", t.name, t.dtype),
    }
}

impl Prec for F32 {
    fn prepare_conv(c: &Ctx) -> Result<Self::Conv> {
        Ok(fp32::ConvParams::prepare(c.activation()))
    }
    fn prepare_fc(c: &Ctx) -> Result<Self::Fc> {
        Ok(fp32::FullyConnectedParams::prepare(c.activation()))
    }
    fn prepare_avg_pool(c: &Ctx) -> Result<Self::AvgPool> {
        Ok(fp32::AvgPoolParams::prepare(c.activation()))
    }
    fn prepare_mean(_: &Ctx) -> Result<Self::Mean> {
        Ok(fp32::MeanParams::prepare())
    }
    fn prepare_add(c: &Ctx) -> Result<Self::Add> {
        Ok(fp32::AddParams::prepare(c.activation()))
    }
    fn prepare_softmax(c: &Ctx) -> Result<Self::Softmax> {
        Ok(fp32::SoftmaxParams::prepare(c.beta()))
    }
    fn prepare_pad(c: &Ctx) -> Result<Self::Pad> {
        let (before, after) = c.pad_amounts();
        Ok(kernels::PadParams::<f32>::prepare(before, after))
    }
    fn weights(t: &Tensor) -> Result<&[f32]> {
        consts(t, |d| if let ConstData::F32(v) = d { Some(v) } else { None })
    }
    fn bias(t: &Tensor) -> Result<Vec<f32>> {
        Self::weights(t).map(<[f32]>::to_vec)
    }
}

impl Prec for I8 {
    fn prepare_conv(c: &Ctx) -> Result<Self::Conv> {
        Ok(int8::ConvParams::prepare(
            c.input(0),
            c.filter_scales(),
            c.filter_zero_point(),
            c.output(),
            c.activation(),
            c.input_from_uint8(),
        ))
    }
    fn prepare_fc(c: &Ctx) -> Result<Self::Fc> {
        Ok(int8::FullyConnectedParams::prepare(
            c.input(0),
            c.filter_scales(),
            c.filter_zero_point(),
            c.output(),
            c.activation(),
        ))
    }
    fn prepare_avg_pool(c: &Ctx) -> Result<Self::AvgPool> {
        Ok(int8::AvgPoolParams::prepare(c.output(), c.activation(), c.input_from_uint8()))
    }
    fn prepare_mean(c: &Ctx) -> Result<Self::Mean> {
        Ok(int8::MeanParams::prepare(c.input(0), c.output()))
    }
    fn prepare_add(c: &Ctx) -> Result<Self::Add> {
        int8::AddParams::prepare(c.input(0), c.input(1), c.output(), c.activation())
    }
    fn prepare_softmax(c: &Ctx) -> Result<Self::Softmax> {
        c.softmax_output(1.0 / 256.0, -128)?;
        Ok(int8::SoftmaxParams::prepare(c.beta(), c.input(0)))
    }
    fn prepare_pad(c: &Ctx) -> Result<Self::Pad> {
        let (before, after) = c.pad_amounts();
        Ok(int8::PadParams::prepare(before, after, c.output().zero_point))
    }
    fn weights(t: &Tensor) -> Result<&[i8]> {
        consts(t, |d| if let ConstData::I8(v) = d { Some(v) } else { None })
    }
    fn bias(t: &Tensor) -> Result<Vec<i32>> {
        consts(t, |d| if let ConstData::I32(v) = d { Some(v) } else { None }).map(<[i32]>::to_vec)
    }
}

impl Prec for I16 {
    fn prepare_conv(c: &Ctx) -> Result<Self::Conv> {
        Ok(int16::ConvParams::prepare(c.input(0), c.filter_scales(), c.output(), c.activation()))
    }
    fn prepare_fc(c: &Ctx) -> Result<Self::Fc> {
        Ok(int16::FullyConnectedParams::prepare(c.input(0), c.filter_scales(), c.output(), c.activation()))
    }
    fn prepare_avg_pool(c: &Ctx) -> Result<Self::AvgPool> {
        Ok(int16::AvgPoolParams::prepare(c.output(), c.activation()))
    }
    fn prepare_mean(c: &Ctx) -> Result<Self::Mean> {
        Ok(int16::MeanParams::prepare(c.input(0), c.output()))
    }
    fn prepare_add(c: &Ctx) -> Result<Self::Add> {
        let pot = matches!(c.node.op, Op::Add { pot_scale_int16: true, .. });
        int16::AddParams::prepare(c.input(0), c.input(1), c.output(), c.activation(), pot)
    }
    fn prepare_softmax(c: &Ctx) -> Result<Self::Softmax> {
        c.softmax_output(1.0 / 32768.0, 0)?;
        Ok(int16::SoftmaxParams::prepare(c.beta(), c.input(0)))
    }
    fn prepare_pad(c: &Ctx) -> Result<Self::Pad> {
        let (before, after) = c.pad_amounts();
        Ok(int16::PadParams::prepare(before, after, c.output().zero_point))
    }
    fn weights(t: &Tensor) -> Result<&[i8]> {
        consts(t, |d| if let ConstData::I8(v) = d { Some(v) } else { None })
    }
    fn bias(t: &Tensor) -> Result<Vec<i64>> {
        consts(t, |d| if let ConstData::I64(v) = d { Some(v) } else { None }).map(<[i64]>::to_vec)
    }
}
