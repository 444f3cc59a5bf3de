//! Test-only helpers shared by the kernel tests: random geometries and plain, obviously-correct
//! reference loops (signed coordinates, no clever indexing) that the kernels are checked against.

use super::{ConvGeom, PoolGeom};
use proptest::prelude::*;

/// A random convolution geometry: batch 1–2, input up to 6×6, strides and dilations 1–2, padding
/// offsets 0–2 (so taps fall off both edges, as with SAME), output sizes that may or may not cover the
/// whole input (VALID-like and beyond).
pub fn conv_geom(depthwise: bool) -> impl Strategy<Value = ConvGeom> {
    (
        (1..=2usize, 1..=6usize, 1..=6usize, 1..=4usize, 1..=4usize),
        (1..=3usize, 1..=3usize, 1..=2usize, 1..=2usize, 1..=2usize, 1..=2usize),
        (0..=2usize, 0..=2usize, 1..=5usize, 1..=5usize),
    )
        .prop_map(
            move |(
                (batch, in_h, in_w, in_c, chan),
                (k_h, k_w, stride_h, stride_w, dilation_h, dilation_w),
                (pad_top, pad_left, out_h, out_w),
            )| {
                let (out_c, depth_multiplier) = if depthwise { (in_c * chan, chan) } else { (chan, 1) };
                ConvGeom {
                    batch,
                    in_h,
                    in_w,
                    in_c,
                    out_h,
                    out_w,
                    out_c,
                    k_h,
                    k_w,
                    stride_h,
                    stride_w,
                    dilation_h,
                    dilation_w,
                    pad_top,
                    pad_left,
                    depth_multiplier,
                }
            },
        )
}

/// A random pooling geometry whose every window has at least one in-bounds tap (TFLite's padding rules
/// guarantee that; an empty window is an error there).
pub fn pool_geom() -> impl Strategy<Value = PoolGeom> {
    (
        (1..=2usize, 1..=7usize, 1..=7usize, 1..=3usize),
        (1..=4usize, 1..=4usize, 1..=2usize, 1..=2usize),
        (0..=3usize, 0..=3usize, 1..=5usize, 1..=5usize),
    )
        .prop_map(|((batch, in_h, in_w, channels), (filter_h, filter_w, stride_h, stride_w), (pt, pl, oh, ow))| {
            let pad_top = pt.min(filter_h - 1);
            let pad_left = pl.min(filter_w - 1);
            let out_h = oh.min((in_h - 1 + pad_top) / stride_h + 1);
            let out_w = ow.min((in_w - 1 + pad_left) / stride_w + 1);
            PoolGeom {
                batch,
                in_h,
                in_w,
                channels,
                out_h,
                out_w,
                filter_h,
                filter_w,
                stride_h,
                stride_w,
                pad_top,
                pad_left,
            }
        })
}

/// Reference convolution accumulators, one per output element in NHWC order: for every output
/// element, `mac(acc, input_index, filter_index)` over the in-bounds taps in (filter row, filter
/// column, input channel) order. `depthwise` selects the DEPTHWISE_CONV_2D filter layout.
pub fn ref_conv_acc<A: Copy>(g: &ConvGeom, depthwise: bool, zero: A, mac: impl Fn(A, usize, usize) -> A) -> Vec<A> {
    let mut out = Vec::new();
    for b in 0..g.batch as i64 {
        for oy in 0..g.out_h as i64 {
            for ox in 0..g.out_w as i64 {
                for oc in 0..g.out_c as i64 {
                    let mut acc = zero;
                    for fy in 0..g.k_h as i64 {
                        for fx in 0..g.k_w as i64 {
                            let iy = oy * g.stride_h as i64 - g.pad_top as i64 + fy * g.dilation_h as i64;
                            let ix = ox * g.stride_w as i64 - g.pad_left as i64 + fx * g.dilation_w as i64;
                            if iy < 0 || ix < 0 || iy >= g.in_h as i64 || ix >= g.in_w as i64 {
                                continue;
                            }
                            let pixel = ((b * g.in_h as i64 + iy) * g.in_w as i64 + ix) * g.in_c as i64;
                            if depthwise {
                                let ic = oc / g.depth_multiplier as i64;
                                let fi = (fy * g.k_w as i64 + fx) * g.out_c as i64 + oc;
                                acc = mac(acc, (pixel + ic) as usize, fi as usize);
                            } else {
                                for ic in 0..g.in_c as i64 {
                                    let fi = ((oc * g.k_h as i64 + fy) * g.k_w as i64 + fx) * g.in_c as i64 + ic;
                                    acc = mac(acc, (pixel + ic) as usize, fi as usize);
                                }
                            }
                        }
                    }
                    out.push(acc);
                }
            }
        }
    }
    out
}

/// Reference pooling windows: for every output element (NHWC order) the list of input indices of its
/// in-bounds taps, row by row.
pub fn ref_pool_windows(g: &PoolGeom) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    for b in 0..g.batch as i64 {
        for oy in 0..g.out_h as i64 {
            for ox in 0..g.out_w as i64 {
                for c in 0..g.channels as i64 {
                    let mut taps = Vec::new();
                    for fy in 0..g.filter_h as i64 {
                        for fx in 0..g.filter_w as i64 {
                            let iy = oy * g.stride_h as i64 - g.pad_top as i64 + fy;
                            let ix = ox * g.stride_w as i64 - g.pad_left as i64 + fx;
                            if iy < 0 || ix < 0 || iy >= g.in_h as i64 || ix >= g.in_w as i64 {
                                continue;
                            }
                            taps.push(
                                (((b * g.in_h as i64 + iy) * g.in_w as i64 + ix) * g.channels as i64 + c) as usize,
                            );
                        }
                    }
                    out.push(taps);
                }
            }
        }
    }
    out
}

/// `n` values (a count or a range of counts) from a strategy.
pub fn vec_of<T: std::fmt::Debug>(
    s: impl Strategy<Value = T>,
    n: impl Into<proptest::collection::SizeRange>,
) -> impl Strategy<Value = Vec<T>> {
    proptest::collection::vec(s, n)
}

/// A plausible quantization scale (log-uniform over 2^-12 … 2^2).
pub fn scale() -> impl Strategy<Value = f32> {
    (-12.0f32..2.0).prop_map(|e| 2f32.powf(e))
}

/// One of the fused activations.
pub fn activation() -> impl Strategy<Value = super::Activation> {
    prop_oneof![Just(super::Activation::None), Just(super::Activation::Relu), Just(super::Activation::Relu6)]
}

/// The expected `[min, max]` of a fused activation, written out from TFLite's definition.
pub fn act_range(act: super::Activation, scale: f32, zp: i32, qmin: i32, qmax: i32) -> (i32, i32) {
    let q = |f: f32| zp + (f / scale).round() as i32;
    match act {
        super::Activation::None => (qmin, qmax),
        super::Activation::Relu => (q(0.0).max(qmin), qmax),
        super::Activation::Relu6 => (q(0.0).max(qmin), q(6.0).min(qmax)),
    }
}
