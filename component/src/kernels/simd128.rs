//! wasm `simd128` micro-kernels, compiled only into the SIMD build (`dist/classifier-simd.wasm`).
//!
//! Each one computes exactly what the portable kernel it replaces computes (integer sums are exact in
//! any order and wrap the same way), so the scalar build, the native build and this one give the same
//! bits; the runtime matrix checks that on every golden case.

use core::arch::wasm32::*;

use super::generic::{self, MacStage, LANES};
use super::int8::ConvParams;
use super::ConvGeom;

/// int8 1x1 CONV_2D on the pair-interleaved packing of [`generic::pack_pointwise`]: per pair of input
/// channels, `i32x4.dot_i16x8_s` multiplies two (offset) inputs by two (offset) weights for four
/// output channels and adds both products into 32 bits. Offsets fit 16 bits: `x − zp_x` and `w − zp_w`
/// are within ±255.
pub fn pointwise_int8(
    p: &ConvParams,
    g: &ConvGeom,
    input: &[i8],
    packed: &[i8],
    bias: Option<&[i32]>,
    output: &mut [i8],
) {
    let in_c = g.in_c;
    let pairs = in_c / 2;
    let io = p.input_offset;
    let fo = i16x8_splat(p.filter_offset as i16);
    generic::pointwise_blocks(
        g,
        input,
        packed.len(),
        output,
        |rows, block, acc: &mut [[i32; LANES]; generic::PIXELS]| {
            let ws = &packed[block * in_c * LANES..][..in_c * LANES];
            let mut v = [[i32x4_splat(0); LANES / 4]; generic::PIXELS];
            for (j, w) in ws[..pairs * 2 * LANES].chunks_exact(2 * LANES).enumerate() {
                // SAFETY: `w` is 2 * LANES = 32 bytes; each load reads 16 (unaligned loads are allowed).
                let (lo, hi) = unsafe { (v128_load(w.as_ptr().cast()), v128_load(w.as_ptr().add(16).cast())) };
                let wv = [
                    i16x8_add(i16x8_extend_low_i8x16(lo), fo),
                    i16x8_add(i16x8_extend_high_i8x16(lo), fo),
                    i16x8_add(i16x8_extend_low_i8x16(hi), fo),
                    i16x8_add(i16x8_extend_high_i8x16(hi), fo),
                ];
                for (vp, row) in v.iter_mut().zip(rows) {
                    let x0 = (i32::from(row[2 * j]) + io) as i16;
                    let x1 = (i32::from(row[2 * j + 1]) + io) as i16;
                    let xp = i32x4_splat(i32::from(x0 as u16) | (i32::from(x1) << 16));
                    for k in 0..LANES / 4 {
                        vp[k] = i32x4_add(vp[k], i32x4_dot_i16x8(xp, wv[k]));
                    }
                }
            }
            for (a, vp) in acc.iter_mut().zip(&v) {
                for (k, lanes) in a.chunks_exact_mut(4).enumerate() {
                    // SAFETY: `lanes` is 4 i32 = 16 bytes.
                    unsafe { v128_store(lanes.as_mut_ptr().cast(), vp[k]) };
                }
            }
            if in_c % 2 == 1 {
                let w = &ws[pairs * 2 * LANES..][..LANES];
                for (a, row) in acc.iter_mut().zip(rows) {
                    let x = row[in_c - 1];
                    for i in 0..LANES {
                        a[i] = p.mac(a[i], x, w[i]);
                    }
                }
            }
        },
        |acc, oc| p.finish(acc, bias.map(|b| b[oc]), oc),
    );
}

/// Pairs of input channels an int16 accumulator lane can take before it must be widened: each
/// `dot_i16x8_s` lane adds at most 2 · 2^15 · 2^7 = 2^23, so 128 of them stay below 2^30.
const INT16_FLUSH_PAIRS: usize = 128;

/// int16 (16x8) 1x1 CONV_2D: the same dot product on raw int16 activations (zero point 0) and
/// sign-extended int8 weights, summed exactly in 32 bits for up to [`INT16_FLUSH_PAIRS`] channel pairs
/// and then into TFLite's 64-bit accumulator.
pub fn pointwise_int16(
    p: &super::int16::ConvParams,
    g: &ConvGeom,
    input: &[i16],
    packed: &[i8],
    bias: Option<&[i64]>,
    output: &mut [i16],
) {
    let in_c = g.in_c;
    let pairs = in_c / 2;
    generic::pointwise_blocks(
        g,
        input,
        packed.len(),
        output,
        |rows, block, acc: &mut [[i64; LANES]; generic::PIXELS]| {
            let ws = &packed[block * in_c * LANES..][..in_c * LANES];
            *acc = [[0; LANES]; generic::PIXELS];
            for (chunk, ws) in ws[..pairs * 2 * LANES].chunks(INT16_FLUSH_PAIRS * 2 * LANES).enumerate() {
                let j0 = chunk * INT16_FLUSH_PAIRS;
                let mut v = [[i32x4_splat(0); LANES / 4]; generic::PIXELS];
                for (j, w) in ws.chunks_exact(2 * LANES).enumerate() {
                    // SAFETY: `w` is 2 * LANES = 32 bytes; each load reads 16 (unaligned loads are allowed).
                    let (lo, hi) = unsafe { (v128_load(w.as_ptr().cast()), v128_load(w.as_ptr().add(16).cast())) };
                    let wv = [
                        i16x8_extend_low_i8x16(lo),
                        i16x8_extend_high_i8x16(lo),
                        i16x8_extend_low_i8x16(hi),
                        i16x8_extend_high_i8x16(hi),
                    ];
                    for (vp, row) in v.iter_mut().zip(rows) {
                        let (x0, x1) = (row[2 * (j0 + j)], row[2 * (j0 + j) + 1]);
                        let xp = i32x4_splat(i32::from(x0 as u16) | (i32::from(x1) << 16));
                        for k in 0..LANES / 4 {
                            vp[k] = i32x4_add(vp[k], i32x4_dot_i16x8(xp, wv[k]));
                        }
                    }
                }
                for (a, vp) in acc.iter_mut().zip(&v) {
                    let mut sums = [0i32; LANES];
                    for (k, lanes) in sums.chunks_exact_mut(4).enumerate() {
                        // SAFETY: `lanes` is 4 i32 = 16 bytes.
                        unsafe { v128_store(lanes.as_mut_ptr().cast(), vp[k]) };
                    }
                    for (a, s) in a.iter_mut().zip(sums) {
                        *a = a.wrapping_add(i64::from(s));
                    }
                }
            }
            if in_c % 2 == 1 {
                let w = &ws[pairs * 2 * LANES..][..LANES];
                for (a, row) in acc.iter_mut().zip(rows) {
                    let x = row[in_c - 1];
                    for i in 0..LANES {
                        a[i] = p.mac(a[i], x, w[i]);
                    }
                }
            }
        },
        |acc, oc| p.finish(acc, bias.map(|b| b[oc]), oc),
    );
}

