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

use core::marker::PhantomData;

use super::{Activation, ConvGeom, FcGeom, PadParams, PoolGeom, TensorQuant};
use crate::quant::{
    activation_range_quantized, multiply_by_quantized_multiplier_smaller_than_one_exp, quantize_multiplier,
    quantize_multiplier_smaller_than_one_exp, QuantizedMultiplier,
};

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

/// Input coordinate of output position `o`, filter tap `f`, or `None` when it falls in the padding.
#[inline]
fn tap(o: usize, f: usize, stride: usize, dilation: usize, pad: usize, size: usize) -> Option<usize> {
    (o * stride + f * dilation).checked_sub(pad).filter(|&i| i < size)
}

/// CONV_2D over NHWC, filter `[out_c, k_h, k_w, in_c]`.
pub fn conv2d<S: MacStage>(
    s: &S,
    g: &ConvGeom,
    input: &[S::Act],
    filter: &[S::Weight],
    bias: Option<&[S::Bias]>,
    output: &mut [S::Act],
) {
    debug_assert_eq!(input.len(), g.input_len());
    debug_assert_eq!(filter.len(), g.conv_filter_len());
    debug_assert_eq!(output.len(), g.output_len());
    debug_assert!(bias.is_none_or(|b| b.len() == g.out_c));
    let ConvGeom { in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, .. } = *g;
    for b in 0..g.batch {
        for oy in 0..out_h {
            for ox in 0..out_w {
                let out_base = ((b * out_h + oy) * out_w + ox) * out_c;
                for oc in 0..out_c {
                    let mut acc = s.zero();
                    for fy in 0..k_h {
                        let Some(iy) = tap(oy, fy, g.stride_h, g.dilation_h, g.pad_top, in_h) else {
                            continue;
                        };
                        for fx in 0..k_w {
                            let Some(ix) = tap(ox, fx, g.stride_w, g.dilation_w, g.pad_left, in_w) else {
                                continue;
                            };
                            let xs = &input[((b * in_h + iy) * in_w + ix) * in_c..][..in_c];
                            let ws = &filter[((oc * k_h + fy) * k_w + fx) * in_c..][..in_c];
                            acc = s.dot(acc, xs, ws);
                        }
                    }
                    output[out_base + oc] = s.finish(acc, bias.map(|b| b[oc]), oc);
                }
            }
        }
    }
}

/// DEPTHWISE_CONV_2D over NHWC, filter `[1, k_h, k_w, out_c]`, `out_c = in_c · depth_multiplier`:
/// the channel-blocked loop for `depth_multiplier = 1` (every MobileNet layer; filters up to
/// [`MAX_BLOCKED_TAPS`] taps), else the general one.
pub fn depthwise_conv2d<S: MacStage>(
    s: &S,
    g: &ConvGeom,
    input: &[S::Act],
    filter: &[S::Weight],
    bias: Option<&[S::Bias]>,
    output: &mut [S::Act],
) {
    if is_channel_blocked(g) {
        depthwise_conv2d_channels(s, g, input, filter, bias, output)
    } else {
        depthwise_conv2d_general(s, g, input, filter, bias, output)
    }
}

/// DEPTHWISE_CONV_2D, any depth multiplier, in TFLite's loop order (the scalar reference the blocked
/// path is tested against). Over NHWC, filter `[1, k_h, k_w, out_c]`, `out_c = in_c · depth_multiplier`,
/// output channel `ic · depth_multiplier + m` reading input channel `ic`.
pub fn depthwise_conv2d_general<S: MacStage>(
    s: &S,
    g: &ConvGeom,
    input: &[S::Act],
    filter: &[S::Weight],
    bias: Option<&[S::Bias]>,
    output: &mut [S::Act],
) {
    debug_assert_eq!(input.len(), g.input_len());
    debug_assert_eq!(filter.len(), g.depthwise_filter_len());
    debug_assert_eq!(output.len(), g.output_len());
    debug_assert_eq!(g.out_c, g.in_c * g.depth_multiplier);
    debug_assert!(bias.is_none_or(|b| b.len() == g.out_c));
    let ConvGeom { in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, depth_multiplier, .. } = *g;
    for b in 0..g.batch {
        for oy in 0..out_h {
            for ox in 0..out_w {
                let out_base = ((b * out_h + oy) * out_w + ox) * out_c;
                for ic in 0..in_c {
                    for m in 0..depth_multiplier {
                        let oc = ic * depth_multiplier + m;
                        let mut acc = s.zero();
                        for fy in 0..k_h {
                            let Some(iy) = tap(oy, fy, g.stride_h, g.dilation_h, g.pad_top, in_h) else {
                                continue;
                            };
                            for fx in 0..k_w {
                                let Some(ix) = tap(ox, fx, g.stride_w, g.dilation_w, g.pad_left, in_w) else {
                                    continue;
                                };
                                let x = input[((b * in_h + iy) * in_w + ix) * in_c + ic];
                                let w = filter[(fy * k_w + fx) * out_c + oc];
                                acc = s.mac(acc, x, w);
                            }
                        }
                        output[out_base + oc] = s.finish(acc, bias.map(|b| b[oc]), oc);
                    }
                }
            }
        }
    }
}

/// Channels per block in the vectorised loops: the innermost loops run over this many contiguous
/// channels with a constant trip count, so the compiler keeps the accumulators in registers and
/// vectorises them (wasm `simd128`, AVX2 natively).
pub const LANES: usize = 16;

/// Most filter taps the channel-blocked depthwise path takes (its tap offsets live on the stack);
/// larger filters use [`depthwise_conv2d_general`].
pub const MAX_BLOCKED_TAPS: usize = 64;

/// Whether DEPTHWISE_CONV_2D with geometry `g` runs channel-blocked.
pub fn is_channel_blocked(g: &ConvGeom) -> bool {
    g.depth_multiplier == 1 && g.k_h * g.k_w <= MAX_BLOCKED_TAPS
}

/// DEPTHWISE_CONV_2D with `depth_multiplier = 1`, blocked over channels. Each output still adds its
/// taps in TFLite's order (filter row, filter column), so float results are unchanged; only the loop
/// nest differs: channels innermost, where input and filter are contiguous.
pub fn depthwise_conv2d_channels<S: MacStage>(
    s: &S,
    g: &ConvGeom,
    input: &[S::Act],
    filter: &[S::Weight],
    bias: Option<&[S::Bias]>,
    output: &mut [S::Act],
) {
    depthwise_blocks(
        g,
        output,
        |taps, c0, n, acc: &mut [S::Acc; LANES]| *acc = depthwise_block(s, input, filter, taps, c0, n),
        |acc, oc| s.finish(acc, bias.map(|b| b[oc]), oc),
    )
}

