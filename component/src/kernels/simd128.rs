//! wasm `simd128` micro-kernels, compiled only into the SIMD build (`dist/classifier-simd.wasm`).
//!
//! Each one computes exactly what the portable kernel it replaces computes (integer sums are exact in
//! any order and wrap the same way; float ones add each output's products in the portable kernel's
//! order, each product and sum rounded on its own), so the scalar build, the native build and this one
//! give the same bits. `cargo xtask test` runs the kernel proptests inside wasm32-wasip2 with simd128,
//! where the per-precision entry points are these kernels, and the runtime matrix checks every golden
//! case end to end.

use core::arch::wasm32::*;

use super::generic::{self, MacStage, LANES};
use super::int8::ConvParams;
use super::{fp32, ConvGeom};

/// The int8 output stage (bias, TFLite's per-channel `MultiplyByQuantizedMultiplier`, output offset,
/// clamp) for four channels per instruction, with the same result as [`MacStage::finish`] for every
/// accumulator. Per channel group of four: bias, `2^left_shift`, multiplier, `2^(30 − right_shift)`
/// (a per-lane right shift, which simd128 lacks, as a widening multiply and a fixed shift), and the
/// rounding mask and half of `RoundingDivideByPOT`.
struct Requant {
    groups: Vec<[v128; 6]>,
    offset: v128,
    min: v128,
    max: v128,
}

impl Requant {
    /// `None` when some channel shifts right by more than 30 (a multiplier below 2^-31, which no real
    /// model has): the caller then takes the scalar output stage.
    fn new(p: &ConvParams, bias: Option<&[i32]>, out_c: usize) -> Option<Self> {
        let blocks = out_c.div_ceil(LANES);
        let mut groups = Vec::with_capacity(blocks * LANES / 4);
        for c0 in (0..blocks * LANES).step_by(4) {
            let mut lanes = [[0i32; 4]; 6];
            for i in 0..4 {
                // Padding lanes past `out_c` repeat the last channel; their results are never stored.
                let ch = (c0 + i).min(out_c - 1);
                let m = generic::per_channel(&p.multipliers, ch);
                let (left, right) = (m.shift.clamp(0, 31), (-m.shift).clamp(0, 31));
                if right > 30 {
                    return None;
                }
                let mask = ((1i64 << right) - 1) as i32;
                let column = [
                    bias.map_or(0, |b| b[ch]),
                    1i32.wrapping_shl(left as u32),
                    m.multiplier,
                    1 << (30 - right),
                    mask,
                    mask >> 1,
                ];
                for (lane, v) in lanes.iter_mut().zip(column) {
                    lane[i] = v;
                }
            }
            groups.push(lanes.map(|l| i32x4(l[0], l[1], l[2], l[3])));
        }
        Some(Self {
            groups,
            offset: i32x4_splat(p.output_offset),
            min: i32x4_splat(p.act_min),
            max: i32x4_splat(p.act_max),
        })
    }

    /// Four accumulators of channel group `group` to four clamped outputs (as i32 lanes).
    #[inline(always)]
    fn apply4(&self, acc: v128, group: usize) -> v128 {
        let [bias, lmul, mult, pmul, mask, half] = self.groups[group];
        let x = i32x4_mul(i32x4_add(acc, bias), lmul);
        let rounded = multiply_by_quantized_multiplier(x, mult, pmul, mask, half);
        i32x4_min(i32x4_max(i32x4_add(rounded, self.offset), self.min), self.max)
    }

    /// The first 8 accumulators of channel block `block` to 8 int8 outputs (in both halves).
    #[inline(always)]
    fn apply8(&self, v: &[v128; 2], block: usize) -> v128 {
        let g = block * 4;
        let low = i16x8_narrow_i32x4(self.apply4(v[0], g), self.apply4(v[1], g + 1));
        i8x16_narrow_i16x8(low, low)
    }

    /// The 16 accumulators of channel block `block` to 16 int8 outputs.
    #[inline(always)]
    fn apply16(&self, v: &[v128; 4], block: usize) -> v128 {
        let g = block * 4;
        let (a, b, c, d) =
            (self.apply4(v[0], g), self.apply4(v[1], g + 1), self.apply4(v[2], g + 2), self.apply4(v[3], g + 3));
        // Already clamped to the int8 activation range, so the saturating narrows are exact.
        i8x16_narrow_i16x8(i16x8_narrow_i32x4(a, b), i16x8_narrow_i32x4(c, d))
    }
}

/// Stores the first `out.len()` (at most 16) bytes of `v`.
#[inline(always)]
fn store_i8(out: &mut [i8], v: v128) {
    if let Ok(out) = <&mut [i8; LANES]>::try_from(&mut *out) {
        // SAFETY: `out` is 16 bytes.
        unsafe { v128_store(out.as_mut_ptr().cast(), v) };
    } else {
        let mut lanes = [0i8; LANES];
        // SAFETY: `lanes` is 16 bytes.
        unsafe { v128_store(lanes.as_mut_ptr().cast(), v) };
        let n = out.len();
        out.copy_from_slice(&lanes[..n]);
    }
}