/// int8 DEPTHWISE_CONV_2D (multiplier 1): per tap, 16 channels of `(x − zp_x) · (w − zp_w)` with
/// `i32x4.extmul_*_i16x8_s` (both factors within ±255), in four 32-bit accumulators.
pub fn depthwise_int8(
    p: &ConvParams,
    g: &ConvGeom,
    input: &[i8],
    filter: &[i8],
    bias: Option<&[i32]>,
    output: &mut [i8],
) {
    let io = i16x8_splat(p.input_offset as i16);
    let fo = i16x8_splat(p.filter_offset as i16);
    generic::depthwise_blocks(
        g,
        output,
        |taps, c0, n, acc: &mut [i32; LANES]| {
            if n < LANES {
                *acc = [0; LANES];
                for &(xo, wo) in taps {
                    for i in 0..n {
                        acc[i] = p.mac(acc[i], input[xo + c0 + i], filter[wo + c0 + i]);
                    }
                }
                return;
            }
            let mut v = [i32x4_splat(0); 4];
            for &(xo, wo) in taps {
                let (xs, ws) = (&input[xo + c0..][..LANES], &filter[wo + c0..][..LANES]);
                // SAFETY: both slices are LANES = 16 bytes.
                let (x, w) = unsafe { (v128_load(xs.as_ptr().cast()), v128_load(ws.as_ptr().cast())) };
                let (xl, xh) = (i16x8_add(i16x8_extend_low_i8x16(x), io), i16x8_add(i16x8_extend_high_i8x16(x), io));
                let (wl, wh) = (i16x8_add(i16x8_extend_low_i8x16(w), fo), i16x8_add(i16x8_extend_high_i8x16(w), fo));
                v[0] = i32x4_add(v[0], i32x4_extmul_low_i16x8(xl, wl));
                v[1] = i32x4_add(v[1], i32x4_extmul_high_i16x8(xl, wl));
                v[2] = i32x4_add(v[2], i32x4_extmul_low_i16x8(xh, wh));
                v[3] = i32x4_add(v[3], i32x4_extmul_high_i16x8(xh, wh));
            }
            for (k, lanes) in acc.chunks_exact_mut(4).enumerate() {
                // SAFETY: `lanes` is 4 i32 = 16 bytes.
                unsafe { v128_store(lanes.as_mut_ptr().cast(), v[k]) };
            }
        },
        |acc, oc| p.finish(acc, bias.map(|b| b[oc]), oc),
    );
}

/// int16 DEPTHWISE_CONV_2D (multiplier 1): `x · w` products are within 2^22, so the sum over at most
/// [`generic::MAX_BLOCKED_TAPS`] taps is exact in 32 bits before it joins TFLite's 64-bit accumulator.
pub fn depthwise_int16(
    p: &super::int16::ConvParams,
    g: &ConvGeom,
    input: &[i16],
    filter: &[i8],
    bias: Option<&[i64]>,
    output: &mut [i16],
) {
    generic::depthwise_blocks(
        g,
        output,
        |taps, c0, n, acc: &mut [i64; LANES]| {
            if n < LANES {
                *acc = [0; LANES];
                for &(xo, wo) in taps {
                    for i in 0..n {
                        acc[i] = p.mac(acc[i], input[xo + c0 + i], filter[wo + c0 + i]);
                    }
                }
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
                v[0] = i32x4_add(v[0], i32x4_extmul_low_i16x8(xl, wl));
                v[1] = i32x4_add(v[1], i32x4_extmul_high_i16x8(xl, wl));
                v[2] = i32x4_add(v[2], i32x4_extmul_low_i16x8(xh, wh));
                v[3] = i32x4_add(v[3], i32x4_extmul_high_i16x8(xh, wh));
            }
            let mut sums = [0i32; LANES];
            for (k, lanes) in sums.chunks_exact_mut(4).enumerate() {
                // SAFETY: `lanes` is 4 i32 = 16 bytes.
                unsafe { v128_store(lanes.as_mut_ptr().cast(), v[k]) };
            }
            for (a, s) in acc.iter_mut().zip(sums) {
                *a = i64::from(s);
            }
        },
        |acc, oc| p.finish(acc, bias.map(|b| b[oc]), oc),
    );
}