/// The accumulators of one block of [`depthwise_conv2d_channels`]: channels `c0..c0 + n` of one output
/// pixel over its `taps`. SIMD kernels use it for a last, partial block.
#[inline]
pub fn depthwise_block<S: MacStage>(
    s: &S,
    input: &[S::Act],
    filter: &[S::Weight],
    taps: &[(usize, usize)],
    c0: usize,
    n: usize,
) -> [S::Acc; LANES] {
    let mut acc = [s.zero(); LANES];
    for &(xo, wo) in taps {
        let (xs, ws) = (&input[xo + c0..][..n], &filter[wo + c0..][..n]);
        if let (Ok(xs), Ok(ws)) = (<&[_; LANES]>::try_from(xs), <&[_; LANES]>::try_from(ws)) {
            for i in 0..LANES {
                acc[i] = s.mac(acc[i], xs[i], ws[i]);
            }
        } else {
            for i in 0..n {
                acc[i] = s.mac(acc[i], xs[i], ws[i]);
            }
        }
    }
    acc
}

/// One block of [`depthwise_conv2d_channels`] written out: [`depthwise_block`] then the scalar
/// output stage, for channels `c0..c0 + out.len()`. SIMD kernels use it for a last, partial block.
pub fn depthwise_block_into<S: MacStage>(
    s: &S,
    input: &[S::Act],
    filter: &[S::Weight],
    bias: Option<&[S::Bias]>,
    taps: &[(usize, usize)],
    c0: usize,
    out: &mut [S::Act],
) {
    let acc = depthwise_block(s, input, filter, taps, c0, out.len());
    for (i, o) in out.iter_mut().enumerate() {
        *o = s.finish(acc[i], bias.map(|b| b[c0 + i]), c0 + i);
    }
}

/// [`depthwise_walk`] with the output stage split out: `block` fills the accumulators of a block,
/// then `finish(acc, channel)` writes each output.
pub fn depthwise_blocks<A: Copy, Acc: Copy + Default>(
    g: &ConvGeom,
    output: &mut [A],
    mut block: impl FnMut(&[(usize, usize)], usize, usize, &mut [Acc; LANES]),
    finish: impl Fn(Acc, usize) -> A,
) {
    let mut acc = [Acc::default(); LANES];
    depthwise_walk(g, output, |taps, c0, out| {
        block(taps, c0, out.len(), &mut acc);
        for (i, (o, &a)) in out.iter_mut().zip(&acc).enumerate() {
            *o = finish(a, c0 + i);
        }
    })
}

/// The walk of [`depthwise_conv2d_channels`], shared with precision-specific micro-kernels: for each
/// output pixel and each block of up to [`LANES`] channels starting at `c0`, `block` gets the pixel's
/// in-bounds taps, in TFLite's order, as (input offset, filter offset) of channel 0, and writes the
/// block's outputs (`out`, one per channel of the block).
pub fn depthwise_walk<A: Copy>(
    g: &ConvGeom,
    output: &mut [A],
    mut block: impl FnMut(&[(usize, usize)], usize, &mut [A]),
) {
    debug_assert!(is_channel_blocked(g));
    debug_assert_eq!(output.len(), g.output_len());
    let ConvGeom { in_c: c, out_h, out_w, .. } = *g;
    let mut taps = [(0usize, 0usize); MAX_BLOCKED_TAPS];
    let window = Window::new(g);
    for b in 0..g.batch {
        for oy in 0..out_h {
            for ox in 0..out_w {
                let n_taps = window.taps(g, b, oy, ox, &mut taps);
                let out_base = ((b * out_h + oy) * out_w + ox) * c;
                let mut c0 = 0;
                while c0 < c {
                    let n = LANES.min(c - c0);
                    block(&taps[..n_taps], c0, &mut output[out_base + c0..][..n]);
                    c0 += n;
                }
            }
        }
    }
}

/// Whether CONV_2D with geometry `g` runs as [`conv2d_packed`] (filters up to [`MAX_BLOCKED_TAPS`]
/// taps; 1x1 ones take [`pointwise_conv2d`]).
pub fn is_packable(g: &ConvGeom) -> bool {
    g.k_h * g.k_w <= MAX_BLOCKED_TAPS && g.in_c > 0 && g.out_c > 0
}

/// The CONV_2D filter `[out_c, k_h, k_w, in_c]` repacked for [`conv2d_packed`]: blocks of [`LANES`]
/// output channels, each `[k_h · k_w · in_c][LANES]`; the last block padded with `pad`.
pub fn pack_conv<W: Copy>(filter: &[W], out_c: usize, pad: W) -> Vec<W> {
    let k = filter.len() / out_c.max(1);
    let mut packed = vec![pad; out_c.div_ceil(LANES) * k * LANES];
    if k == 0 {
        return packed;
    }
    for (block, rows) in packed.chunks_exact_mut(k * LANES).zip(filter[..out_c * k].chunks(k * LANES)) {
        for (lane, row) in rows.chunks_exact(k).enumerate() {
            for (dst, &w) in block.chunks_exact_mut(LANES).zip(row) {
                dst[lane] = w;
            }
        }
    }
    packed
}

/// CONV_2D on a filter packed by [`pack_conv`]: per output pixel, its in-bounds taps in TFLite's order
/// (filter row, column, then input channels), [`LANES`] output channels at a time, so the innermost
/// loop runs over contiguous packed weights. Same sums in the same order as [`conv2d`].
pub fn conv2d_packed<S: MacStage>(
    s: &S,
    g: &ConvGeom,
    input: &[S::Act],
    packed: &[S::Weight],
    bias: Option<&[S::Bias]>,
    output: &mut [S::Act],
) {
    debug_assert_eq!(input.len(), g.input_len());
    let ConvGeom { in_c, out_c, .. } = *g;
    let k = g.k_h * g.k_w * in_c;
    debug_assert_eq!(packed.len(), out_c.div_ceil(LANES) * k * LANES);
    packed_walk(g, output, |taps, out| {
        for (block, ws) in packed.chunks_exact(k * LANES).enumerate() {
            let mut acc = [s.zero(); LANES];
            for &(xo, wo) in taps {
                let xs = &input[xo..][..in_c];
                let w = &ws[wo * LANES..][..in_c * LANES];
                for (&x, w) in xs.iter().zip(w.chunks_exact(LANES)) {
                    let w: &[S::Weight; LANES] = w.try_into().expect("chunks_exact(LANES)");
                    for i in 0..LANES {
                        acc[i] = s.mac(acc[i], x, w[i]);
                    }
                }
            }
            let oc0 = block * LANES;
            for (i, &a) in acc.iter().enumerate().take(LANES.min(out_c - oc0)) {
                out[oc0 + i] = s.finish(a, bias.map(|b| b[oc0 + i]), oc0 + i);
            }
        }
    })
}

