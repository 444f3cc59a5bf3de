//! The one kernel interface: [`Kernels`], implemented once per precision ([`F32`], [`I8`], [`I16`]).
//! The plan holds a [`ConvOp`] per convolution (its params, geometry, the kernel [`select`](super::select)
//! chose and the output stage built for it) and calls these functions; nothing else dispatches.

use core::fmt::Debug;

use super::generic::{self, MacStage};
use super::select::{self, AddFacts, Arch, ConvFacts, ConvKernel};
use super::stage::{F32Stage, Int16Stage, Int8Stage};
use super::ConvLoop;
use super::{fp32, int16, int8, ConvGeom, FcGeom, PoolGeom};

/// A prepared CONV_2D or DEPTHWISE_CONV_2D: everything but its constants and tensors. The stage is
/// built for the arch by [`Kernels::bind_conv`], at plan time or when a persisted plan is restored.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(bound = "")]
pub struct ConvOp<K: Kernels> {
    pub kernel: ConvKernel,
    pub p: K::Conv,
    pub g: ConvGeom,
    #[serde(skip)]
    pub stage: Option<K::Stage>,
}

/// One precision's kernels. Params types are TFLite's prepared values (see each precision module);
/// the run functions are allocation-free and do not panic on slices of the lengths the geometry
/// implies.
pub trait Kernels: Debug + Clone + Sized {
    /// `fp32`, `int8` or `int16`: the first part of a kernel's name.
    const NAME: &'static str;
    type Act: Copy + Debug + Default;
    type Weight: Copy + Debug + Default;
    type Bias: Copy + Debug;
    type Conv: MacStage<Act = Self::Act, Weight = Self::Weight, Bias = Self::Bias>
        + Debug
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned;
    type Fc: Debug + Clone + serde::Serialize + serde::de::DeserializeOwned;
    type AvgPool: Debug + Clone + serde::Serialize + serde::de::DeserializeOwned;
    type Mean: Debug + Clone + serde::Serialize + serde::de::DeserializeOwned;
    type Add: Debug + Clone + serde::Serialize + serde::de::DeserializeOwned;
    type Softmax: Debug + Clone + serde::Serialize + serde::de::DeserializeOwned;
    type Pad: Debug + Clone + serde::Serialize + serde::de::DeserializeOwned;
    /// What the SIMD kernels of this precision read instead of the params ([`super::stage`]).
    type Stage: Debug + Clone;

    /// The arch [`select::conv_arch`] picks for `op` on `target`.
    fn conv_arch(op: &ConvOp<Self>, target: Arch) -> Arch;
    /// The stage of the SIMD kernel for `op`, whose `filter` is packed for its loop.
    fn stage(op: &ConvOp<Self>, filter: &[Self::Weight], bias: Option<&[Self::Bias]>) -> Option<Self::Stage>;
    fn add_arch(p: &Self::Add, target: Arch) -> Arch;

    /// Chooses `op`'s arch for `target` and builds the stage it needs from `filter` (as [`ConvOp::new`]
    /// packed it) and the bias.
    fn bind_conv(op: &mut ConvOp<Self>, filter: &[Self::Weight], bias: Option<&[Self::Bias]>, target: Arch) {
        op.kernel.arch = Self::conv_arch(op, target);
        op.stage = match op.kernel.arch {
            Arch::Simd128 => Self::stage(op, filter, bias),
            Arch::Scalar => None,
        };
        if op.stage.is_none() {
            op.kernel.arch = Arch::Scalar;
        }
    }

    /// `filter` in the layout of `op.kernel.lp` (see [`pack`]); the SIMD packed and depthwise kernels
    /// read the stage's widened copy of it instead.
    fn conv(op: &ConvOp<Self>, x: &[Self::Act], filter: &[Self::Weight], b: Option<&[Self::Bias]>, y: &mut [Self::Act]);
    fn fully_connected(
        p: &Self::Fc,
        g: &FcGeom,
        x: &[Self::Act],
        w: &[Self::Weight],
        b: Option<&[Self::Bias]>,
        y: &mut [Self::Act],
    );
    fn average_pool2d(p: &Self::AvgPool, g: &PoolGeom, x: &[Self::Act], y: &mut [Self::Act]);
    fn mean_hw(p: &Self::Mean, shape: [usize; 4], x: &[Self::Act], y: &mut [Self::Act]);
    fn add(p: &Self::Add, arch: Arch, a: &[Self::Act], b: &[Self::Act], y: &mut [Self::Act]);
    fn softmax(p: &Self::Softmax, depth: usize, x: &[Self::Act], y: &mut [Self::Act]);
    fn pad(p: &Self::Pad, shape: [usize; 4], x: &[Self::Act], y: &mut [Self::Act]);
}