/// `RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x, mult), e)` on four lanes, each with its
/// own multiplier `mult` (>= 0) and exponent `e` <= 30, given as `pmul = 2^(30 − e)`, `mask = 2^e − 1`
/// and `half = mask >> 1`; exact for every `x`.
#[inline(always)]
fn multiply_by_quantized_multiplier(x: v128, mult: v128, pmul: v128, mask: v128, half: v128) -> v128 {
    // SaturatingRoundingDoublingHighMul: TFLite's (ab + nudge) / 2^31, truncating, with nudge 2^30 for
    // ab >= 0 and 1 − 2^30 below, equals floor((ab + 2^30) / 2^31) for every ab (for ab < 0, truncation
    // is floor((ab + nudge + 2^31 − 1) / 2^31)). |x · m| < 2^62 (m >= 0, so no INT_MIN · INT_MIN), and
    // the result fits 32 bits: bits 31..62 of the sum, which a logical shift (one x86 instruction;
    // 64-bit arithmetic shifts are emulated) puts in the low half of each lane as well.
    let srdhm = |ab: v128| u64x2_shr(i64x2_add(ab, i64x2_splat(1 << 30)), 31);
    let y =
        i32x4_shuffle::<0, 2, 4, 6>(srdhm(i64x2_extmul_low_i32x4(x, mult)), srdhm(i64x2_extmul_high_i32x4(x, mult)));
    // RoundingDivideByPOT: floor(y / 2^e) = (y · 2^(30 − e)) >> 30 (simd128 has no per-lane shift; the
    // low 32 bits are the same for a logical shift), plus one when the remainder is past half (past
    // half + 1 for negative y).
    let floor = i32x4_shuffle::<0, 2, 4, 6>(
        u64x2_shr(i64x2_extmul_low_i32x4(y, pmul), 30),
        u64x2_shr(i64x2_extmul_high_i32x4(y, pmul), 30),
    );
    let threshold = i32x4_sub(half, i32x4_shr(y, 31));
    i32x4_sub(floor, i32x4_gt(v128_and(y, mask), threshold))
}

/// The splatted constants of [`multiply_by_quantized_multiplier`] for one multiplier with a right
/// shift (`shift <= 0`), or `None` past a right shift of 30.
fn uniform_multiplier(m: crate::kernels::fixedpoint::QuantizedMultiplier) -> Option<[v128; 4]> {
    let right = -m.shift;
    if !(0..=30).contains(&right) {
        return None;
    }
    let mask = (1i32 << right) - 1;
    Some([i32x4_splat(m.multiplier), i32x4_splat(1 << (30 - right)), i32x4_splat(mask), i32x4_splat(mask >> 1)])
}

/// 16 quantized values as four `i32x4`, and back: what lets one ADD kernel serve int8 and int16.
pub trait Lanes16: generic::QInt {
    /// Reads `src[..16]`.
    fn load16(src: &[Self]) -> [v128; 4];
    /// Writes `dst[..16]`; every lane must already be within the type's range.
    fn store16(dst: &mut [Self], v: [v128; 4]);
}

impl Lanes16 for i8 {
    #[inline(always)]
    fn load16(src: &[i8]) -> [v128; 4] {
        let src: &[i8; 16] = src[..16].try_into().expect("16 values");
        // SAFETY: `src` is 16 bytes.
        let v = unsafe { v128_load(src.as_ptr().cast()) };
        let (l, h) = (i16x8_extend_low_i8x16(v), i16x8_extend_high_i8x16(v));
        [i32x4_extend_low_i16x8(l), i32x4_extend_high_i16x8(l), i32x4_extend_low_i16x8(h), i32x4_extend_high_i16x8(h)]
    }
    #[inline(always)]
    fn store16(dst: &mut [i8], v: [v128; 4]) {
        let dst: &mut [i8; 16] = (&mut dst[..16]).try_into().expect("16 values");
        // SAFETY: `dst` is 16 bytes; the lanes are in range, so the saturating narrows are exact.
        unsafe {
            v128_store(
                dst.as_mut_ptr().cast(),
                i8x16_narrow_i16x8(i16x8_narrow_i32x4(v[0], v[1]), i16x8_narrow_i32x4(v[2], v[3])),
            )
        };
    }
}

impl Lanes16 for i16 {
    #[inline(always)]
    fn load16(src: &[i16]) -> [v128; 4] {
        let src: &[i16; 16] = src[..16].try_into().expect("16 values");
        // SAFETY: `src` is 32 bytes, two vectors.
        let (l, h) = unsafe { (v128_load(src.as_ptr().cast()), v128_load(src.as_ptr().add(8).cast())) };
        [i32x4_extend_low_i16x8(l), i32x4_extend_high_i16x8(l), i32x4_extend_low_i16x8(h), i32x4_extend_high_i16x8(h)]
    }
    #[inline(always)]
    fn store16(dst: &mut [i16], v: [v128; 4]) {
        let dst: &mut [i16; 16] = (&mut dst[..16]).try_into().expect("16 values");
        // SAFETY: `dst` is 32 bytes; the lanes are in range, so the saturating narrows are exact.
        unsafe {
            v128_store(dst.as_mut_ptr().cast(), i16x8_narrow_i32x4(v[0], v[1]));
            v128_store(dst.as_mut_ptr().add(8).cast(), i16x8_narrow_i32x4(v[2], v[3]));
        }
    }
}

