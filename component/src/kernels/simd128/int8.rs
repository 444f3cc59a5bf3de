//! int8 micro-kernels: 1x1 and packed CONV_2D, DEPTHWISE_CONV_2D, and their output stage.

use core::arch::wasm32::*;

use super::{
    load4, mac16, mac8, multiply_by_quantized_multiplier, packed_block16, store_i8, widen, widen_into, widen_padded,
};
use crate::kernels::generic::{self, LANES};
use crate::kernels::stage::Int8Stage;
use crate::kernels::ConvGeom;

/// [`Int8Stage`] with its per-tensor values splatted, applied to accumulators with the same result as
/// `int8::ConvParams::finish` for every accumulator.
pub(super) struct Requant<'a> {
    groups: &'a [[[i32; 4]; 6]],
    offset: v128,
    min: v128,
    max: v128,
    one: Option<OneRounding>,
}

/// The splatted constants of the one-rounding stage for a right shift `e` shared by every channel:
/// `floor((x·m + K)/2^(31+e))` with `K = 2^30 + 2^(30+e) − [x·m < 0]·2^31` (for `e >= 1`; `2^30` for
/// `e = 0`). simd128's 64-bit right shift is logical (one x86 instruction; the arithmetic one is
/// emulated), so 2^63 is added first (an order-preserving map to unsigned) and its image, `2^(32−e)`,
/// subtracted from the 32-bit result.
struct OneRounding {
    k: v128,
    sign: v128,
    shift: u32,
    unbias: v128,
}

impl OneRounding {
    fn new(e: u32) -> Self {
        debug_assert!(e <= 30);
        let k = (1i64 << 30).wrapping_add(if e == 0 { 0 } else { 1 << (30 + e) }).wrapping_add(i64::MIN);
        Self {
            k: i64x2_splat(k),
            sign: i64x2_splat(if e == 0 { 0 } else { 1 << 31 }),
            shift: 31 + e,
            unbias: i32x4_splat((1i64 << (32 - e)) as i32),
        }
    }

    /// [`multiply_by_quantized_multiplier_one_rounding`](crate::kernels::fixedpoint::multiply_by_quantized_multiplier_one_rounding)
    /// of four lanes `x` by their multipliers `mult`.
    #[inline(always)]
    fn apply(&self, x: v128, mult: v128) -> v128 {
        let round = |p: v128| {
            let negative = i64x2_lt(p, i64x2_splat(0));
            u64x2_shr(i64x2_sub(i64x2_add(p, self.k), v128_and(negative, self.sign)), self.shift)
        };
        let q = i32x4_shuffle::<0, 2, 4, 6>(
            round(i64x2_extmul_low_i32x4(x, mult)),
            round(i64x2_extmul_high_i32x4(x, mult)),
        );
        i32x4_sub(q, self.unbias)
    }
}

impl<'a> Requant<'a> {
    pub(super) fn of(st: &'a Int8Stage) -> Self {
        Self {
            groups: &st.groups,
            offset: i32x4_splat(st.output_offset),
            min: i32x4_splat(st.act_min),
            max: i32x4_splat(st.act_max),
            one: st.uniform_right_shift.map(OneRounding::new),
        }
    }