impl<K: Kernels> ConvOp<K> {
    /// A convolution as the plan prepares it: the loop [`select::conv_loop`] picks for `g`, and
    /// `filter` (as stored in the file) packed for that loop. Unbound (scalar, no stage) until
    /// [`Kernels::bind_conv`].
    pub fn new(p: K::Conv, depthwise: bool, g: &ConvGeom, filter: &[K::Weight]) -> (Self, Vec<K::Weight>) {
        let (lp, g) = select::conv_loop(depthwise, g);
        let packed = pack(lp, depthwise, &g, filter);
        (ConvOp { kernel: ConvKernel { lp, arch: Arch::Scalar }, p, g, stage: None }, packed)
    }
}

/// A convolution's filter, as stored in the file (`[out_c, k_h, k_w, in_c]`, or `[1, k_h, k_w, out_c]`
/// for DEPTHWISE_CONV_2D), in the layout loop `lp` reads; `g` is the geometry [`select::conv_loop`]
/// returned. Zeros fill the unused lanes of a last partial block (their outputs are never stored).
fn pack<W: Copy + Default>(lp: ConvLoop, depthwise: bool, g: &ConvGeom, filter: &[W]) -> Vec<W> {
    let pad = W::default();
    match lp {
        ConvLoop::Reference | ConvLoop::Depthwise | ConvLoop::DepthwiseGeneral => filter.to_vec(),
        ConvLoop::Pointwise => generic::pack_pointwise(filter, g.in_c, g.out_c, pad),
        ConvLoop::Packed if depthwise => {
            // [1, kh, kw, oc] to [oc, kh, kw, 1].
            let (taps, oc) = (g.k_h * g.k_w, g.out_c);
            let conv: Vec<W> = (0..oc).flat_map(|o| (0..taps).map(move |t| filter[t * oc + o])).collect();
            generic::pack_conv(&conv, oc, pad)
        }
        ConvLoop::Packed => generic::pack_conv(filter, g.out_c, pad),
    }
}