/// Quantized ADD of two same-shape tensors on TFLite's general rescaling path ([`generic::AddRescale`]:
/// int8, and int16 when its scales are not powers of two), 16 elements at a time: offsets, the left
/// shift, both input multipliers, the sum, the output multiplier and the clamp all in 32-bit lanes,
/// exactly as [`generic::AddRescale::add`] does per element.
pub fn add_rescale<T: Lanes16>(p: &generic::AddRescale, input1: &[T], input2: &[T], output: &mut [T]) {
    let (Some(m1), Some(m2), Some(mo)) = (
        uniform_multiplier(p.input1_multiplier),
        uniform_multiplier(p.input2_multiplier),
        uniform_multiplier(p.output_multiplier),
    ) else {
        return p.add_all(input1, input2, output);
    };
    if !(0..32).contains(&p.left_shift) {
        return p.add_all(input1, input2, output);
    }
    let shift = p.left_shift as u32;
    let (o1, o2) = (i32x4_splat(p.input1_offset), i32x4_splat(p.input2_offset));
    let (oo, lo, hi) = (i32x4_splat(p.output_offset), i32x4_splat(p.act_min), i32x4_splat(p.act_max));
    let full = output.len() / LANES * LANES;
    for ((a, b), o) in
        input1[..full].chunks_exact(LANES).zip(input2[..full].chunks_exact(LANES)).zip(output.chunks_exact_mut(LANES))
    {
        let (a, b) = (T::load16(a), T::load16(b));
        T::store16(
            o,
            core::array::from_fn(|k| {
                let x1 =
                    multiply_by_quantized_multiplier(i32x4_shl(i32x4_add(a[k], o1), shift), m1[0], m1[1], m1[2], m1[3]);
                let x2 =
                    multiply_by_quantized_multiplier(i32x4_shl(i32x4_add(b[k], o2), shift), m2[0], m2[1], m2[2], m2[3]);
                let sum = multiply_by_quantized_multiplier(i32x4_add(x1, x2), mo[0], mo[1], mo[2], mo[3]);
                i32x4_min(i32x4_max(i32x4_add(sum, oo), lo), hi)
            }),
        );
    }
    p.add_all(&input1[full..], &input2[full..], &mut output[full..]);
}

/// `v += x · w` over 16 channels in 32-bit lanes, `x` and `w` each as two i16x8 (channels 0–7, 8–15):
/// the accumulate step of every 16-lane integer kernel here.
#[inline(always)]
fn mac16(v: &mut [v128; 4], x: [v128; 2], w: [v128; 2]) {
    v[0] = i32x4_add(v[0], i32x4_extmul_low_i16x8(x[0], w[0]));
    v[1] = i32x4_add(v[1], i32x4_extmul_high_i16x8(x[0], w[0]));
    v[2] = i32x4_add(v[2], i32x4_extmul_low_i16x8(x[1], w[1]));
    v[3] = i32x4_add(v[3], i32x4_extmul_high_i16x8(x[1], w[1]));
}

/// [`mac16`] for a half block of 8 channels.
#[inline(always)]
fn mac8(v: &mut [v128; 2], x: v128, w: v128) {
    v[0] = i32x4_add(v[0], i32x4_extmul_low_i16x8(x, w));
    v[1] = i32x4_add(v[1], i32x4_extmul_high_i16x8(x, w));
}

/// The 16 lanes of four i32x4 accumulators, widened to TFLite's 64-bit int16 accumulator.
#[inline(always)]
fn lanes_i64(v: &[v128; 4]) -> [i64; LANES] {
    let mut sums = [0i32; LANES];
    for (k, lanes) in sums.chunks_exact_mut(4).enumerate() {
        // SAFETY: `lanes` is 4 i32 = 16 bytes.
        unsafe { v128_store(lanes.as_mut_ptr().cast(), v[k]) };
    }
    sums.map(i64::from)
}

/// The 16 accumulators of one output pixel and one block of a packed CONV_2D ([`generic::pack_conv`],
/// filter widened to i16): per tap and input channel, `x` (as `splat` makes it ready) times 16 weights.
#[inline(always)]
fn packed_block16<T: Copy>(
    taps: &[(usize, usize)],
    input: &[T],
    ws: &[i16],
    in_c: usize,
    splat: impl Fn(T) -> v128,
) -> [v128; 4] {
    let mut v = [i32x4_splat(0); 4];
    for &(xo, wo) in taps {
        for (&x, w) in input[xo..][..in_c].iter().zip(ws[wo * LANES..][..in_c * LANES].chunks_exact(LANES)) {
            // SAFETY: `w` is LANES = 16 i16, two vectors.
            let (wl, wh) = unsafe { (v128_load(w.as_ptr().cast()), v128_load(w.as_ptr().add(8).cast())) };
            let x = splat(x);
            mac16(&mut v, [x, x], [wl, wh]);
        }
    }
    v
}

/// `dst[i] = src[i] + offset` in 16 bits (exact: int8 values and zero-point offsets are within ±255).
fn widen_into(src: &[i8], offset: i32, dst: &mut [i16]) {
    debug_assert_eq!(src.len(), dst.len());
    let o = i16x8_splat(offset as i16);
    let full = src.len() / LANES * LANES;
    for (x, w) in src[..full].chunks_exact(LANES).zip(dst.chunks_exact_mut(LANES)) {
        // SAFETY: `x` is 16 bytes, `w` 16 i16 = 32 bytes.
        unsafe {
            let v = v128_load(x.as_ptr().cast());
            v128_store(w.as_mut_ptr().cast(), i16x8_add(i16x8_extend_low_i8x16(v), o));
            v128_store(w.as_mut_ptr().add(8).cast(), i16x8_add(i16x8_extend_high_i8x16(v), o));
        }
    }
    for (w, &x) in dst[full..].iter_mut().zip(&src[full..]) {
        *w = (i32::from(x) + offset) as i16;
    }
}

/// [`widen_into`] a new vector.
fn widen(src: &[i8], offset: i32) -> Vec<i16> {
    let mut dst = vec![0; src.len()];
    widen_into(src, offset, &mut dst);
    dst
}

/// [`widen`] with [`LANES`] zeros after the end, so that a block of LANES channels starting at any
/// element can be loaded whole.
fn widen_padded(src: &[i8], offset: i32) -> Vec<i16> {
    let mut dst = vec![0; src.len() + LANES];
    widen_into(src, offset, &mut dst[..src.len()]);
    dst
}