    /// Four accumulators of channel group `group` to four clamped outputs (as i32 lanes).
    #[inline(always)]
    fn apply4(&self, acc: v128, group: usize) -> v128 {
        let rounded = match &self.one {
            Some(one) => {
                let [bias, _, mult, ..] = &self.groups[group];
                one.apply(i32x4_add(acc, load4(bias)), load4(mult))
            }
            None => {
                let [bias, lmul, mult, pmul, mask, half] = self.groups[group].each_ref().map(load4);
                let x = i32x4_mul(i32x4_add(acc, bias), lmul);
                multiply_by_quantized_multiplier(x, mult, pmul, mask, half)
            }
        };
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
    pub(super) fn apply16(&self, v: &[v128; 4], block: usize) -> v128 {
        let g = block * 4;
        let (a, b, c, d) =
            (self.apply4(v[0], g), self.apply4(v[1], g + 1), self.apply4(v[2], g + 2), self.apply4(v[3], g + 3));
        // Already clamped to the int8 activation range, so the saturating narrows are exact.
        i8x16_narrow_i16x8(i16x8_narrow_i32x4(a, b), i16x8_narrow_i32x4(c, d))
    }
}

/// int8 1x1 CONV_2D on the pair-interleaved packing of [`generic::pack_pointwise`]. Per group of
/// [`generic::PIXELS`] pixels the input rows are widened once to 16 bits with the input offset added;
/// then, per pair of input channels, `i32x4.dot_i16x8_s` multiplies the pair (one 32-bit splat load) by
/// two offset weights for four output channels and adds both products into 32 bits. Offsets fit 16
/// bits: `x − zp_x` and `w − zp_w` are within ±255. The output stage runs in SIMD too ([`Requant`], built at plan time).
pub fn pointwise(st: &Int8Stage, g: &ConvGeom, input: &[i8], packed: &[i8], output: &mut [i8]) {
    let rq = Requant::of(st);
    let (in_c, out_c) = (g.in_c, g.out_c);
    let pairs = in_c / 2;
    // One widened row per pixel, 16-bit, rounded up to whole vectors.
    let stride = in_c.next_multiple_of(LANES);
    let mut wide = vec![0i16; generic::PIXELS * stride];
    // The weights widened once per call to i16 with the filter offset added, in the same packed order
    // (kept widened in the stage instead, they measured no faster: see `kernels::stage`).
    let weights = widen(packed, st.filter_offset);
    generic::pointwise_groups(g, input, output, |rows, out| {
        for (row, wide) in rows.iter().zip(wide.chunks_exact_mut(stride)) {
            widen_into(row, st.input_offset, &mut wide[..in_c]);
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
/// and input channel, one offset input splat times 16 offset weights (the stage's, widened when the plan is bound) with
/// `i32x4.extmul_*_i16x8_s` (8 when there are at most 8 output channels),
/// then the output stage in SIMD ([`Requant`], built at plan time).
pub fn conv_packed(st: &Int8Stage, g: &ConvGeom, input: &[i8], output: &mut [i8]) {
    let rq = Requant::of(st);
    let (in_c, out_c) = (g.in_c, g.out_c);
    let k = g.k_h * g.k_w * in_c;
    let weights = &st.weights;
    generic::packed_walk(g, output, |taps, out| {
        if out_c <= 8 {
            // Half a block (VWW's first layer has 8 output channels).
            let mut v = [i32x4_splat(0); 2];
            for &(xo, wo) in taps {
                for (&x, w) in input[xo..][..in_c].iter().zip(weights[wo * LANES..][..in_c * LANES].chunks_exact(LANES))
                {
                    let x = i16x8_splat((i32::from(x) + st.input_offset) as i16);
                    // SAFETY: `w` is LANES = 16 i16; the first 8 are read.
                    let w = unsafe { v128_load(w.as_ptr().cast()) };
                    mac8(&mut v, x, w);
                }
            }
            return store_i8(out, rq.apply8(&v, 0));
        }
        for (block, ws) in weights.chunks_exact(k * LANES).enumerate() {
            let v = packed_block16(taps, input, ws, in_c, |x| i16x8_splat((i32::from(x) + st.input_offset) as i16));
            let oc0 = block * LANES;
            store_i8(&mut out[oc0..][..LANES.min(out_c - oc0)], rq.apply16(&v, block));
        }
    });
}

/// int8 DEPTHWISE_CONV_2D (multiplier 1): 16 channels of `(x − zp_x) · (w − zp_w)` summed over the
/// taps in four 32-bit accumulators (both factors within ±255, the input widened once per call, the filter
/// when the plan is bound), then the output
/// stage in SIMD ([`Requant`], built at plan time). A pixel with its whole window inside the input
/// takes its taps two at a time: both taps' inputs interleaved per channel (`i16x8.shuffle`, one
/// x86 unpack) against the filter interleaved the same way in the stage, so one `i32x4.dot_i16x8_s`
/// does both taps of four channels, where `extmul` (three x86 instructions each) does one. Border
/// pixels, whose taps are a subset, take them one at a time.
pub fn depthwise(st: &Int8Stage, g: &ConvGeom, input: &[i8], output: &mut [i8]) {
    let rq = Requant::of(st);
    // The input widened once per call to i16 with its offset added: each input value is read by up
    // to k_h · k_w taps, so this takes the extends and adds out of the tap loop. Padded, like the
    // stage's filter, so that a last block of fewer than 16 channels (all of them in VWW's 8-channel
    // layers) runs here too: its extra lanes read the next pixel's channels or the padding and are
    // not stored.
    let xw = widen_padded(input, st.input_offset);
    let (fw, paired) = (&st.weights, &st.tap_pairs);
    let c = g.in_c;
    let taps = g.k_h * g.k_w;
    let cp = c.next_multiple_of(LANES);
    generic::depthwise_walk(g, output, |t, c0, out| {
        if out.len() < LANES || t.len() < taps {
            return depthwise_block(&rq, &xw, fw, t, c0, out);
        }
        let mut v = [i32x4_splat(0); 4];
        for (j, pair) in t.chunks_exact(2).enumerate() {
            // A whole window lists its taps in filter order (`generic::depthwise_walk`).
            debug_assert_eq!((pair[0].1, pair[1].1), (2 * j * c, (2 * j + 1) * c));
            let (x1, x2) = (&xw[pair[0].0 + c0..][..LANES], &xw[pair[1].0 + c0..][..LANES]);
            let w = &paired[(j * cp + c0) * 2..][..2 * LANES];
            // SAFETY: `x1` and `x2` are LANES = 16 i16 (two vectors each), `w` 32 i16 (four).
            unsafe {
                let (a0, a1) = (v128_load(x1.as_ptr().cast()), v128_load(x1.as_ptr().add(8).cast()));
                let (b0, b1) = (v128_load(x2.as_ptr().cast()), v128_load(x2.as_ptr().add(8).cast()));
                let xs = [
                    i16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(a0, b0),
                    i16x8_shuffle::<4, 12, 5, 13, 6, 14, 7, 15>(a0, b0),
                    i16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(a1, b1),
                    i16x8_shuffle::<4, 12, 5, 13, 6, 14, 7, 15>(a1, b1),
                ];
                for (k, x) in xs.into_iter().enumerate() {
                    v[k] = i32x4_add(v[k], i32x4_dot_i16x8(x, v128_load(w.as_ptr().add(8 * k).cast())));
                }
            }
        }
        if taps % 2 == 1 {
            let (xo, wo) = t[taps - 1];
            let (xs, ws) = (&xw[xo + c0..][..LANES], &fw[wo + c0..][..LANES]);
            // SAFETY: both slices are LANES = 16 i16, two vectors each.
            unsafe {
                let x = [v128_load(xs.as_ptr().cast()), v128_load(xs.as_ptr().add(8).cast())];
                mac16(&mut v, x, [v128_load(ws.as_ptr().cast()), v128_load(ws.as_ptr().add(8).cast())]);
            }
        }
        store_i8(out, rq.apply16(&v, c0 / LANES));
    });
}

/// One pixel's block of up to 16 channels of [`depthwise`], from the widened input `xw` and filter `fw`.
#[inline(always)]
fn depthwise_block(rq: &Requant, xw: &[i16], fw: &[i16], taps: &[(usize, usize)], c0: usize, out: &mut [i8]) {
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
}

#[cfg(test)]
mod tests {
    //! Run by `cargo xtask test` inside wasm32-wasip2 with simd128 (the only place this module exists).
    use super::*;
    use crate::kernels::fixedpoint::QuantizedMultiplier;
    use crate::kernels::generic::MacStage;
    use crate::kernels::int8::ConvParams;
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
            same_shift in any::<bool>(),
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
            if same_shift {
                // Per-channel multipliers with one shift: the one-rounding stage when it shifts right.
                let shift = multipliers[0].shift;
                multipliers.iter_mut().for_each(|m| m.shift = shift);
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
            let st = Int8Stage::new(&p, bias, out_c).expect("right shifts <= 30");
            let rq = Requant::of(&st);
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
    }
}