/// The walk of [`conv2d_packed`], shared with precision-specific micro-kernels: for each output pixel,
/// `pixel` gets its in-bounds taps (see [`gather_taps`]) and its `out_c` outputs.
pub fn packed_walk<A>(g: &ConvGeom, output: &mut [A], mut pixel: impl FnMut(&[(usize, usize)], &mut [A])) {
    debug_assert!(is_packable(g));
    debug_assert_eq!(output.len(), g.output_len());
    let ConvGeom { out_h, out_w, out_c, .. } = *g;
    let mut taps = [(0usize, 0usize); MAX_BLOCKED_TAPS];
    let window = Window::new(g);
    for b in 0..g.batch {
        for oy in 0..out_h {
            for ox in 0..out_w {
                let n_taps = window.taps(g, b, oy, ox, &mut taps);
                let out_base = ((b * out_h + oy) * out_w + ox) * out_c;
                pixel(&taps[..n_taps], &mut output[out_base..][..out_c]);
            }
        }
    }
}

/// The taps of a filter window that lies wholly inside the input, relative to its first one: most
/// output pixels are such, and they then need no bounds checks or index arithmetic per tap.
struct Window {
    relative: [(usize, usize); MAX_BLOCKED_TAPS],
    n: usize,
}

impl Window {
    fn new(g: &ConvGeom) -> Self {
        let mut relative = [(0, 0); MAX_BLOCKED_TAPS];
        let mut n = 0;
        for fy in 0..g.k_h {
            for fx in 0..g.k_w {
                relative[n] = ((fy * g.dilation_h * g.in_w + fx * g.dilation_w) * g.in_c, (fy * g.k_w + fx) * g.in_c);
                n += 1;
            }
        }
        Window { relative, n }
    }

    /// [`gather_taps`], the same taps in the same order.
    #[inline(always)]
    fn taps(
        &self,
        g: &ConvGeom,
        b: usize,
        oy: usize,
        ox: usize,
        taps: &mut [(usize, usize); MAX_BLOCKED_TAPS],
    ) -> usize {
        let inside = |o: usize, stride: usize, pad: usize, k: usize, dilation: usize, size: usize| {
            (o * stride).checked_sub(pad).filter(|&i| i + k.saturating_sub(1) * dilation < size)
        };
        match (
            inside(oy, g.stride_h, g.pad_top, g.k_h, g.dilation_h, g.in_h),
            inside(ox, g.stride_w, g.pad_left, g.k_w, g.dilation_w, g.in_w),
        ) {
            (Some(iy), Some(ix)) => {
                let base = ((b * g.in_h + iy) * g.in_w + ix) * g.in_c;
                for (t, &(x, w)) in taps.iter_mut().zip(&self.relative[..self.n]) {
                    *t = (base + x, w);
                }
                self.n
            }
            _ => gather_taps(g, b, oy, ox, taps),
        }
    }
}

/// The in-bounds taps of output pixel (`b`, `oy`, `ox`) in TFLite's order (filter row, then column),
/// each as (offset of its input pixel, offset of its filter position), both in elements of channel 0;
/// returns how many were written. Needs `k_h · k_w <= MAX_BLOCKED_TAPS`.
fn gather_taps(g: &ConvGeom, b: usize, oy: usize, ox: usize, taps: &mut [(usize, usize); MAX_BLOCKED_TAPS]) -> usize {
    let ConvGeom { in_h, in_w, in_c, k_h, k_w, .. } = *g;
    let mut n = 0;
    for fy in 0..k_h {
        let Some(iy) = tap(oy, fy, g.stride_h, g.dilation_h, g.pad_top, in_h) else {
            continue;
        };
        for fx in 0..k_w {
            let Some(ix) = tap(ox, fx, g.stride_w, g.dilation_w, g.pad_left, in_w) else {
                continue;
            };
            taps[n] = (((b * in_h + iy) * in_w + ix) * in_c, (fy * k_w + fx) * in_c);
            n += 1;
        }
    }
    n
}

/// Output pixels per block of [`pointwise_conv2d`]: each weight loaded is used for this many pixels.
pub const PIXELS: usize = 4;

/// Whether CONV_2D with geometry `g` can run as [`pointwise_conv2d`]: a 1x1 filter with no padding
/// (SAME and VALID both give none for 1x1), any stride.
pub fn is_pointwise(g: &ConvGeom) -> bool {
    g.k_h == 1 && g.k_w == 1 && g.pad_top == 0 && g.pad_left == 0 && g.in_c > 0 && g.out_c > 0
}

/// The 1x1 CONV_2D filter `[out_c, 1, 1, in_c]` repacked for [`pointwise_conv2d`]: blocks of
/// [`LANES`] output channels; inside a block, input channels in pairs, each pair stored as
/// `[LANES][2]` (channel `2j` then `2j + 1` for every lane), then a last unpaired channel as `[LANES]`
/// when `in_c` is odd. Pairs are what a widening dot product (`i32x4.dot_i16x8_s`) consumes. The last
/// block is padded with `pad` (its outputs are computed and dropped).
pub fn pack_pointwise<W: Copy>(filter: &[W], in_c: usize, out_c: usize, pad: W) -> Vec<W> {
    // Row by row (a load spends most of its time here): each filter row is read in order and
    // scattered over its block, which stays in cache; no per-weight index arithmetic.
    let mut packed = vec![pad; out_c.div_ceil(LANES) * in_c * LANES];
    if in_c == 0 {
        return packed;
    }
    let pairs = in_c / 2;
    for (block, rows) in packed.chunks_exact_mut(in_c * LANES).zip(filter[..out_c * in_c].chunks(in_c * LANES)) {
        let (paired, last) = block.split_at_mut(pairs * 2 * LANES);
        for (lane, row) in rows.chunks_exact(in_c).enumerate() {
            for (dst, src) in paired.chunks_exact_mut(2 * LANES).zip(row.chunks_exact(2)) {
                dst[lane * 2] = src[0];
                dst[lane * 2 + 1] = src[1];
            }
            if in_c % 2 == 1 {
                last[lane] = row[in_c - 1];
            }
        }
    }
    packed
}

