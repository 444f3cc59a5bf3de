//! Kernels: one module per precision (`fp32`, `int8`, `int16`), all with the same shape so a reader
//! learns it once, behind one interface ([`Kernels`], in [`exec`]), with the choice of kernel in one
//! table ([`select`]).
//!
//! For each operator a precision has a plain-data `XxxParams` struct (no references, serialisable into
//! a plan) built by `XxxParams::prepare(..)` — exactly TFLite's `Prepare` computation from the
//! real-valued quantization parameters as stored in the file:
//!
//! | op | params | [`Kernels`] function |
//! |---|---|---|
//! | CONV_2D, DEPTHWISE_CONV_2D | `ConvParams` (in a [`ConvOp`] with the chosen kernel) | `conv` |
//! | FULLY_CONNECTED | `FullyConnectedParams` | `fully_connected` |
//! | AVERAGE_POOL_2D | `AvgPoolParams` | `average_pool2d` |
//! | MEAN over H, W | `MeanParams` | `mean_hw` |
//! | ADD (same shapes) | `AddParams` | `add` |
//! | SOFTMAX (last dim) | `SoftmaxParams` | `softmax` |
//! | PAD (constant) | `PadParams<T>` | `pad` |
//! | QUANTIZE f32→q, requantize, DEQUANTIZE (int8/int16 only) | `QuantizeParams`, `RequantizeParams`, `DequantizeParams` | `int8::affine_quantize` etc. (TFLite's `AffineQuantize`; the plan's conversions) |
//!
//! The loops that walk tensors are written once in [`generic`] (one file per loop), convolutions and
//! FULLY_CONNECTED in terms of [`generic::MacStage`], which each precision's conv and FC params
//! implement (the multiply-accumulate and the output stage). Where int8 and int16 compute the same
//! thing it is written once too, generic over the storage type ([`generic::QInt`]). *What differs*
//! between precisions — the multiply-accumulate and the output stage, the ADD and SOFTMAX arithmetic,
//! the uint8 flags — stays in each precision's module. The wasm SIMD micro-kernels (`simd128/`, SIMD
//! build only) read output stages built at plan time ([`stage`]) and depend on no precision module.
//!
//! Integer results equal TFLite's reference kernels (`BuiltinOpResolver` with `BUILTIN_REF`, i.e. the
//! `kReference` paths) bit for bit. uint8 models are executed as int8 (every uint8 value `v` is stored as
//! `v − 128`, zero points too, weights included); where that shift is not exact by itself the int8
//! `prepare` takes a flag (`from_uint8` for CONV_2D / DEPTHWISE_CONV_2D multipliers,
//! `uint8_rounding` for AVERAGE_POOL_2D).
//!
//! All run functions do not panic when given slices of the lengths the geometry implies (the caller
//! validates shapes; lengths are `debug_assert`ed), and allocate nothing except scratch rows in the
//! SIMD convolutions (see `simd128/`).

#[cfg(test)]
mod blocked_tests;
pub mod exec;
pub mod fixedpoint;
pub mod fp32;
pub mod generic;
pub mod int16;
pub mod int8;
pub mod math;
#[cfg(test)]
mod oracle_tests;
pub mod select;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128;
pub mod stage;
#[cfg(test)]
mod testutil;

pub use exec::{ConvOp, Kernels, F32, I16, I8};
pub use select::{Arch, ConvKernel};

/// The loop nest (and filter layout) of a CONV_2D or DEPTHWISE_CONV_2D: `select` picks one per
/// layer, `stage` widens filters for it, `generic` and `simd128` run it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ConvLoop {
    /// TFLite's reference loop, filter as stored (filters over [`generic::MAX_BLOCKED_TAPS`] taps).
    Reference,
    /// k x k CONV_2D on a [`generic::pack_conv`] filter, 16 output channels at a time.
    Packed,
    /// 1x1 CONV_2D on a [`generic::pack_pointwise`] filter, 4 pixels by 16 channels.
    Pointwise,
    /// DEPTHWISE_CONV_2D with multiplier 1, 16 channels at a time, filter as stored.
    Depthwise,
    /// DEPTHWISE_CONV_2D in TFLite's loop order (any multiplier, any filter size).
    DepthwiseGeneral,
}

