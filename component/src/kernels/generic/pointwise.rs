//! 1x1 CONV_2D: the pair-interleaved filter packing and the register-blocked walk
//! ([`pointwise_groups`], shared with the SIMD micro-kernels).

use super::{MacStage, LANES};
use crate::kernels::ConvGeom;

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