/// Where [`pack_pointwise`] puts weight (`oc`, `ic`).
pub fn packed_index(in_c: usize, oc: usize, ic: usize) -> usize {
    let (block, lane) = (oc / LANES, oc % LANES);
    let within = if ic < in_c & !1 { (ic & !1) * LANES + lane * 2 + (ic & 1) } else { ic * LANES + lane };
    block * in_c * LANES + within
}

/// CONV_2D with a 1x1 filter packed by [`pack_pointwise`]: a register-blocked matrix product,
/// [`PIXELS`] output pixels by [`LANES`] output channels at a time. Every output sums its input
/// channels in ascending order, as TFLite's reference does, so float results are bit-identical to
/// [`conv2d`]'s; integer sums are exact in any order.
pub fn pointwise_conv2d<S: MacStage>(
    s: &S,
    g: &ConvGeom,
    input: &[S::Act],
    packed: &[S::Weight],
    bias: Option<&[S::Bias]>,
    output: &mut [S::Act],
) {
    pointwise_blocks(
        g,
        input,
        packed.len(),
        output,
        |rows, block, acc: &mut [[S::Acc; LANES]; PIXELS]| {
            let ws = &packed[block * g.in_c * LANES..][..g.in_c * LANES];
            *acc = [[s.zero(); LANES]; PIXELS];
            let pairs = g.in_c / 2;
            for (j, w) in ws[..pairs * 2 * LANES].chunks_exact(2 * LANES).enumerate() {
                let w: &[S::Weight; 2 * LANES] = w.try_into().expect("chunks_exact(2 * LANES)");
                for (acc, row) in acc.iter_mut().zip(rows) {
                    let (x0, x1) = (row[2 * j], row[2 * j + 1]);
                    for i in 0..LANES {
                        acc[i] = s.mac(s.mac(acc[i], x0, w[2 * i]), x1, w[2 * i + 1]);
                    }
                }
            }
            if g.in_c % 2 == 1 {
                let w: &[S::Weight; LANES] = ws[pairs * 2 * LANES..].try_into().expect("one unpaired channel");
                for (acc, row) in acc.iter_mut().zip(rows) {
                    let x = row[g.in_c - 1];
                    for i in 0..LANES {
                        acc[i] = s.mac(acc[i], x, w[i]);
                    }
                }
            }
        },
        |acc, oc| s.finish(acc, bias.map(|b| b[oc]), oc),
    );
}

/// [`pointwise_groups`] with the output stage split out: for each block of [`LANES`] output channels,
/// `tile` fills the accumulators of the group's pixels, then `finish(acc, out_channel)` writes each
/// real output.
pub fn pointwise_blocks<A: Copy, Acc: Copy + Default>(
    g: &ConvGeom,
    input: &[A],
    packed_len: usize,
    output: &mut [A],
    mut tile: impl FnMut(&[&[A]; PIXELS], usize, &mut [[Acc; LANES]; PIXELS]),
    finish: impl Fn(Acc, usize) -> A,
) {
    debug_assert_eq!(packed_len, g.out_c.div_ceil(LANES) * g.in_c * LANES);
    let out_c = g.out_c;
    let mut acc = [[Acc::default(); LANES]; PIXELS];
    pointwise_groups(g, input, output, |rows, out| {
        for block in 0..out_c.div_ceil(LANES) {
            tile(rows, block, &mut acc);
            let oc0 = block * LANES;
            let lanes = LANES.min(out_c - oc0);
            for (acc, out) in acc.iter().zip(out.chunks_exact_mut(out_c)) {
                for (i, o) in out[oc0..][..lanes].iter_mut().enumerate() {
                    *o = finish(acc[i], oc0 + i);
                }
            }
        }
    })
}

/// The walk of [`pointwise_conv2d`], shared with precision-specific micro-kernels: for each group of up
/// to [`PIXELS`] output pixels, `group` gets the input rows they read (past the group's last pixel the
/// last row repeats; its results are to be dropped) and the group's outputs (`np · out_c` values,
/// pixel-major).
pub fn pointwise_groups<A: Copy>(
    g: &ConvGeom,
    input: &[A],
    output: &mut [A],
    mut group: impl FnMut(&[&[A]; PIXELS], &mut [A]),
) {
    debug_assert!(is_pointwise(g));
    debug_assert_eq!(input.len(), g.input_len());
    debug_assert_eq!(output.len(), g.output_len());
    let ConvGeom { in_h, in_w, in_c, out_h, out_w, out_c, .. } = *g;
    let pixels = out_h * out_w;
    for b in 0..g.batch {
        let mut p0 = 0;
        while p0 < pixels {
            let np = PIXELS.min(pixels - p0);
            let rows: [&[A]; PIXELS] = core::array::from_fn(|i| {
                let p = p0 + i.min(np - 1);
                let (iy, ix) = ((p / out_w) * g.stride_h, (p % out_w) * g.stride_w);
                &input[((b * in_h + iy) * in_w + ix) * in_c..][..in_c]
            });
            group(&rows, &mut output[(b * pixels + p0) * out_c..][..np * out_c]);
            p0 += np;
        }
    }
}

/// FULLY_CONNECTED: `output[b, o] = stage(Σ_d input[b, d] · weights[o, d], bias[o])`.
pub fn fully_connected<S: MacStage>(
    s: &S,
    g: &FcGeom,
    input: &[S::Act],
    weights: &[S::Weight],
    bias: Option<&[S::Bias]>,
    output: &mut [S::Act],
) {
    debug_assert_eq!(input.len(), g.batch * g.in_depth);
    debug_assert_eq!(weights.len(), g.out_depth * g.in_depth);
    debug_assert_eq!(output.len(), g.batch * g.out_depth);
    debug_assert!(bias.is_none_or(|b| b.len() == g.out_depth));
    let FcGeom { in_depth, out_depth, .. } = *g;
    for b in 0..g.batch {
        let xs = &input[b * in_depth..][..in_depth];
        for o in 0..out_depth {
            let ws = &weights[o * in_depth..][..in_depth];
            let acc = s.dot(s.zero(), xs, ws);
            output[b * out_depth + o] = s.finish(acc, bias.map(|b| b[o]), o);
        }
    }
}

