//! CONV_2D and FULLY_CONNECTED loops: the reference walk ([`conv2d`]), the packed-filter walk for
//! k x k filters up to [`MAX_BLOCKED_TAPS`] taps ([`conv2d_packed`], [`packed_walk`]) and the tap
//! gathering shared with the depthwise walk.

use super::{MacStage, LANES, MAX_BLOCKED_TAPS};
use crate::kernels::{ConvGeom, FcGeom};

/// Input coordinate of output position `o`, filter tap `f`, or `None` when it falls in the padding.
#[inline]
pub(super) fn tap(o: usize, f: usize, stride: usize, dilation: usize, pad: usize, size: usize) -> Option<usize> {
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
pub(super) struct Window {
    relative: [(usize, usize); MAX_BLOCKED_TAPS],
    n: usize,
}

impl Window {
    pub(super) fn new(g: &ConvGeom) -> Self {
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
    pub(super) fn taps(
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
}
