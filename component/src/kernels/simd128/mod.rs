//! wasm `simd128` micro-kernels, compiled only into the SIMD build (`dist/classifier-simd.wasm`), one
//! file per precision; this one holds what they share (fixed-point rounding on four lanes, 16-lane
//! multiply-accumulate, loads and stores) and the quantized ADD.
//!
//! Each kernel computes exactly what the portable kernel of its loop computes (integer sums are exact
//! in any order and wrap the same way; float ones add each output's products in the portable kernel's
//! order, each product and sum rounded on its own), so the scalar build, the native build and this one
//! give the same bits. Kernels run only where [`super::select`] picked them and read an output stage
//! built at plan time ([`super::stage`]); they have no fallbacks of their own. `cargo xtask test` runs
//! the kernel proptests inside wasm32-wasip2 with simd128, and the runtime matrix checks every golden
//! case end to end.

use core::arch::wasm32::*;

use super::fixedpoint::QuantizedMultiplier;
use super::generic::{self, LANES};

pub mod fp32;
pub mod int16;
pub mod int8;

/// Four 32-bit lanes from `a[..4]`.
#[inline(always)]
fn load4<T: Copy>(a: &[T; 4]) -> v128 {
    // SAFETY: `a` is four 32-bit values, 16 bytes.
    unsafe { v128_load(a.as_ptr().cast()) }
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
fn uniform_multiplier(m: QuantizedMultiplier) -> Option<[v128; 4]> {
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
        debug_assert!(false, "select::add_arch picks this kernel only where rescale_fits_simd");
        return p.add_all(input1, input2, output);
    };
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
    assert_eq!(src.len(), dst.len());
    // SAFETY: `dst` holds `src.len()` writable i16.
    unsafe { widen_raw(src, offset, dst.as_mut_ptr()) }
}

/// [`widen_into`] onto `src.len()` possibly uninitialised i16 at `dst`.
///
/// # Safety
/// `dst` must be valid for `src.len()` writes of i16.
unsafe fn widen_raw(src: &[i8], offset: i32, dst: *mut i16) {
    let o = i16x8_splat(offset as i16);
    let full = src.len() / LANES * LANES;
    for (i, x) in src[..full].chunks_exact(LANES).enumerate() {
        // SAFETY: `x` is 16 bytes; elements 16i..16i + 16 of `dst` (32 bytes) are in the caller's range.
        unsafe {
            let v = v128_load(x.as_ptr().cast());
            let w = dst.add(i * LANES);
            v128_store(w.cast(), i16x8_add(i16x8_extend_low_i8x16(v), o));
            v128_store(w.add(8).cast(), i16x8_add(i16x8_extend_high_i8x16(v), o));
        }
    }
    for (i, &x) in src.iter().enumerate().skip(full) {
        // SAFETY: `i < src.len()`.
        unsafe { dst.add(i).write((i32::from(x) + offset) as i16) };
    }
}

/// [`widen_into`] a new vector, followed by `zeros` zeros. Not zeroed first: the widened copies of
/// inputs and 1x1 filters are rebuilt on every call, and clearing them was 2% of an inference.
fn widen_then_zeros(src: &[i8], offset: i32, zeros: usize) -> Vec<i16> {
    let n = src.len();
    let mut dst = Vec::with_capacity(n + zeros);
    // SAFETY: the capacity is at least `n + zeros`; the first `n` are written by `widen_raw`, the rest
    // here, before the length covers them.
    unsafe {
        widen_raw(src, offset, dst.as_mut_ptr());
        dst.as_mut_ptr().add(n).write_bytes(0, zeros);
        dst.set_len(n + zeros);
    }
    dst
}

/// [`widen_into`] a new vector.
fn widen(src: &[i8], offset: i32) -> Vec<i16> {
    widen_then_zeros(src, offset, 0)
}

/// [`widen`] with [`LANES`] zeros after the end, so that a block of LANES channels starting at any
/// element can be loaded whole.
fn widen_padded(src: &[i8], offset: i32) -> Vec<i16> {
    widen_then_zeros(src, offset, LANES)
}

#[cfg(test)]
mod tests {
    //! Run by `cargo xtask test` inside wasm32-wasip2 with simd128 (the only place this module exists).
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn this_build_selects_simd128() {
        assert_eq!(crate::kernels::select::Arch::current(), crate::kernels::select::Arch::Simd128);
    }

    proptest! {
        #[test]
        fn widen_padded_is_offset_values_then_zeros(src in proptest::collection::vec(any::<i8>(), 0..70), offset in -255..=255i32) {
            let want: Vec<i16> = src.iter().map(|&x| (i32::from(x) + offset) as i16).chain([0; LANES]).collect();
            prop_assert_eq!(widen_padded(&src, offset), want);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn simd_add_equals_scalar(
            (a, b) in (0..70usize).prop_flat_map(|n| (proptest::collection::vec(any::<i8>(), n), proptest::collection::vec(any::<i8>(), n))),
            (s1, s2, so) in (crate::kernels::testutil::scale(), crate::kernels::testutil::scale(), crate::kernels::testutil::scale()),
            (z1, z2, zo) in (-128..=127i32, -128..=127i32, -128..=127i32),
            act in crate::kernels::testutil::activation(),
        ) {
            use crate::kernels::TensorQuant;
            let p = crate::kernels::int8::AddParams::prepare(TensorQuant::new(s1, z1), TensorQuant::new(s2, z2), TensorQuant::new(so, zo), act).unwrap();
            prop_assume!(crate::kernels::select::rescale_fits_simd(&p.rescale));
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
            prop_assume!(crate::kernels::select::rescale_fits_simd(rescale));
            let mut fast = vec![0i16; a.len()];
            let mut slow = vec![0i16; a.len()];
            add_rescale(rescale, &a, &b, &mut fast);
            rescale.add_all(&a, &b, &mut slow);
            prop_assert_eq!(fast, slow);
        }
    }
}