/// AVERAGE_POOL_2D: for every output element, folds the in-bounds window taps with `add` (row by row,
/// as TFLite does) and hands the sum and the number of taps to `average`.
pub fn average_pool2d<T: Copy, S: Copy>(
    g: &PoolGeom,
    input: &[T],
    output: &mut [T],
    zero: S,
    add: impl Fn(S, T) -> S,
    average: impl Fn(S, i32) -> T,
) {
    debug_assert_eq!(input.len(), g.input_len());
    debug_assert_eq!(output.len(), g.output_len());
    let PoolGeom { in_h, in_w, channels, out_h, out_w, .. } = *g;
    // The clamped window of TFLite: [start, end) of filter taps that land inside the input.
    let window = |o: usize, stride: usize, pad: usize, filter: usize, size: usize| {
        let origin = (o * stride) as isize - pad as isize;
        let start = (-origin).max(0) as usize;
        let end = (size as isize - origin).clamp(0, filter as isize) as usize;
        (origin, start, end.max(start))
    };
    for b in 0..g.batch {
        for oy in 0..out_h {
            let (y_origin, y_start, y_end) = window(oy, g.stride_h, g.pad_top, g.filter_h, in_h);
            for ox in 0..out_w {
                let (x_origin, x_start, x_end) = window(ox, g.stride_w, g.pad_left, g.filter_w, in_w);
                let count = ((y_end - y_start) * (x_end - x_start)) as i32;
                let out_base = ((b * out_h + oy) * out_w + ox) * channels;
                for c in 0..channels {
                    let mut sum = zero;
                    for fy in y_start..y_end {
                        let iy = (y_origin + fy as isize) as usize;
                        for fx in x_start..x_end {
                            let ix = (x_origin + fx as isize) as usize;
                            sum = add(sum, input[((b * in_h + iy) * in_w + ix) * channels + c]);
                        }
                    }
                    // TFLite fails the op on an empty window; geometry validation rules it out.
                    output[out_base + c] = average(sum, count.max(1));
                }
            }
        }
    }
}

/// TFLite's integer average of `n` taps summing to `sum` (`reference_integer_ops::AveragePool`, int8 and
/// int16): `(sum ± n/2) / n`, halves away from zero.
#[inline]
pub fn rounded_average(sum: i32, n: i32) -> i32 {
    if sum > 0 {
        (sum + n / 2) / n
    } else {
        (sum - n / 2) / n
    }
}

/// Quantized AVERAGE_POOL_2D (input and output share quantization, as TFLite requires): the int32 window
/// sum (wrapping, as C++'s int32 would), `average(sum, n)` — the precision's rounding —, the activation
/// clamp, the storage type.
pub fn quant_average_pool2d<T: QInt>(
    g: &PoolGeom,
    input: &[T],
    output: &mut [T],
    act_min: i32,
    act_max: i32,
    average: impl Fn(i32, i32) -> i32,
) {
    average_pool2d(
        g,
        input,
        output,
        0i32,
        |s, x| s.wrapping_add(x.to_i32()),
        |s, n| T::from_i32(average(s, n).clamp(act_min, act_max)),
    )
}

/// MEAN over H and W of an NHWC tensor of shape `[batch, h, w, c]` into `[batch, c]` (keep_dims is a
/// shape matter). Each output's sum runs over the input in memory order (h, then w), as TFLite's
/// `ReduceSumImpl` does; `finish` gets the sum and `h · w`.
pub fn mean_hw<T: Copy, S: Copy>(
    shape: [usize; 4],
    input: &[T],
    output: &mut [T],
    zero: S,
    add: impl Fn(S, T) -> S,
    finish: impl Fn(S) -> T,
) {
    let [batch, h, w, c] = shape;
    debug_assert_eq!(input.len(), batch * h * w * c);
    debug_assert_eq!(output.len(), batch * c);
    for b in 0..batch {
        for ch in 0..c {
            let mut sum = zero;
            for y in 0..h {
                for x in 0..w {
                    sum = add(sum, input[((b * h + y) * w + x) * c + ch]);
                }
            }
            output[b * c + ch] = finish(sum);
        }
    }
}

/// PAD / PADV2 with a constant over a 4-D tensor (`reference_ops::Pad` semantics: every output element
/// outside the copied input block is `p.value`).
pub fn pad<T: Copy>(p: &PadParams<T>, in_shape: [usize; 4], input: &[T], output: &mut [T]) {
    let out_shape = p.output_shape(in_shape);
    debug_assert_eq!(input.len(), in_shape.iter().product::<usize>());
    debug_assert_eq!(output.len(), out_shape.iter().product::<usize>());
    let [_, o1, o2, o3] = out_shape;
    let [_, i1, i2, i3] = in_shape;
    let [b0, b1, b2, b3] = p.before;
    let inside = |o: usize, before: usize, size: usize| o.checked_sub(before).filter(|&i| i < size);
    for n in 0..out_shape[0] {
        for y in 0..o1 {
            for x in 0..o2 {
                let row = &mut output[((n * o1 + y) * o2 + x) * o3..][..o3];
                let src = inside(n, b0, in_shape[0])
                    .zip(inside(y, b1, i1))
                    .zip(inside(x, b2, i2))
                    .map(|((n, y), x)| ((n * i1 + y) * i2 + x) * i3);
                match src {
                    None => row.fill(p.value),
                    Some(start) => {
                        row[..b3].fill(p.value);
                        row[b3..b3 + i3].copy_from_slice(&input[start..][..i3]);
                        row[b3 + i3..].fill(p.value);
                    }
                }
            }
        }
    }
}

/// An integer storage type of quantized tensors.
pub trait QInt: Copy {
    const MIN: i32;
    const MAX: i32;
    fn to_i32(self) -> i32;
    /// `static_cast` of a value already clamped to `[MIN, MAX]` (out-of-range values are clamped).
    fn from_i32(v: i32) -> Self;
}

impl QInt for i8 {
    const MIN: i32 = i8::MIN as i32;
    const MAX: i32 = i8::MAX as i32;
    #[inline]
    fn to_i32(self) -> i32 {
        i32::from(self)
    }
    #[inline]
    fn from_i32(v: i32) -> Self {
        v.clamp(<Self as QInt>::MIN, <Self as QInt>::MAX) as i8
    }
}