/// int8 1x1 CONV_2D on the pair-interleaved packing of [`generic::pack_pointwise`]. Per group of
/// [`generic::PIXELS`] pixels the input rows are widened once to 16 bits with the input offset added;
/// then, per pair of input channels, `i32x4.dot_i16x8_s` multiplies the pair (one 32-bit splat load) by
/// two offset weights for four output channels and adds both products into 32 bits. Offsets fit 16
/// bits: `x − zp_x` and `w − zp_w` are within ±255. The output stage runs in SIMD too ([`Requant`]).
pub fn pointwise_int8(
    p: &ConvParams,
    g: &ConvGeom,
    input: &[i8],
    packed: &[i8],
    bias: Option<&[i32]>,
    output: &mut [i8],
) {
    let Some(rq) = Requant::new(p, bias, g.out_c) else {
        return generic::pointwise_conv2d(p, g, input, packed, bias, output);
    };
    let (in_c, out_c) = (g.in_c, g.out_c);
    let pairs = in_c / 2;
    // One widened row per pixel, 16-bit, rounded up to whole vectors.
    let stride = in_c.next_multiple_of(LANES);
    let mut wide = vec![0i16; generic::PIXELS * stride];
    // The weights widened once per call to i16 with the filter offset added, in the same packed order.
    let weights = widen(packed, p.filter_offset);
    generic::pointwise_groups(g, input, output, |rows, out| {
        for (row, wide) in rows.iter().zip(wide.chunks_exact_mut(stride)) {
            widen_into(row, p.input_offset, &mut wide[..in_c]);
        }
        let np = out.len() / out_c;
        for block in 0..out_c.div_ceil(LANES) {
            let ws = &weights[block * in_c * LANES..][..in_c * LANES];
            // Two pixels at a time: 8 accumulators, 2 splats and a weight vector stay in registers.
            for (half, out) in out.chunks_mut(2 * out_c).enumerate().take(np.div_ceil(2)) {
                let x = [wide[2 * half * stride..].as_ptr(), wide[(2 * half + 1) * stride..].as_ptr()];
                let mut v = [[i32x4_splat(0); LANES / 4]; 2];
                for (j, w) in ws[..pairs * 2 * LANES].chunks_exact(2 * LANES).enumerate() {
                    // SAFETY: channels 2j and 2j + 1 of each widened row (4 bytes inside `wide`); `w` is
                    // 2 * LANES = 32 i16, read as four vectors.
                    unsafe {
                        let xp = [v128_load32_splat(x[0].add(2 * j).cast()), v128_load32_splat(x[1].add(2 * j).cast())];
                        // `k` picks the k-th vector of both rows' accumulators and of the weights at once.
                        #[allow(clippy::needless_range_loop)]
                        for k in 0..LANES / 4 {
                            let wk = v128_load(w.as_ptr().add(8 * k).cast());
                            v[0][k] = i32x4_add(v[0][k], i32x4_dot_i16x8(xp[0], wk));
                            v[1][k] = i32x4_add(v[1][k], i32x4_dot_i16x8(xp[1], wk));
                        }
                    }
                }
                if in_c % 2 == 1 {
                    let w = &ws[pairs * 2 * LANES..][..LANES];
                    // SAFETY: the unpaired channel's LANES = 16 weights, two vectors.
                    let (wl, wh) = unsafe { (v128_load(w.as_ptr().cast()), v128_load(w.as_ptr().add(8).cast())) };
                    for (px, vp) in v.iter_mut().enumerate() {
                        // SAFETY: the last channel of the widened row.
                        let x = i16x8_splat(unsafe { *x[px].add(in_c - 1) });
                        mac16(vp, [x, x], [wl, wh]);
                    }
                }
                let oc0 = block * LANES;
                let lanes = LANES.min(out_c - oc0);
                for (vp, out) in v.iter().zip(out.chunks_exact_mut(out_c)) {
                    store_i8(&mut out[oc0..][..lanes], rq.apply16(vp, block));
                }
            }
        }
    });
}

/// int8 CONV_2D on a filter packed by [`generic::pack_conv`] (the 3x3 stem of MobileNetV2): per tap
/// and input channel, one offset input splat times 16 offset weights (widened once per call) with
/// `i32x4.extmul_*_i16x8_s` (8 when there are at most 8 output channels),
/// then the output stage in SIMD ([`Requant`]).
pub fn conv_packed_int8(
    p: &ConvParams,
    g: &ConvGeom,
    input: &[i8],
    packed: &[i8],
    bias: Option<&[i32]>,
    output: &mut [i8],
) {
    let Some(rq) = Requant::new(p, bias, g.out_c) else {
        return generic::conv2d_packed(p, g, input, packed, bias, output);
    };
    let (in_c, out_c) = (g.in_c, g.out_c);
    let k = g.k_h * g.k_w * in_c;
    // The filter widened once per call (it is small: the stem's is 3x3x3 by 32 channels).
    let weights = widen(packed, p.filter_offset);
    generic::packed_walk(g, output, |taps, out| {
        if out_c <= 8 {
            // Half a block (VWW's first layer has 8 output channels).
            let mut v = [i32x4_splat(0); 2];
            for &(xo, wo) in taps {
                for (&x, w) in input[xo..][..in_c].iter().zip(weights[wo * LANES..][..in_c * LANES].chunks_exact(LANES))
                {
                    let x = i16x8_splat((i32::from(x) + p.input_offset) as i16);
                    // SAFETY: `w` is LANES = 16 i16; the first 8 are read.
                    let w = unsafe { v128_load(w.as_ptr().cast()) };
                    mac8(&mut v, x, w);
                }
            }
            return store_i8(out, rq.apply8(&v, 0));
        }
        for (block, ws) in weights.chunks_exact(k * LANES).enumerate() {
            let v = packed_block16(taps, input, ws, in_c, |x| i16x8_splat((i32::from(x) + p.input_offset) as i16));
            let oc0 = block * LANES;
            store_i8(&mut out[oc0..][..LANES.min(out_c - oc0)], rq.apply16(&v, block));
        }
    });
}