impl ConvLoop {
    pub const fn name(self) -> &'static str {
        match self {
            ConvLoop::Reference => "conv",
            ConvLoop::Packed => "conv-packed",
            ConvLoop::Pointwise => "pointwise",
            ConvLoop::Depthwise => "depthwise",
            ConvLoop::DepthwiseGeneral => "depthwise-general",
        }
    }
}

/// Fused activation of CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, ADD, AVERAGE_POOL_2D.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Activation {
    None,
    Relu,
    Relu6,
}

/// Geometry of a 2-D convolution or depthwise convolution over NHWC tensors.
/// Filters are TFLite's layouts: CONV_2D `[out_c, k_h, k_w, in_c]`, DEPTHWISE `[1, k_h, k_w, out_c]`
/// with `out_c = in_c * depth_multiplier`. `pad_top`/`pad_left` are TFLite's computed padding offsets
/// (0 for VALID). Taps that fall outside the input are skipped (they contribute nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConvGeom {
    pub batch: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub in_c: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub out_c: usize,
    pub k_h: usize,
    pub k_w: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub dilation_h: usize,
    pub dilation_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    /// Depthwise only (1 for CONV_2D).
    pub depth_multiplier: usize,
}

impl ConvGeom {
    /// Elements of the NHWC input.
    pub fn input_len(&self) -> usize {
        self.batch * self.in_h * self.in_w * self.in_c
    }

    /// Elements of the NHWC output.
    pub fn output_len(&self) -> usize {
        self.batch * self.out_h * self.out_w * self.out_c
    }

    /// Elements of a CONV_2D filter `[out_c, k_h, k_w, in_c]`.
    pub fn conv_filter_len(&self) -> usize {
        self.out_c * self.k_h * self.k_w * self.in_c
    }

    /// Elements of a DEPTHWISE_CONV_2D filter `[1, k_h, k_w, out_c]`.
    pub fn depthwise_filter_len(&self) -> usize {
        self.k_h * self.k_w * self.out_c
    }
}

/// Geometry of AVERAGE_POOL_2D over NHWC tensors (same channel count in and out). `pad_top`/`pad_left`
/// are TFLite's computed padding offsets; window taps outside the input are not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PoolGeom {
    pub batch: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub channels: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub filter_h: usize,
    pub filter_w: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
}

impl PoolGeom {
    pub fn input_len(&self) -> usize {
        self.batch * self.in_h * self.in_w * self.channels
    }

    pub fn output_len(&self) -> usize {
        self.batch * self.out_h * self.out_w * self.channels
    }
}

/// Geometry of FULLY_CONNECTED: `batch` rows of `in_depth` inputs, weights `[out_depth, in_depth]`,
/// output `[batch, out_depth]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FcGeom {
    pub batch: usize,
    pub in_depth: usize,
    pub out_depth: usize,
}

/// Scale and zero point of a per-tensor quantized tensor, exactly as stored in the file (the scale is
/// an `f32` there, and TFLite computes from that `f32`). For uint8 tensors executed as int8 the zero
/// point is the shifted one (`zp − 128`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TensorQuant {
    pub scale: f32,
    pub zero_point: i32,
}

impl TensorQuant {
    pub fn new(scale: f32, zero_point: i32) -> Self {
        Self { scale, zero_point }
    }
}

/// Constant padding of a 4-D (NHWC) tensor: `before[d]`/`after[d]` elements added on each side of
/// dimension `d`, filled with `value` (0.0 for float; the output zero point for quantized tensors —
/// TFLite's PAD/PADV2 default).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PadParams<T> {
    pub before: [usize; 4],
    pub after: [usize; 4],
    pub value: T,
}

impl<T: Copy> PadParams<T> {
    /// Output shape for an input of shape `in_shape`.
    pub fn output_shape(&self, in_shape: [usize; 4]) -> [usize; 4] {
        core::array::from_fn(|d| self.before[d] + in_shape[d] + self.after[d])
    }
}