impl QInt for i16 {
    const MIN: i32 = i16::MIN as i32;
    const MAX: i32 = i16::MAX as i32;
    #[inline]
    fn to_i32(self) -> i32 {
        i32::from(self)
    }
    #[inline]
    fn from_i32(v: i32) -> Self {
        v.clamp(<Self as QInt>::MIN, <Self as QInt>::MAX) as i16
    }
}

/// QUANTIZE float → int (`reference_ops::AffineQuantize`), the same for every integer storage type:
/// the output tensor's scale and zero point as stored in the file.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QuantizeParams {
    pub scale: f32,
    pub zero_point: i32,
}

impl QuantizeParams {
    pub fn prepare(output: TensorQuant) -> Self {
        Self { scale: output.scale, zero_point: output.zero_point }
    }
}

/// QUANTIZE float → int (`reference_ops::AffineQuantize`): `round(x / scale)` in float (half away from
/// zero), plus the zero point and the clamp in double. NaN becomes 0 (C++ leaves it undefined).
pub fn quantize<O: QInt>(p: &QuantizeParams, input: &[f32], output: &mut [O]) {
    debug_assert_eq!(input.len(), output.len());
    for (o, &x) in output.iter_mut().zip(input) {
        let unclamped = f64::from((x / p.scale).round()) + f64::from(p.zero_point);
        let clamped = unclamped.max(f64::from(O::MIN)).min(f64::from(O::MAX));
        *o = O::from_i32(clamped as i32);
    }
}

/// DEQUANTIZE int → float (`reference_ops::Dequantize`), the same for every integer storage type: the
/// input tensor's scale and zero point as stored in the file.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DequantizeParams {
    pub scale: f32,
    pub zero_point: i32,
}

impl DequantizeParams {
    pub fn prepare(input: TensorQuant) -> Self {
        Self { scale: input.scale, zero_point: input.zero_point }
    }
}

/// DEQUANTIZE int → float (`reference_ops::Dequantize`): `(float)(scale · (q − zero_point))`, the
/// product in double.
pub fn dequantize<I: QInt>(p: &DequantizeParams, input: &[I], output: &mut [f32]) {
    debug_assert_eq!(input.len(), output.len());
    for (o, &q) in output.iter_mut().zip(input) {
        *o = (f64::from(p.scale) * f64::from(q.to_i32() - p.zero_point)) as f32;
    }
}

/// QUANTIZE int → int (`reference_ops::Requantize`), the same for every pair of integer storage types:
/// `QuantizeMultiplier((double)s_in / (double)s_out)` and both zero points.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RequantizeParams {
    pub input_zero_point: i32,
    pub output_zero_point: i32,
    pub multiplier: QuantizedMultiplier,
}

impl RequantizeParams {
    pub fn prepare(input: TensorQuant, output: TensorQuant) -> Self {
        Self {
            input_zero_point: input.zero_point,
            output_zero_point: output.zero_point,
            multiplier: QuantizedMultiplier::new(f64::from(input.scale) / f64::from(output.scale)),
        }
    }
}

/// QUANTIZE int → int (`reference_ops::Requantize`): `MBQM(q − zp_in) + zp_out`, clamped. (TFLite's
/// int8↔uint8 "xor 0x80" fast path is the same function.)
pub fn requantize<I: QInt, O: QInt>(p: &RequantizeParams, input: &[I], output: &mut [O]) {
    debug_assert_eq!(input.len(), output.len());
    for (o, &q) in output.iter_mut().zip(input) {
        let v = p.multiplier.apply(q.to_i32().wrapping_sub(p.input_zero_point)).wrapping_add(p.output_zero_point);
        *o = O::from_i32(v);
    }
}

/// PAD / PADV2 of a quantized tensor: the pad value is the output zero point (TFLite's default for
/// quantized tensors), cast to the storage type.
impl<T: QInt> PadParams<T> {
    pub fn prepare(before: [usize; 4], after: [usize; 4], output_zero_point: i32) -> Self {
        Self { before, after, value: T::from_i32(output_zero_point) }
    }
}

/// The general quantized ADD of TFLite (`AddElementwise`, shared by int8 with `left_shift = 20` and by
/// the int16 general-scale path with `left_shift = 15`): both inputs are shifted left, rescaled to twice
/// the larger input scale, summed, and rescaled to the output.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AddRescale {
    pub left_shift: i32,
    pub input1_offset: i32,
    pub input1_multiplier: QuantizedMultiplier,
    pub input2_offset: i32,
    pub input2_multiplier: QuantizedMultiplier,
    pub output_offset: i32,
    pub output_multiplier: QuantizedMultiplier,
    pub act_min: i32,
    pub act_max: i32,
}

impl AddRescale {
    /// ADD's `Prepare` for the general path (`add.cc`): `twice_max_input_scale = 2 · max(s1, s2)` (the
    /// max and the doubling in float), input multipliers `s_i / twice_max`, output multiplier
    /// `twice_max / (2^left_shift · s_out)` (that product in float), all through
    /// `QuantizeMultiplierSmallerThanOneExp`.
    pub fn prepare(
        left_shift: i32,
        input1: TensorQuant,
        input2: TensorQuant,
        output: TensorQuant,
        activation: Activation,
        qmin: i32,
        qmax: i32,
    ) -> crate::Result<Self> {
        let twice_max_input_scale = f64::from(2.0 * input1.scale.max(input2.scale));
        let real_input1 = f64::from(input1.scale) / twice_max_input_scale;
        let real_input2 = f64::from(input2.scale) / twice_max_input_scale;
        let real_output = twice_max_input_scale / f64::from((1i32 << left_shift) as f32 * output.scale);
        // TFLite's `TFLITE_CHECK_LT(double_multiplier, 1.)` aborts on these (found by fuzzing: an
        // output scale 2^left_shift times finer than the inputs'); refuse the model instead.
        let checked = |real: f64, what: &str| {
            if real > 0.0 && real < 1.0 {
                Ok(quantize_multiplier_smaller_than_one_exp(real))
            } else {
                Err(crate::Error::UnsupportedModel(format!(
                    "ADD {what} multiplier {real} (scales {} + {} -> {}) is outside (0, 1), which TFLite's Prepare requires",
                    input1.scale, input2.scale, output.scale
                )))
            }
        };
        let (act_min, act_max) = activation_range_quantized(activation, output.scale, output.zero_point, qmin, qmax);
        Ok(Self {
            left_shift,
            input1_offset: -input1.zero_point,
            input1_multiplier: checked(real_input1, "input 1")?,
            input2_offset: -input2.zero_point,
            input2_multiplier: checked(real_input2, "input 2")?,
            output_offset: output.zero_point,
            output_multiplier: checked(real_output, "output")?,
            act_min,
            act_max,
        })
    }

