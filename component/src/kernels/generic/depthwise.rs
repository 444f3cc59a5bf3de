//! DEPTHWISE_CONV_2D loops: the general one in TFLite's order (any depth multiplier) and the
//! channel-blocked one for multiplier 1 ([`depthwise_walk`], shared with the SIMD micro-kernels).

use super::conv::{tap, Window};
use super::{MacStage, LANES, MAX_BLOCKED_TAPS};
use crate::kernels::ConvGeom;

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