/// Pairs of input channels an int16 accumulator lane can take before it must be widened: each
/// `dot_i16x8_s` lane adds at most 2 · 2^15 · 2^7 = 2^23, so 128 of them stay below 2^30.
const INT16_FLUSH_PAIRS: usize = 128;

/// The 16x8 output stage of [`MacStage::finish`] with each channel's bias, reduced multiplier and
/// shift looked up once per call instead of per output (simd128 has no per-lane 64-bit shift, so this
/// one stays scalar).
struct Int16Stage {
    channels: Vec<(i64, i64, u32)>,
    min: i32,
    max: i32,
}

impl Int16Stage {
    fn new(p: &super::int16::ConvParams, bias: Option<&[i64]>, out_c: usize) -> Self {
        let channels = (0..out_c)
            .map(|ch| {
                let m = generic::per_channel(&p.multipliers, ch);
                let (rm, shift) = crate::kernels::fixedpoint::reduced_multiplier_i64(m.multiplier, m.shift);
                (bias.map_or(0, |b| b[ch]), rm, shift)
            })
            .collect();
        Self { channels, min: p.act_min, max: p.act_max }
    }

    #[inline(always)]
    fn finish(&self, acc: i64, ch: usize) -> i16 {
        let (bias, rm, shift) = self.channels[ch];
        let x = acc.wrapping_add(bias).wrapping_mul(rm).wrapping_add(1 << (shift - 1));
        ((x >> shift) as i32).clamp(self.min, self.max) as i16
    }
}

/// int16 (16x8) CONV_2D on a filter packed by [`generic::pack_conv`] (the 3x3 stem): per tap and input
/// channel, one input splat times 16 weights (sign-extended once per call) with
/// `i32x4.extmul_*_i16x8_s`. Each product is within 2^22, so up to `2 · INT16_FLUSH_PAIRS` of them sum
/// exactly in 32 bits; longer filters take the scalar kernel. Then TFLite's 64-bit output stage.
pub fn conv_packed_int16(
    p: &super::int16::ConvParams,
    g: &ConvGeom,
    input: &[i16],
    packed: &[i8],
    bias: Option<&[i64]>,
    output: &mut [i16],
) {
    let (in_c, out_c) = (g.in_c, g.out_c);
    let k = g.k_h * g.k_w * in_c;
    if k > 2 * INT16_FLUSH_PAIRS {
        return generic::conv2d_packed(p, g, input, packed, bias, output);
    }
    let weights = widen(packed, 0);
    let stage = Int16Stage::new(p, bias, out_c);
    generic::packed_walk(g, output, |taps, out| {
        for (block, ws) in weights.chunks_exact(k * LANES).enumerate() {
            let sums = lanes_i64(&packed_block16(taps, input, ws, in_c, |x| i16x8_splat(x)));
            let oc0 = block * LANES;
            for (i, o) in out[oc0..][..LANES.min(out_c - oc0)].iter_mut().enumerate() {
                *o = stage.finish(sums[i], oc0 + i);
            }
        }
    });
}

/// int16 (16x8) 1x1 CONV_2D: the same dot product on raw int16 activations (zero point 0, so a
/// channel pair is one 32-bit splat load straight from the input row) and the weights sign-extended
/// once per call, two pixels at a time, summed exactly in 32 bits for up to [`INT16_FLUSH_PAIRS`]
/// channel pairs and then into TFLite's 64-bit accumulator.
pub fn pointwise_int16(
    p: &super::int16::ConvParams,
    g: &ConvGeom,
    input: &[i16],
    packed: &[i8],
    bias: Option<&[i64]>,
    output: &mut [i16],
) {
    let (in_c, out_c) = (g.in_c, g.out_c);
    let pairs = in_c / 2;
    let weights = widen(packed, 0);
    let stage = Int16Stage::new(p, bias, out_c);
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
                    let w = &packed[block * in_c * LANES + pairs * 2 * LANES..][..LANES];
                    for (a, row) in acc.iter_mut().zip(x) {
                        for i in 0..LANES {
                            a[i] = p.mac(a[i], row[in_c - 1], w[i]);
                        }
                    }
                }
                let oc0 = block * LANES;
                let lanes = LANES.min(out_c - oc0);
                for (a, out) in acc.iter().zip(out.chunks_exact_mut(out_c)) {
                    for (i, o) in out[oc0..][..lanes].iter_mut().enumerate() {
                        *o = stage.finish(a[i], oc0 + i);
                    }
                }
            }
        }
    });
}

