//! The loop structure shared by all precisions, written once.
//!
//! * [`conv2d`], [`depthwise_conv2d`] and [`fully_connected`] walk the tensors exactly like TFLite's
//!   reference kernels (`reference_ops::Conv`, `reference_integer_ops::ConvPerChannel`,
//!   `DepthwiseConvPerChannel`, `FullyConnected…`) and leave the arithmetic to a [`MacStage`]: the
//!   accumulator type, the multiply-accumulate and the output stage (bias, requantization, clamp). For
//!   float the order of additions is TFLite's (filter row, filter column, input channel), so results are
//!   bit-identical to the reference too.
//! * [`average_pool2d`] and [`mean_hw`] walk windows / the H×W plane and call back for the sum and the
//!   final division.
//! * [`pad`] is type-agnostic; [`quantize`], [`dequantize`] and [`requantize`] (with their params),
//!   [`quant_mean_hw`] ([`QuantMeanParams`]), [`quant_average_pool2d`] and quantized
//!   [`PadParams::prepare`] are generic over the integer storage types through [`QInt`].
//! * [`AddRescale`] (the general quantized ADD), [`FcRequant`] (FULLY_CONNECTED's output stage),
//!   [`QuantFcParams`] and [`conv_multipliers`] are shared by int8 and int16.
//!
//! Files: [`conv`] (CONV_2D, packed filters, FULLY_CONNECTED), [`depthwise`], [`pointwise`] (1x1),
//! [`pool`] (AVERAGE_POOL_2D, MEAN, PAD), [`quantized`] (what int8 and int16 share).

pub mod conv;
pub mod depthwise;
pub mod pointwise;
pub mod pool;
pub mod quantized;

pub use conv::*;
pub use depthwise::*;
pub use pointwise::*;
pub use pool::*;
pub use quantized::*;

/// What differs between precisions in CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED: implemented by
/// each precision's params struct.
pub trait MacStage {
    /// Activation element (`f32`, `i8`, `i16`).
    type Act: Copy;
    /// Weight element (`f32`, `i8`).
    type Weight: Copy;
    /// Bias element (`f32`, `i32`, `i64`).
    type Bias: Copy;
    /// Accumulator (`f32`, `i32`, `i64`).
    type Acc: Copy + Default;

    /// The empty accumulator.
    fn zero(&self) -> Self::Acc;
    /// `acc + x·w` with the precision's offsets.
    fn mac(&self, acc: Self::Acc, x: Self::Act, w: Self::Weight) -> Self::Acc;
    /// Bias add, rescale for `out_channel`, output offset, activation clamp.
    fn finish(&self, acc: Self::Acc, bias: Option<Self::Bias>, out_channel: usize) -> Self::Act;

    /// `acc + Σ xs[i]·ws[i]`, in order.
    #[inline]
    fn dot(&self, acc: Self::Acc, xs: &[Self::Act], ws: &[Self::Weight]) -> Self::Acc {
        xs.iter().zip(ws).fold(acc, |acc, (&x, &w)| self.mac(acc, x, w))
    }
}

/// Channels per block in the vectorised loops: the innermost loops run over this many contiguous
/// channels with a constant trip count, so the compiler keeps the accumulators in registers and
/// vectorises them (wasm `simd128`, AVX2 natively).
pub const LANES: usize = 16;

/// Most filter taps the channel-blocked depthwise path takes (its tap offsets live on the stack);
/// larger filters use [`depthwise_conv2d_general`].
pub const MAX_BLOCKED_TAPS: usize = 64;