/// The scalar kernel of each loop, shared by all precisions.
fn scalar_conv<S: MacStage>(
    lp: ConvLoop,
    s: &S,
    g: &ConvGeom,
    x: &[S::Act],
    f: &[S::Weight],
    b: Option<&[S::Bias]>,
    y: &mut [S::Act],
) {
    match lp {
        ConvLoop::Reference => generic::conv2d(s, g, x, f, b, y),
        ConvLoop::Packed => generic::conv2d_packed(s, g, x, f, b, y),
        ConvLoop::Pointwise => generic::pointwise_conv2d(s, g, x, f, b, y),
        ConvLoop::Depthwise => generic::depthwise_conv2d_channels(s, g, x, f, b, y),
        ConvLoop::DepthwiseGeneral => generic::depthwise_conv2d_general(s, g, x, f, b, y),
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
use super::simd128;

#[derive(Debug, Clone)]
pub struct F32;

impl Kernels for F32 {
    const NAME: &'static str = "fp32";
    type Act = f32;
    type Weight = f32;
    type Bias = f32;
    type Conv = fp32::ConvParams;
    type Fc = fp32::FullyConnectedParams;
    type AvgPool = fp32::AvgPoolParams;
    type Mean = fp32::MeanParams;
    type Add = fp32::AddParams;
    type Softmax = fp32::SoftmaxParams;
    type Pad = fp32::PadParams;
    type Stage = F32Stage;

    fn conv_arch(op: &ConvOp<Self>, target: Arch) -> Arch {
        select::conv_arch(ConvFacts::Fp32, op.kernel.lp, &op.g, target)
    }
    fn stage(op: &ConvOp<Self>, _: &[f32], bias: Option<&[f32]>) -> Option<F32Stage> {
        Some(F32Stage::new(&op.p, bias, op.g.out_c))
    }
    fn add_arch(_: &Self::Add, target: Arch) -> Arch {
        select::add_arch(AddFacts::Fp32, target)
    }
    fn conv(op: &ConvOp<Self>, x: &[f32], f: &[f32], b: Option<&[f32]>, y: &mut [f32]) {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        if let (Arch::Simd128, Some(st)) = (op.kernel.arch, &op.stage) {
            return match op.kernel.lp {
                ConvLoop::Pointwise => simd128::fp32::pointwise(st, &op.g, x, f, y),
                ConvLoop::Packed => simd128::fp32::conv_packed(st, &op.g, x, f, y),
                ConvLoop::Depthwise => simd128::fp32::depthwise(st, &op.p, &op.g, x, f, b, y),
                lp => scalar_conv(lp, &op.p, &op.g, x, f, b, y),
            };
        }
        scalar_conv(op.kernel.lp, &op.p, &op.g, x, f, b, y)
    }
    fn fully_connected(p: &Self::Fc, g: &FcGeom, x: &[f32], w: &[f32], b: Option<&[f32]>, y: &mut [f32]) {
        generic::fully_connected(p, g, x, w, b, y)
    }
    fn average_pool2d(p: &Self::AvgPool, g: &PoolGeom, x: &[f32], y: &mut [f32]) {
        fp32::average_pool2d(p, g, x, y)
    }
    fn mean_hw(p: &Self::Mean, shape: [usize; 4], x: &[f32], y: &mut [f32]) {
        fp32::mean_hw(p, shape, x, y)
    }
    fn add(p: &Self::Add, _: Arch, a: &[f32], b: &[f32], y: &mut [f32]) {
        fp32::add(p, a, b, y)
    }
    fn softmax(p: &Self::Softmax, depth: usize, x: &[f32], y: &mut [f32]) {
        fp32::softmax(p, depth, x, y)
    }
    fn pad(p: &Self::Pad, shape: [usize; 4], x: &[f32], y: &mut [f32]) {
        generic::pad(p, shape, x, y)
    }
}

#[derive(Debug, Clone)]
pub struct I8;

impl Kernels for I8 {
    const NAME: &'static str = "int8";
    type Act = i8;
    type Weight = i8;
    type Bias = i32;
    type Conv = int8::ConvParams;
    type Fc = int8::FullyConnectedParams;
    type AvgPool = int8::AvgPoolParams;
    type Mean = int8::MeanParams;
    type Add = int8::AddParams;
    type Softmax = int8::SoftmaxParams;
    type Pad = int8::PadParams;
    type Stage = Int8Stage;

    fn conv_arch(op: &ConvOp<Self>, target: Arch) -> Arch {
        select::conv_arch(ConvFacts::Int8(&op.p), op.kernel.lp, &op.g, target)
    }
    fn stage(op: &ConvOp<Self>, filter: &[i8], bias: Option<&[i32]>) -> Option<Int8Stage> {
        Int8Stage::for_conv(&op.p, bias, op.kernel.lp, &op.g, filter)
    }
    fn add_arch(p: &Self::Add, target: Arch) -> Arch {
        select::add_arch(AddFacts::Int8(p), target)
    }
    fn conv(op: &ConvOp<Self>, x: &[i8], f: &[i8], b: Option<&[i32]>, y: &mut [i8]) {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        if let (Arch::Simd128, Some(st)) = (op.kernel.arch, &op.stage) {
            return match op.kernel.lp {
                ConvLoop::Pointwise => simd128::int8::pointwise(st, &op.g, x, f, y),
                ConvLoop::Packed => simd128::int8::conv_packed(st, &op.g, x, y),
                ConvLoop::Depthwise => simd128::int8::depthwise(st, &op.g, x, y),
                lp => scalar_conv(lp, &op.p, &op.g, x, f, b, y),
            };
        }
        scalar_conv(op.kernel.lp, &op.p, &op.g, x, f, b, y)
    }
    fn fully_connected(p: &Self::Fc, g: &FcGeom, x: &[i8], w: &[i8], b: Option<&[i32]>, y: &mut [i8]) {
        generic::fully_connected(p, g, x, w, b, y)
    }
    fn average_pool2d(p: &Self::AvgPool, g: &PoolGeom, x: &[i8], y: &mut [i8]) {
        int8::average_pool2d(p, g, x, y)
    }
    fn mean_hw(p: &Self::Mean, shape: [usize; 4], x: &[i8], y: &mut [i8]) {
        generic::quant_mean_hw(p, shape, x, y)
    }
    fn add(p: &Self::Add, arch: Arch, a: &[i8], b: &[i8], y: &mut [i8]) {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        if arch == Arch::Simd128 {
            return simd128::add_rescale(&p.rescale, a, b, y);
        }
        let _ = arch;
        p.rescale.add_all(a, b, y)
    }
    fn softmax(p: &Self::Softmax, depth: usize, x: &[i8], y: &mut [i8]) {
        int8::softmax(p, depth, x, y)
    }
    fn pad(p: &Self::Pad, shape: [usize; 4], x: &[i8], y: &mut [i8]) {
        generic::pad(p, shape, x, y)
    }
}

#[derive(Debug, Clone)]
pub struct I16;

impl Kernels for I16 {
    const NAME: &'static str = "int16";
    type Act = i16;
    type Weight = i8;
    type Bias = i64;
    type Conv = int16::ConvParams;
    type Fc = int16::FullyConnectedParams;
    type AvgPool = int16::AvgPoolParams;
    type Mean = int16::MeanParams;
    type Add = int16::AddParams;
    type Softmax = int16::SoftmaxParams;
    type Pad = int16::PadParams;
    type Stage = Int16Stage;

    fn conv_arch(op: &ConvOp<Self>, target: Arch) -> Arch {
        select::conv_arch(ConvFacts::Int16, op.kernel.lp, &op.g, target)
    }
    fn stage(op: &ConvOp<Self>, filter: &[i8], bias: Option<&[i64]>) -> Option<Int16Stage> {
        Some(Int16Stage::for_conv(&op.p, bias, op.kernel.lp, &op.g, filter))
    }
    fn add_arch(p: &Self::Add, target: Arch) -> Arch {
        select::add_arch(AddFacts::Int16(p), target)
    }
    fn conv(op: &ConvOp<Self>, x: &[i16], f: &[i8], b: Option<&[i64]>, y: &mut [i16]) {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        if let (Arch::Simd128, Some(st)) = (op.kernel.arch, &op.stage) {
            return match op.kernel.lp {
                ConvLoop::Pointwise => simd128::int16::pointwise(st, &op.g, x, f, y),
                ConvLoop::Packed => simd128::int16::conv_packed(st, &op.g, x, y),
                ConvLoop::Depthwise => simd128::int16::depthwise(st, &op.p, &op.g, x, f, y),
                lp => scalar_conv(lp, &op.p, &op.g, x, f, b, y),
            };
        }
        scalar_conv(op.kernel.lp, &op.p, &op.g, x, f, b, y)
    }
    fn fully_connected(p: &Self::Fc, g: &FcGeom, x: &[i16], w: &[i8], b: Option<&[i64]>, y: &mut [i16]) {
        generic::fully_connected(p, g, x, w, b, y)
    }
    fn average_pool2d(p: &Self::AvgPool, g: &PoolGeom, x: &[i16], y: &mut [i16]) {
        int16::average_pool2d(p, g, x, y)
    }
    fn mean_hw(p: &Self::Mean, shape: [usize; 4], x: &[i16], y: &mut [i16]) {
        generic::quant_mean_hw(p, shape, x, y)
    }
    fn add(p: &Self::Add, arch: Arch, a: &[i16], b: &[i16], y: &mut [i16]) {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        if let (Arch::Simd128, int16::AddKind::General(r)) = (arch, &p.kind) {
            return simd128::add_rescale(r, a, b, y);
        }
        let _ = arch;
        int16::add(p, a, b, y)
    }
    fn softmax(p: &Self::Softmax, depth: usize, x: &[i16], y: &mut [i16]) {
        int16::softmax(p, depth, x, y)
    }
    fn pad(p: &Self::Pad, shape: [usize; 4], x: &[i16], y: &mut [i16]) {
        generic::pad(p, shape, x, y)
    }
}