/// int8 DEPTHWISE_CONV_2D (multiplier 1): per tap, 16 channels of `(x − zp_x) · (w − zp_w)` with
/// `i32x4.extmul_*_i16x8_s` (both factors within ±255, widened once per call), in four 32-bit
/// accumulators, then the output stage in SIMD ([`Requant`]).
pub fn depthwise_int8(
    p: &ConvParams,
    g: &ConvGeom,
    input: &[i8],
    filter: &[i8],
    bias: Option<&[i32]>,
    output: &mut [i8],
) {
    let Some(rq) = Requant::new(p, bias, g.out_c) else {
        return generic::depthwise_conv2d_channels(p, g, input, filter, bias, output);
    };
    // Input and filter widened once per call to i16 with their offsets added: each input value is
    // read by up to k_h · k_w taps, so this takes the extends and adds out of the tap loop. Padded,
    // so that a last block of fewer than 16 channels (all of them in VWW's 8-channel layers) runs
    // here too: its extra lanes read the next pixel's channels or the padding and are not stored.
    let (xw, fw) = (widen_padded(input, p.input_offset), widen_padded(filter, p.filter_offset));
    generic::depthwise_walk(g, output, |taps, c0, out| {
        if out.len() <= 8 {
            // Half a block (VWW's first layers have 8 channels): half the products and output stage.
            let mut v = [i32x4_splat(0); 2];
            for &(xo, wo) in taps {
                let (xs, ws) = (&xw[xo + c0..][..8], &fw[wo + c0..][..8]);
                // SAFETY: both slices are 8 i16, one vector each.
                let (x, w) = unsafe { (v128_load(xs.as_ptr().cast()), v128_load(ws.as_ptr().cast())) };
                mac8(&mut v, x, w);
            }
            return store_i8(out, rq.apply8(&v, c0 / LANES));
        }
        let mut v = [i32x4_splat(0); 4];
        for &(xo, wo) in taps {
            let (xs, ws) = (&xw[xo + c0..][..LANES], &fw[wo + c0..][..LANES]);
            // SAFETY: both slices are LANES = 16 i16, two vectors each.
            let (xl, xh, wl, wh) = unsafe {
                (
                    v128_load(xs.as_ptr().cast()),
                    v128_load(xs.as_ptr().add(8).cast()),
                    v128_load(ws.as_ptr().cast()),
                    v128_load(ws.as_ptr().add(8).cast()),
                )
            };
            mac16(&mut v, [xl, xh], [wl, wh]);
        }
        store_i8(out, rq.apply16(&v, c0 / LANES));
    });
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
    let stage = Int16Stage::new(p, bias, g.out_c);
    generic::depthwise_blocks(
        g,
        output,
        |taps, c0, n, acc: &mut [i64; LANES]| {
            if n < LANES {
                *acc = generic::depthwise_block(p, input, filter, taps, c0, n);
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
        |acc, oc| stage.finish(acc, oc),
    );
}

/// The fp32 output stage of [`MacStage::finish`] for [`fp32::ConvParams`], four channels at a time:
/// `acc + bias` (`+ 0.0` without a bias, which turns a `-0.0` sum into `+0.0` exactly like the scalar
/// code), then `pmax`/`pmin`, whose `a < b ? b : a` / `b < a ? b : a` are the scalar clamp's comparisons
/// (a NaN stays NaN, `-0.0` is not raised to a `0.0` bound), unlike the NaN-propagating `f32x4.min/max`.
struct F32Stage {
    bias: Vec<v128>,
    lo: v128,
    hi: v128,
}

impl F32Stage {
    fn new(p: &fp32::ConvParams, bias: Option<&[f32]>, out_c: usize) -> Self {
        // The padding lanes of the last block get 0.0; their results are never stored.
        let mut b = vec![0f32; out_c.div_ceil(LANES) * LANES];
        if let Some(bias) = bias {
            b[..out_c].copy_from_slice(&bias[..out_c]);
        }
        Self {
            bias: b.chunks_exact(4).map(|c| f32x4(c[0], c[1], c[2], c[3])).collect(),
            lo: f32x4_splat(p.act_min),
            hi: f32x4_splat(p.act_max),
        }
    }

    /// Finishes the LANES accumulators of `block` into `out` (its first `out.len()` channels).
    #[inline(always)]
    fn store16(&self, out: &mut [f32], v: &[v128; 4], block: usize) {
        let r: [v128; 4] = core::array::from_fn(|k| {
            f32x4_pmin(f32x4_pmax(f32x4_add(v[k], self.bias[4 * block + k]), self.lo), self.hi)
        });
        let mut lanes = [0f32; LANES];
        let dst = match <&mut [f32; LANES]>::try_from(&mut *out) {
            Ok(out) => out,
            Err(_) => &mut lanes,
        };
        for (k, r) in r.into_iter().enumerate() {
            // SAFETY: `dst` is LANES = 16 f32, four vectors.
            unsafe { v128_store(dst.as_mut_ptr().add(4 * k).cast(), r) };
        }
        let n = out.len();
        if n < LANES {
            out.copy_from_slice(&lanes[..n]);
        }
    }
}

/// `acc + x · w` on four lanes: the product rounded, then the sum rounded (no fusing), operands in the
/// scalar code's order so even NaN payloads come out the same.
#[inline(always)]
fn mac_f32(acc: v128, x: v128, w: v128) -> v128 {
    f32x4_add(acc, f32x4_mul(x, w))
}

/// fp32 1x1 CONV_2D. The pair-interleaved packing of [`generic::pack_pointwise`] suits a widening dot
/// product, not float lanes (each output must add channel `2j` before `2j + 1`), so the weights are
/// first de-interleaved into `[block][in channel][LANES]`: one pass over the filter per call, against
/// one pass per pixel in the product. Then two pixels by 16 output channels at a time: 8 accumulators,
/// 2 input splats and a weight vector. Cranelift still moves 4 of the accumulators through the stack on
/// every channel; tiles of 8 channels or of one pixel avoid that but measured slower. Each
/// output adds its input channels in ascending order from `0.0`, as [`generic::pointwise_conv2d`] does.
pub fn pointwise_fp32(
    p: &fp32::ConvParams,
    g: &ConvGeom,
    input: &[f32],
    packed: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) {
    let (in_c, out_c) = (g.in_c, g.out_c);
    let stage = F32Stage::new(p, bias, out_c);
    let pairs = in_c / 2;
    let mut weights = vec![0f32; packed.len()];
    for (src, dst) in packed.chunks_exact(in_c * LANES).zip(weights.chunks_exact_mut(in_c * LANES)) {
        for (s, d) in src[..pairs * 2 * LANES].chunks_exact(2 * LANES).zip(dst.chunks_exact_mut(2 * LANES)) {
            let (even, odd) = d.split_at_mut(LANES);
            for i in 0..LANES {
                even[i] = s[2 * i];
                odd[i] = s[2 * i + 1];
            }
        }
        let tail = pairs * 2 * LANES;
        dst[tail..].copy_from_slice(&src[tail..]);
    }
    generic::pointwise_groups(g, input, output, |rows, out| {
        for block in 0..out_c.div_ceil(LANES) {
            let ws = &weights[block * in_c * LANES..][..in_c * LANES];
            let oc0 = block * LANES;
            let lanes = LANES.min(out_c - oc0);
            for (half, out) in out.chunks_mut(2 * out_c).enumerate() {
                let x = [rows[2 * half].as_ptr(), rows[2 * half + 1].as_ptr()];
                let mut v = [[f32x4_splat(0.0); LANES / 4]; 2];
                for (ic, w) in ws.chunks_exact(LANES).enumerate() {
                    // SAFETY: `ic < in_c`, the length of each row; `w` is LANES = 16 f32, four vectors.
                    unsafe {
                        let xs = [v128_load32_splat(x[0].add(ic).cast()), v128_load32_splat(x[1].add(ic).cast())];
                        // `k` picks the k-th vector of both rows' accumulators and of the weights at once.
                        #[allow(clippy::needless_range_loop)]
                        for k in 0..LANES / 4 {
                            let wk = v128_load(w.as_ptr().add(4 * k).cast());
                            v[0][k] = mac_f32(v[0][k], xs[0], wk);
                            v[1][k] = mac_f32(v[1][k], xs[1], wk);
                        }
                    }
                }
                for (vp, out) in v.iter().zip(out.chunks_exact_mut(out_c)) {
                    stage.store16(&mut out[oc0..][..lanes], vp, block);
                }
            }
        }
    });
}

/// fp32 CONV_2D on a filter packed by [`generic::pack_conv`] (the 3x3 stem): per tap and input
/// channel, one input splat times 16 weights, in [`generic::conv2d_packed`]'s order.
pub fn conv_packed_fp32(
    p: &fp32::ConvParams,
    g: &ConvGeom,
    input: &[f32],
    packed: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) {
    let (in_c, out_c) = (g.in_c, g.out_c);
    let stage = F32Stage::new(p, bias, out_c);
    let k = g.k_h * g.k_w * in_c;
    generic::packed_walk(g, output, |taps, out| {
        for (block, ws) in packed.chunks_exact(k * LANES).enumerate() {
            let mut v = [f32x4_splat(0.0); 4];
            for &(xo, wo) in taps {
                for (&x, w) in input[xo..][..in_c].iter().zip(ws[wo * LANES..][..in_c * LANES].chunks_exact(LANES)) {
                    let x = f32x4_splat(x);
                    for (kk, v) in v.iter_mut().enumerate() {
                        // SAFETY: `w` is LANES = 16 f32, four vectors.
                        *v = mac_f32(*v, x, unsafe { v128_load(w.as_ptr().add(4 * kk).cast()) });
                    }
                }
            }
            let oc0 = block * LANES;
            stage.store16(&mut out[oc0..][..LANES.min(out_c - oc0)], &v, block);
        }
    });
}

/// fp32 DEPTHWISE_CONV_2D (multiplier 1): per tap, 16 channels of `x · w` added to four accumulators,
/// taps in TFLite's order; a last partial block takes the scalar [`generic::depthwise_block`].
pub fn depthwise_fp32(
    p: &fp32::ConvParams,
    g: &ConvGeom,
    input: &[f32],
    filter: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) {
    let stage = F32Stage::new(p, bias, g.out_c);
    generic::depthwise_walk(g, output, |taps, c0, out| {
        if out.len() < LANES {
            return generic::depthwise_block_into(p, input, filter, bias, taps, c0, out);
        }
        let mut v = [f32x4_splat(0.0); 4];
        for &(xo, wo) in taps {
            let (xs, ws) = (&input[xo + c0..][..LANES], &filter[wo + c0..][..LANES]);
            for (k, v) in v.iter_mut().enumerate() {
                // SAFETY: both slices are LANES = 16 f32, four vectors each.
                let (x, w) =
                    unsafe { (v128_load(xs.as_ptr().add(4 * k).cast()), v128_load(ws.as_ptr().add(4 * k).cast())) };
                *v = mac_f32(*v, x, w);
            }
        }
        stage.store16(out, &v, c0 / LANES);
    });
}

#[cfg(test)]
mod tests {
    //! Run by `cargo xtask test` inside wasm32-wasip2 with simd128 (the only place this module exists).
    use super::*;
    use crate::kernels::fixedpoint::QuantizedMultiplier;
    use proptest::prelude::*;

    /// Any multiplier [`crate::kernels::fixedpoint::quantize_multiplier`] can produce (significand in [2^30, 2^31)
    /// or 0) with shifts from a large left shift down to the deepest right shift [`Requant`] takes.
    /// Significands with 28 trailing zero bits make `x · m` land exactly halfway between multiples of
    /// 2^31 for many `x`, the ties of `SaturatingRoundingDoublingHighMul`'s rounding.
    fn multiplier() -> impl Strategy<Value = QuantizedMultiplier> {
        prop_oneof![
            ((1i32 << 30)..=i32::MAX, -30..=8i32)
                .prop_map(|(multiplier, shift)| QuantizedMultiplier { multiplier, shift }),
            (4i32..8, -30..=8i32).prop_map(|(k, shift)| QuantizedMultiplier { multiplier: k << 28, shift }),
            Just(QuantizedMultiplier { multiplier: 0, shift: 0 }),
        ]
    }

    fn accumulator() -> impl Strategy<Value = i32> {
        // Small sums (where ties of the rounding steps are common) and the whole range.
        prop_oneof![-4096..=4096i32, any::<i32>()]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn simd_output_stage_equals_finish(
            mut multipliers in proptest::collection::vec(multiplier(), 1..=40),
            per_tensor in any::<bool>(),
            acc in proptest::collection::vec(accumulator(), 48),
            bias in proptest::collection::vec(any::<i32>(), 40),
            with_bias in any::<bool>(),
            output_offset in -128..=127i32,
            range in (-128..=127i32, -128..=127i32),
        ) {
            let out_c = multipliers.len();
            if per_tensor {
                multipliers.truncate(1);
            }
            let p = ConvParams {
                input_offset: 0,
                filter_offset: 0,
                output_offset,
                multipliers,
                act_min: range.0.min(range.1),
                act_max: range.0.max(range.1),
            };
            let bias = with_bias.then_some(&bias[..out_c]);
            let rq = Requant::new(&p, bias, out_c).expect("right shifts <= 30");
            for block in 0..out_c.div_ceil(LANES) {
                let acc = &acc[block * LANES..][..LANES];
                let v: [v128; 4] = core::array::from_fn(|k| i32x4(acc[4 * k], acc[4 * k + 1], acc[4 * k + 2], acc[4 * k + 3]));
                let mut got = [0i8; LANES];
                store_i8(&mut got, rq.apply16(&v, block));
                for i in 0..LANES.min(out_c - block * LANES) {
                    let ch = block * LANES + i;
                    prop_assert_eq!(got[i], p.finish(acc[i], bias.map(|b| b[ch]), ch), "channel {}", ch);
                }
            }
        }

        #[test]
        fn simd_add_equals_scalar(
            (a, b) in (0..70usize).prop_flat_map(|n| (proptest::collection::vec(any::<i8>(), n), proptest::collection::vec(any::<i8>(), n))),
            (s1, s2, so) in (crate::kernels::testutil::scale(), crate::kernels::testutil::scale(), crate::kernels::testutil::scale()),
            (z1, z2, zo) in (-128..=127i32, -128..=127i32, -128..=127i32),
            act in crate::kernels::testutil::activation(),
        ) {
            use crate::kernels::TensorQuant;
            let p = crate::kernels::int8::AddParams::prepare(TensorQuant::new(s1, z1), TensorQuant::new(s2, z2), TensorQuant::new(so, zo), act).unwrap();
            let mut fast = vec![0i8; a.len()];
            let mut slow = vec![0i8; a.len()];
            add_rescale(&p.rescale, &a, &b, &mut fast);
            p.rescale.add_all(&a, &b, &mut slow);
            prop_assert_eq!(fast, slow);
        }

        #[test]
        fn simd_add_int16_equals_scalar(
            (a, b) in (0..70usize).prop_flat_map(|n| (proptest::collection::vec(any::<i16>(), n), proptest::collection::vec(any::<i16>(), n))),
            (s1, s2, so) in (crate::kernels::testutil::scale(), crate::kernels::testutil::scale(), crate::kernels::testutil::scale()),
            act in crate::kernels::testutil::activation(),
        ) {
            use crate::kernels::int16::{AddKind, AddParams};
            use crate::kernels::TensorQuant;
            let p = AddParams::prepare(TensorQuant::new(s1, 0), TensorQuant::new(s2, 0), TensorQuant::new(so, 0), act, false).expect("the general path");
            let AddKind::General(rescale) = &p.kind else { unreachable!("pot_scale_int16 = false") };
            let mut fast = vec![0i16; a.len()];
            let mut slow = vec![0i16; a.len()];
            add_rescale(rescale, &a, &b, &mut fast);
            rescale.add_all(&a, &b, &mut slow);
            prop_assert_eq!(fast, slow);
        }

        #[test]
        fn int16_stage_equals_finish(
            multipliers in proptest::collection::vec(
                ((1i32 << 30)..=i32::MAX, -40..=10i32).prop_map(|(multiplier, shift)| QuantizedMultiplier { multiplier, shift }),
                1..=20,
            ),
            acc in proptest::collection::vec(prop_oneof![-(1i64 << 20)..=(1i64 << 20), any::<i64>()], 20),
            bias in proptest::collection::vec(any::<i64>(), 20),
            with_bias in any::<bool>(),
            range in (-32768..=32767i32, -32768..=32767i32),
        ) {
            let out_c = multipliers.len();
            let p = crate::kernels::int16::ConvParams {
                multipliers,
                act_min: range.0.min(range.1),
                act_max: range.0.max(range.1),
            };
            let bias = with_bias.then_some(&bias[..out_c]);
            let stage = Int16Stage::new(&p, bias, out_c);
            for ch in 0..out_c {
                prop_assert_eq!(stage.finish(acc[ch], ch), p.finish(acc[ch], bias.map(|b| b[ch]), ch), "channel {}", ch);
            }
        }
    }
}