    /// One element: both inputs as stored (`i32` from `i8`/`i16`), clamped result.
    #[inline]
    pub fn add(&self, x1: i32, x2: i32) -> i32 {
        let scale = |x: i32, offset: i32, m: QuantizedMultiplier| {
            let shifted = (offset + x).wrapping_mul(1 << self.left_shift);
            multiply_by_quantized_multiplier_smaller_than_one_exp(shifted, m.multiplier, m.shift)
        };
        let raw_sum = scale(x1, self.input1_offset, self.input1_multiplier).wrapping_add(scale(
            x2,
            self.input2_offset,
            self.input2_multiplier,
        ));
        let raw_output = multiply_by_quantized_multiplier_smaller_than_one_exp(
            raw_sum,
            self.output_multiplier.multiplier,
            self.output_multiplier.shift,
        )
        .wrapping_add(self.output_offset);
        raw_output.clamp(self.act_min, self.act_max)
    }

    /// [`Self::add`] over two same-shape tensors of storage type `T`.
    pub fn add_all<T: QInt>(&self, input1: &[T], input2: &[T], output: &mut [T]) {
        debug_assert!(input1.len() == output.len() && input2.len() == output.len());
        for ((o, &a), &b) in output.iter_mut().zip(input1).zip(input2) {
            *o = T::from_i32(self.add(a.to_i32(), b.to_i32()));
        }
    }
}

/// The value for channel `ch` of a per-channel list, or the single per-tensor value.
#[inline]
pub fn per_channel<T: Copy>(values: &[T], ch: usize) -> T {
    values[if values.len() == 1 { 0 } else { ch }]
}

/// FULLY_CONNECTED's requantization of the accumulator (after the bias), one entry per output channel
/// or a single per-tensor one.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum FcRequant {
    /// What TFLite ≥ 2.20 / LiteRT (ai-edge-litert 2.x) does in `kReference` (`reference_integer_ops::
    /// FullyConnected[PerChannel]` overloads taking float scales, "requant in float"):
    /// `(int32)round((double)acc · (double)s_in · (double)s_w / (double)s_out)`, halves away from zero.
    /// Holds that effective scale per channel.
    Float(Vec<f64>),
    /// Older TFLite: `MultiplyByQuantizedMultiplier` with multipliers from `Prepare` (per-tensor through
    /// `GetQuantizedConvolutionMultipler`, i.e. `(double)(s_in · s_w)` with the product in **float**;
    /// per-channel with the product in double).
    FixedPoint(Vec<QuantizedMultiplier>),
}

impl FcRequant {
    /// The float-requant scales: `(double)s_in · (double)s_w / (double)s_out` per filter scale.
    pub fn float(input_scale: f32, filter_scales: &[f32], output_scale: f32) -> Self {
        Self::Float(
            filter_scales.iter().map(|&w| f64::from(input_scale) * f64::from(w) / f64::from(output_scale)).collect(),
        )
    }

    /// The fixed-point multipliers of TFLite < 2.20's `Prepare`.
    pub fn fixed_point(input_scale: f32, filter_scales: &[f32], output_scale: f32) -> Self {
        let multipliers = if let [w] = filter_scales {
            vec![quantize_multiplier(f64::from(input_scale * w) / f64::from(output_scale))]
        } else {
            filter_scales
                .iter()
                .map(|&w| quantize_multiplier(f64::from(input_scale) * f64::from(w) / f64::from(output_scale)))
                .collect()
        };
        Self::FixedPoint(multipliers)
    }

    /// Rescale a 32-bit accumulator (int8 kernels).
    #[inline]
    pub fn apply_i32(&self, acc: i32, ch: usize) -> i32 {
        match self {
            Self::Float(scales) => (f64::from(acc) * per_channel(scales, ch)).round() as i32,
            Self::FixedPoint(ms) => per_channel(ms, ch).apply(acc),
        }
    }

    /// Rescale a 64-bit accumulator (16x8 kernels with int64 bias).
    #[inline]
    pub fn apply_i64(&self, acc: i64, ch: usize) -> i32 {
        match self {
            Self::Float(scales) => (acc as f64 * per_channel(scales, ch)).round() as i32,
            Self::FixedPoint(ms) => per_channel(ms, ch).apply_i64(acc),
        }
    }
}

/// FULLY_CONNECTED's quantized params, the same fields for int8 and 16x8: `−zp_in`, `−zp_w`, `zp_out`,
/// the [`FcRequant`] and the activation range over the storage type `T`. Each precision implements
/// [`MacStage`] (its accumulator and output stage) and its `prepare` on its own `QuantFcParams<T>`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QuantFcParams<T> {
    pub input_offset: i32,
    pub filter_offset: i32,
    pub output_offset: i32,
    pub requant: FcRequant,
    pub act_min: i32,
    pub act_max: i32,
    storage: PhantomData<T>,
}

impl<T: QInt> QuantFcParams<T> {
    /// The offsets from the zero points, the activation range from `CalculateActivationRangeQuantized`
    /// over `T`'s range, and the given requantization.
    pub fn with_requant(
        input: TensorQuant,
        filter_zero_point: i32,
        output: TensorQuant,
        activation: Activation,
        requant: FcRequant,
    ) -> Self {
        let (act_min, act_max) =
            activation_range_quantized(activation, output.scale, output.zero_point, T::MIN, T::MAX);
        Self {
            input_offset: -input.zero_point,
            filter_offset: -filter_zero_point,
            output_offset: output.zero_point,
            requant,
            act_min,
            act_max,
            storage: PhantomData,
        }
    }
}

