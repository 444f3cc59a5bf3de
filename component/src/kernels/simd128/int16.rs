//! int16 (16x8) micro-kernels: 1x1 and packed CONV_2D, DEPTHWISE_CONV_2D. Products of int16
//! activations and int8 weights are summed exactly in 32-bit lanes for as long as they cannot
//! overflow, then joined into TFLite's 64-bit accumulator and the output stage ([`Int16Stage`]).

use core::arch::wasm32::*;

use super::{lanes_i64, mac16, packed_block16, widen};
use crate::kernels::generic::{self, MacStage, LANES};
use crate::kernels::stage::{Int16Stage, INT16_FLUSH_PAIRS};
use crate::kernels::ConvGeom;

/// int16 (16x8) CONV_2D on a filter packed by [`generic::pack_conv`] (the 3x3 stem): per tap and input
/// channel, one input splat times 16 weights (sign-extended when the plan is bound) with
/// `i32x4.extmul_*_i16x8_s`. Each product is within 2^22, so up to `2 · INT16_FLUSH_PAIRS` of them sum
/// exactly in 32 bits (`select::conv_arch` keeps longer filters on the scalar kernel). Then TFLite's
/// 64-bit output stage.
pub fn conv_packed(st: &Int16Stage, g: &ConvGeom, input: &[i16], output: &mut [i16]) {
    let (in_c, out_c) = (g.in_c, g.out_c);
    let k = g.k_h * g.k_w * in_c;
    debug_assert!(k <= 2 * INT16_FLUSH_PAIRS, "select::conv_arch keeps longer filters scalar");
    let weights = &st.weights;
    generic::packed_walk(g, output, |taps, out| {
        for (block, ws) in weights.chunks_exact(k * LANES).enumerate() {
            let sums = lanes_i64(&packed_block16(taps, input, ws, in_c, |x| i16x8_splat(x)));
            let oc0 = block * LANES;
            for (i, o) in out[oc0..][..LANES.min(out_c - oc0)].iter_mut().enumerate() {
                *o = st.finish(sums[i], oc0 + i);
            }
        }
    });
}

/// int16 (16x8) 1x1 CONV_2D: the same dot product on raw int16 activations (zero point 0, so a
/// channel pair is one 32-bit splat load straight from the input row) and the weights sign-extended
/// once per call, two pixels at a time, summed exactly in 32 bits for up to [`INT16_FLUSH_PAIRS`]
/// channel pairs and then into TFLite's 64-bit accumulator.
pub fn pointwise(st: &Int16Stage, g: &ConvGeom, input: &[i16], packed: &[i8], output: &mut [i16]) {
    let (in_c, out_c) = (g.in_c, g.out_c);
    let pairs = in_c / 2;
    let weights = widen(packed, 0);
    generic::pointwise_groups(g, input, output, |rows, out| {
        let np = out.len() / out_c;
        for block in 0..out_c.div_ceil(LANES) {
            let ws = &weights[block * in_c * LANES..][..in_c * LANES];
            for (half, out) in out.chunks_mut(2 * out_c).enumerate().take(np.div_ceil(2)) {
                let x = [rows[2 * half], rows[2 * half + 1]];
                let mut acc = [[0i64; LANES]; 2];
                for (chunk, ws) in ws[..pairs * 2 * LANES].chunks(INT16_FLUSH_PAIRS * 2 * LANES).enumerate() {
                    let j0 = chunk * INT16_FLUSH_PAIRS;
                    let mut v = [[i32x4_splat(0); LANES / 4]; 2];
                    for (j, w) in ws.chunks_exact(2 * LANES).enumerate() {
                        let c = 2 * (j0 + j);
                        // SAFETY: channels c and c + 1 of each row (4 bytes); `w` is 2 * LANES = 32 i16,
                        // read as four vectors.
                        unsafe {
                            let xp = [
                                v128_load32_splat(x[0][c..].as_ptr().cast()),
                                v128_load32_splat(x[1][c..].as_ptr().cast()),
                            ];
                            // `k` picks the k-th vector of both rows' accumulators and of the weights at once.
                            #[allow(clippy::needless_range_loop)]
                            for k in 0..LANES / 4 {
                                let wk = v128_load(w.as_ptr().add(8 * k).cast());
                                v[0][k] = i32x4_add(v[0][k], i32x4_dot_i16x8(xp[0], wk));
                                v[1][k] = i32x4_add(v[1][k], i32x4_dot_i16x8(xp[1], wk));
                            }
                        }
                    }
                    for (a, vp) in acc.iter_mut().zip(&v) {
                        for (a, s) in a.iter_mut().zip(lanes_i64(vp)) {
                            *a = a.wrapping_add(s);
                        }
                    }
                }
                if in_c % 2 == 1 {
                    let w = &weights[block * in_c * LANES + pairs * 2 * LANES..][..LANES];
                    for (a, row) in acc.iter_mut().zip(x) {
                        for i in 0..LANES {
                            a[i] = a[i].wrapping_add(i64::from(i32::from(w[i]) * i32::from(row[in_c - 1])));
                        }
                    }
                }
                let oc0 = block * LANES;
                let lanes = LANES.min(out_c - oc0);
                for (a, out) in acc.iter().zip(out.chunks_exact_mut(out_c)) {
                    for (i, o) in out[oc0..][..lanes].iter_mut().enumerate() {
                        *o = st.finish(a[i], oc0 + i);
                    }
                }
            }
        }
    });
}

/// int16 DEPTHWISE_CONV_2D (multiplier 1): `x · w` products are within 2^22, so the sum over at most
/// [`generic::MAX_BLOCKED_TAPS`] taps is exact in 32 bits before it joins TFLite's 64-bit accumulator.
pub fn depthwise<S: MacStage<Act = i16, Weight = i8, Acc = i64>>(
    st: &Int16Stage,
    s: &S,
    g: &ConvGeom,
    input: &[i16],
    filter: &[i8],
    output: &mut [i16],
) {
    generic::depthwise_blocks(
        g,
        output,
        |taps, c0, n, acc: &mut [i64; LANES]| {
            if n < LANES {
                *acc = generic::depthwise_block(s, input, filter, taps, c0, n);
                return;
            }
            let mut v = [i32x4_splat(0); 4];
            for &(xo, wo) in taps {
                let (xs, ws) = (&input[xo + c0..][..LANES], &filter[wo + c0..][..LANES]);
                // SAFETY: `xs` is 16 i16 = 32 bytes (two loads), `ws` 16 bytes.
                let (xl, xh, w) = unsafe {
                    (v128_load(xs.as_ptr().cast()), v128_load(xs.as_ptr().add(8).cast()), v128_load(ws.as_ptr().cast()))
                };
                let (wl, wh) = (i16x8_extend_low_i8x16(w), i16x8_extend_high_i8x16(w));
                mac16(&mut v, [xl, xh], [wl, wh]);
            }
            *acc = lanes_i64(&v);
        },
        |acc, oc| st.finish(acc, oc),
    );
}