/// `PopulateConvolutionQuantizationParams`' per-channel multipliers (int8 and 16x8 CONV_2D /
/// DEPTHWISE_CONV_2D): one per filter scale from `(double)s_in · (double)s_w / (double)s_out` (a single
/// filter scale is the per-tensor case).
pub fn conv_multipliers(input: TensorQuant, filter_scales: &[f32], output: TensorQuant) -> Vec<QuantizedMultiplier> {
    filter_scales
        .iter()
        .map(|&w| QuantizedMultiplier::new(f64::from(input.scale) * f64::from(w) / f64::from(output.scale)))
        .collect()
}

/// The multiplier MEAN uses after `Prepare`'s `QuantizeMultiplier(s_in / s_out)`: TFLite's
/// `QuantizedMeanOrSum` folds `1 / num_elements` into it at eval time — `shift = floor(log2 n)` capped
/// at 32 and at `31 + shift`, `multiplier = (multiplier << shift) / n` (integer division), shift reduced.
pub fn mean_multiplier(m: QuantizedMultiplier, num_elements: usize) -> QuantizedMultiplier {
    let n = num_elements as i64;
    if n <= 0 {
        return m;
    }
    let shift = (63 - (n as u64).leading_zeros() as i32).min(32).min(31 + m.shift).max(0);
    QuantizedMultiplier { multiplier: ((i64::from(m.multiplier) << shift) / n) as i32, shift: m.shift - shift }
}

/// Quantized MEAN's output stage (`QuantizedMeanOrSum`, `compute_sum = false`): the int32 sum minus
/// `zp_in · n` (computed in 64 bits, truncated to 32), rescaled with the 32-bit
/// `MultiplyByQuantizedMultiplier`, plus `zp_out`, clamped by the caller's storage type.
#[inline]
pub fn mean_output(
    sum: i32,
    num_elements: usize,
    input_zero_point: i32,
    m: QuantizedMultiplier,
    output_zero_point: i32,
) -> i32 {
    let shifted_sum = (i64::from(sum) - i64::from(input_zero_point) * num_elements as i64) as i32;
    m.apply(shifted_sum).wrapping_add(output_zero_point)
}

/// Quantized MEAN over H and W, the same for every integer storage type (`reduce.cc`'s `kReference`
/// path, `EvalQuantizedMean` → `reference_ops::QuantizedMeanOrSum`): the multiplier
/// `QuantizeMultiplier(s_in / s_out)` is prepared here and `1/(h·w)` is folded into it at run time
/// ([`mean_multiplier`]). This path has no special case for equal input/output quantization.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QuantMeanParams {
    pub input_zero_point: i32,
    pub output_zero_point: i32,
    pub multiplier: QuantizedMultiplier,
}

impl QuantMeanParams {
    pub fn prepare(input: TensorQuant, output: TensorQuant) -> Self {
        Self {
            input_zero_point: input.zero_point,
            output_zero_point: output.zero_point,
            multiplier: QuantizedMultiplier::new(f64::from(input.scale) / f64::from(output.scale)),
        }
    }
}

/// Quantized MEAN over H and W: int32 sum (wrapping, as C++'s int32 would), then [`mean_output`] and
/// the storage type's clamp. `shape` is the NHWC input shape; output is `[batch, c]`.
pub fn quant_mean_hw<T: QInt>(p: &QuantMeanParams, shape: [usize; 4], input: &[T], output: &mut [T]) {
    let n = shape[1] * shape[2];
    let m = mean_multiplier(p.multiplier, n);
    mean_hw(
        shape,
        input,
        output,
        0i32,
        |s, x| s.wrapping_add(x.to_i32()),
        |s| T::from_i32(mean_output(s, n, p.input_zero_point, m, p.output_zero_point)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_skip_padding_and_the_far_edge() {
        // Output 0 with pad 1: tap 0 is padding, tap 1 is input 0.
        assert_eq!(tap(0, 0, 1, 1, 1, 4), None);
        assert_eq!(tap(0, 1, 1, 1, 1, 4), Some(0));
        // Stride 2, dilation 2: output 1, tap 2 → 2 + 4 − 1 = 5, beyond a 5-wide input.
        assert_eq!(tap(1, 2, 2, 2, 1, 5), None);
        assert_eq!(tap(1, 1, 2, 2, 1, 5), Some(3));
    }

    #[test]
    fn mean_multiplier_folds_the_element_count() {
        // s_in / s_out = 1 → (2^30, 1); n = 49: shift = floor(log2 49) = 5, multiplier = 2^35 / 49.
        let m = mean_multiplier(QuantizedMultiplier { multiplier: 1 << 30, shift: 1 }, 49);
        assert_eq!(m, QuantizedMultiplier { multiplier: ((1i64 << 35) / 49) as i32, shift: -4 });
        // A sum of 49 · 100 then means 100.
        assert_eq!(m.apply(4900), 100);
        // The shift is capped at 31 + shift so the result stays a valid multiplier.
        let m = mean_multiplier(QuantizedMultiplier { multiplier: 1 << 30, shift: -30 }, 1 << 10);
        assert_eq!(m.shift, -31);
    }

    #[test]
    fn fc_fixed_point_per_tensor_multiplies_scales_in_float() {
        let (s_in, s_w, s_out) = (0.1f32, 0.3f32, 0.7f32);
        let FcRequant::FixedPoint(ms) = FcRequant::fixed_point(s_in, &[s_w], s_out) else { unreachable!() };
        assert_eq!(ms, vec![quantize_multiplier(f64::from(s_in * s_w) / f64::from(s_out))]);
        let FcRequant::FixedPoint(ms) = FcRequant::fixed_point(s_in, &[s_w, s_w], s_out) else { unreachable!() };
        assert_eq!(ms[1], quantize_multiplier(f64::from(s_in) * f64::from(s_w) / f64::from(s_out)));
        // Float requant rounds halves away from zero: 5 · 0.5 = 2.5 → 3, −2.5 → −3.
        let r = FcRequant::Float(vec![0.5]);
        assert_eq!((r.apply_i32(5, 0), r.apply_i32(-5, 0), r.apply_i64(-5, 3)), (3, -3, -3));
    }

    #[test]
    fn add_rescale_of_equal_scales_is_a_plain_sum() {
        let q = TensorQuant::new(0.05, 3);
        let a = AddRescale::prepare(20, q, q, TensorQuant::new(0.05, 3), Activation::None, -128, 127).unwrap();
        assert_eq!(a.input1_multiplier, QuantizedMultiplier { multiplier: 1 << 30, shift: 0 });
        // (10 − 3) + (20 − 3) + 3 = 27.
        assert_eq!(a.add(10, 20), 27);
    }
}
