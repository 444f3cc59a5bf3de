//! Fixed-point arithmetic exactly as TFLite's reference kernels do it.
//!
//! Everything here mirrors a definition in TFLite (`kernels/internal/quantization_util.cc`,
//! `kernels/internal/common.{h,cc}`, `kernels/kernel_util.cc`) or gemmlowp (`fixedpoint/fixedpoint.h`),
//! in a standard build: `TFLITE_SINGLE_ROUNDING` is **off**, so
//! [`multiply_by_quantized_multiplier`] is the *double-rounding* gemmlowp form (a rounding doubling
//! high multiply followed by a rounding right shift), and [`quantize_multiplier`] does not clamp shifts
//! above 30.
//!
//! Conventions:
//! * A real multiplier `M` is stored as [`QuantizedMultiplier`] `{ multiplier, shift }` with
//!   `M ≈ multiplier · 2^(shift − 31)`, `multiplier` in `[2^30, 2^31)` (or 0). `shift` follows TFLite's
//!   sign convention: **positive = left shift**.
//! * Where C++ would hit undefined behaviour on integer overflow we wrap (what the compilers used for the
//!   reference builds do in practice); shift amounts are clamped so nothing here panics.

use crate::kernels::Activation;

/// A real multiplier in TFLite's fixed-point form: `real ≈ multiplier · 2^(shift − 31)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct QuantizedMultiplier {
    /// Q0.31 significand, in `[2^30, 2^31)` for positive multipliers, 0 for a zero multiplier.
    pub multiplier: i32,
    /// Power-of-two exponent, positive = left shift (TFLite's convention).
    pub shift: i32,
}

impl QuantizedMultiplier {
    /// `QuantizeMultiplier(real)`.
    pub fn new(real: f64) -> Self {
        quantize_multiplier(real)
    }

    /// The real value this pair stands for (for tests and diagnostics).
    pub fn to_f64(self) -> f64 {
        f64::from(self.multiplier) * 2f64.powi(self.shift - 31)
    }

    /// `MultiplyByQuantizedMultiplier(int32 x, ...)`: the double-rounding 32-bit form.
    #[inline]
    pub fn apply(self, x: i32) -> i32 {
        multiply_by_quantized_multiplier(x, self.multiplier, self.shift)
    }

    /// `MultiplyByQuantizedMultiplier(int64 x, ...)`: the 16x8 form with a 16-bit reduced multiplier.
    #[inline]
    pub fn apply_i64(self, x: i64) -> i32 {
        multiply_by_quantized_multiplier_i64(x, self.multiplier, self.shift)
    }
}

/// `std::frexp` for doubles: `x = m · 2^e` with `|m|` in `[0.5, 1)`; zero, infinities and NaN come back
/// unchanged with exponent 0.
pub fn frexp(x: f64) -> (f64, i32) {
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    if biased == 0 {
        // Subnormal: normalise first.
        let (m, e) = frexp(x * 2f64.powi(64));
        return (m, e - 64);
    }
    let mantissa = f64::from_bits((bits & !(0x7ff_u64 << 52)) | (1022_u64 << 52));
    (mantissa, biased - 1022)
}

/// `QuantizeMultiplier(double, int32_t*, int*)`: significand rounded half away from zero
/// (`TfLiteRound(q · 2^31)`), renormalised when it rounds up to 2^31, flushed to zero below 2^-31.
pub fn quantize_multiplier(real: f64) -> QuantizedMultiplier {
    if real == 0.0 || !real.is_finite() {
        return QuantizedMultiplier { multiplier: 0, shift: 0 };
    }
    let (q, mut shift) = frexp(real);
    let mut q_fixed = (q * (1u64 << 31) as f64).round() as i64;
    if q_fixed == 1 << 31 {
        q_fixed /= 2;
        shift += 1;
    }
    if shift < -31 {
        shift = 0;
        q_fixed = 0;
    }
    QuantizedMultiplier { multiplier: q_fixed as i32, shift }
}

/// `QuantizeMultiplierSmallerThanOneExp`: the same decomposition, for multipliers in `(0, 1)` (the
/// returned `shift` is then `<= 0`; it is TFLite's "left_shift", i.e. the same sign convention).
pub fn quantize_multiplier_smaller_than_one_exp(real: f64) -> QuantizedMultiplier {
    debug_assert!(real < 1.0 && real > 0.0, "multiplier {real} not in (0, 1)");
    quantize_multiplier(real)
}

/// `QuantizeMultiplierGreaterThanOne`: the same decomposition, for multipliers `> 1` (`shift >= 0`).
pub fn quantize_multiplier_greater_than_one(real: f64) -> QuantizedMultiplier {
    debug_assert!(real > 1.0, "multiplier {real} not > 1");
    quantize_multiplier(real)
}

/// gemmlowp `SaturatingRoundingDoublingHighMul` (ARM `VQRDMULH`): `a·b / 2^31` rounded to nearest with
/// ties toward +∞ (the nudge is `±2^30` and the division truncates), saturating the single overflow
/// case `MIN · MIN`.
#[inline]
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == b && a == i32::MIN {
        return i32::MAX;
    }
    let ab = i64::from(a) * i64::from(b);
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // Division truncates toward zero, as in C++.
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// The 16-bit `SaturatingRoundingDoublingHighMul`.
#[inline]
pub fn saturating_rounding_doubling_high_mul_i16(a: i16, b: i16) -> i16 {
    if a == b && a == i16::MIN {
        return i16::MAX;
    }
    let ab = i32::from(a) * i32::from(b);
    let nudge: i32 = if ab >= 0 { 1 << 14 } else { 1 - (1 << 14) };
    ((ab + nudge) / (1 << 15)) as i16
}

/// gemmlowp `RoundingDivideByPOT`: arithmetic right shift rounding to nearest, halves away from zero.
/// `exponent` is clamped to `[0, 31]`.
#[inline]
pub fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    let exponent = exponent.clamp(0, 31);
    let mask = ((1i64 << exponent) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> exponent) + i32::from(remainder > threshold)
}

/// The 16-bit `RoundingDivideByPOT` (exponent clamped to `[0, 15]`).
#[inline]
pub fn rounding_divide_by_pot_i16(x: i16, exponent: i32) -> i16 {
    let exponent = exponent.clamp(0, 15);
    let mask = ((1i32 << exponent) - 1) as i16;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i16::from(x < 0);
    (x >> exponent) + i16::from(remainder > threshold)
}

/// gemmlowp `SaturatingRoundingMultiplyByPOT<exponent>` on a 32-bit raw value: a saturating left shift
/// for positive exponents, [`rounding_divide_by_pot`] for negative ones.
#[inline]
pub fn saturating_rounding_multiply_by_pot(x: i32, exponent: i32) -> i32 {
    if exponent > 0 {
        let exponent = exponent.min(31);
        let threshold = ((1i64 << (31 - exponent)) - 1) as i32;
        if x > threshold {
            i32::MAX
        } else if x < -threshold {
            i32::MIN
        } else {
            x.wrapping_mul(1i32.wrapping_shl(exponent as u32))
        }
    } else {
        rounding_divide_by_pot(x, -exponent)
    }
}

/// `MultiplyByQuantizedMultiplier(int32_t x, int32_t quantized_multiplier, int shift)` in the standard
/// (double-rounding) build: `RoundingDivideByPOT(SRDHM(x · 2^left, m), right)`.
#[inline]
pub fn multiply_by_quantized_multiplier(x: i32, quantized_multiplier: i32, shift: i32) -> i32 {
    let left_shift = shift.clamp(0, 31);
    let right_shift = (-shift).clamp(0, 31);
    rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(
            x.wrapping_mul(1i32.wrapping_shl(left_shift as u32)),
            quantized_multiplier,
        ),
        right_shift,
    )
}

/// [`multiply_by_quantized_multiplier`] for a multiplier `m >= 0` that shifts right by `e <= 30`, with
/// its two roundings as one: `SaturatingRoundingDoublingHighMul` is `y = floor((x·m + 2^30) / 2^31)`
/// (TFLite's nudge and truncation, for every product), and `RoundingDivideByPOT(y, e)` rounds half
/// away from zero, `floor((y + 2^(e-1) − [y < 0]) / 2^e)`. Nested floors of divisions compose, so the
/// result is `floor((x·m + 2^30 + (2^(e-1) − [y < 0])·2^31) / 2^(31+e))`, and `[y < 0]` may be read as
/// `[x·m < 0]`: they differ only when `−2^30 <= x·m < 0`, where both forms give 0. One 64-bit product, a
/// constant and one shift: what the SIMD output stage computes when every channel shifts alike.
#[inline]
pub fn multiply_by_quantized_multiplier_one_rounding(x: i32, m: i32, e: u32) -> i32 {
    debug_assert!(m >= 0 && e <= 30);
    let p = i64::from(x) * i64::from(m);
    let k = (1i64 << 30) + if e == 0 { 0 } else { (1i64 << (30 + e)) - if p < 0 { 1 << 31 } else { 0 } };
    ((p + k) >> (31 + e)) as i32
}

/// `MultiplyByQuantizedMultiplier(int64_t x, int32_t quantized_multiplier, int shift)`, the form used by
/// the 16x8 kernels: the multiplier is first *reduced* to 16 bits (`(m + 2^15) >> 16`, or `0x7FFF` when
/// that would overflow), then one rounding right shift by `15 − shift` (ties toward +∞); the result is
/// truncated to 32 bits like the C++ cast.
#[inline]
pub fn multiply_by_quantized_multiplier_i64(x: i64, quantized_multiplier: i32, shift: i32) -> i32 {
    let (reduced_multiplier, total_shift) = reduced_multiplier_i64(quantized_multiplier, shift);
    let round = 1i64 << (total_shift - 1);
    (x.wrapping_mul(reduced_multiplier).wrapping_add(round) >> total_shift) as i32
}

/// The 16-bit reduced multiplier and the total right shift (in `[1, 62]`) of
/// [`multiply_by_quantized_multiplier_i64`], for kernels that compute them once per channel.
#[inline]
pub fn reduced_multiplier_i64(quantized_multiplier: i32, shift: i32) -> (i64, u32) {
    let reduced_multiplier: i64 =
        if quantized_multiplier < 0x7FFF_0000 { i64::from((quantized_multiplier + (1 << 15)) >> 16) } else { 0x7FFF };
    (reduced_multiplier, (15 - shift).clamp(1, 62) as u32)
}

/// `MultiplyByQuantizedMultiplierSmallerThanOneExp(x, m, left_shift)` (`left_shift <= 0`).
#[inline]
pub fn multiply_by_quantized_multiplier_smaller_than_one_exp(
    x: i32,
    quantized_multiplier: i32,
    left_shift: i32,
) -> i32 {
    rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, quantized_multiplier), -left_shift)
}

/// `MultiplyByQuantizedMultiplierGreaterThanOne(x, m, left_shift)` (`left_shift >= 0`).
#[inline]
pub fn multiply_by_quantized_multiplier_greater_than_one(x: i32, quantized_multiplier: i32, left_shift: i32) -> i32 {
    saturating_rounding_doubling_high_mul(
        x.wrapping_mul(1i32.wrapping_shl(left_shift.clamp(0, 31) as u32)),
        quantized_multiplier,
    )
}

/// `CalculateActivationRangeQuantized` for an output with `scale`/`zero_point` whose storage type spans
/// `[qmin, qmax]`: the fused activation's bounds are quantized with `TfLiteRound(f / scale)` **in
/// float** and clamped to the type's range.
pub fn activation_range_quantized(
    activation: Activation,
    scale: f32,
    zero_point: i32,
    qmin: i32,
    qmax: i32,
) -> (i32, i32) {
    let quantize = |f: f32| zero_point.saturating_add((f / scale).round() as i32);
    match activation {
        Activation::None => (qmin, qmax),
        Activation::Relu => (qmin.max(quantize(0.0)), qmax),
        Activation::Relu6 => (qmin.max(quantize(0.0)), qmax.min(quantize(6.0))),
    }
}

/// `CalculateActivationRange` for float: the clamp bounds of a fused activation.
pub fn activation_range_f32(activation: Activation) -> (f32, f32) {
    match activation {
        Activation::None => (f32::MIN, f32::MAX),
        Activation::Relu => (0.0, f32::MAX),
        Activation::Relu6 => (0.0, 6.0),
    }
}

/// `CheckedLog2(float x, int* log2_result)`: `Some(round(log2 x))` when `x` is a power of two to within
/// 1e-3 in the exponent (computed in float with `log(x) * (1 / log(2))`, as TFLite does), else `None`.
pub fn checked_log2(x: f32) -> Option<i32> {
    let x_log2 = x.ln() * (1.0f32 / 2.0f32.ln());
    let rounded = x_log2.round();
    let frac = x_log2 - rounded;
    (frac.abs() < 1e-3).then_some(rounded as i32)
}

/// `CalculateInputRadius(input_integer_bits, input_left_shift, total_signed_bits)` (float build).
pub fn calculate_input_radius(input_integer_bits: i32, input_left_shift: i32, total_signed_bits: i32) -> i32 {
    let max_input_rescaled = 1.0
        * f64::from((1i32 << input_integer_bits.clamp(0, 30)) - 1)
        * (1i64 << (total_signed_bits - input_integer_bits).clamp(0, 62)) as f64
        / (1i64 << input_left_shift.clamp(0, 62)) as f64;
    max_input_rescaled.floor() as i32
}

/// `PreprocessSoftmaxScaling(beta, input_scale, input_integer_bits)` (standard build): the real
/// multiplier `beta · input_scale · 2^(31 − input_integer_bits)`, capped at `2^31 − 1`, quantized with
/// `QuantizeMultiplierGreaterThanOne` (the shift is the "left shift").
pub fn preprocess_softmax_scaling(beta: f64, input_scale: f64, input_integer_bits: i32) -> QuantizedMultiplier {
    let max_real_multiplier = (1i64 << 31) as f64 - 1.0;
    let real =
        (beta * input_scale * f64::from(1i32 << (31 - input_integer_bits).clamp(0, 30))).min(max_real_multiplier);
    quantize_multiplier(real)
}

/// gemmlowp-style fixed-point helpers on raw `i32` values (`FixedPoint<int32_t, IntegerBits>`), as used
/// by the quantized softmax. A value with `n` integer bits represents `raw / 2^(31 − n)`.
pub mod fixed {
    use super::{
        rounding_divide_by_pot, saturating_rounding_doubling_high_mul as mul, saturating_rounding_multiply_by_pot,
    };

    /// `FixedPoint<int32_t, 0>::One()`: the largest raw value, standing for 1.
    pub const ONE_Q0_31: i32 = i32::MAX;

    /// `RoundingHalfSum(a, b)`: `(a + b) / 2` rounded half away from zero.
    #[inline]
    pub fn rounding_half_sum(a: i32, b: i32) -> i32 {
        let sum = i64::from(a) + i64::from(b);
        let sign = if sum >= 0 { 1 } else { -1 };
        ((sum + sign) / 2) as i32
    }

    /// `exp_on_interval_between_negative_one_quarter_and_0_excl` on Q0.31.
    pub fn exp_on_interval_between_negative_one_quarter_and_0_excl(a: i32) -> i32 {
        const CONSTANT_TERM: i32 = 1_895_147_668; // exp(-1/8)
        const CONSTANT_1_OVER_3: i32 = 715_827_883; // 1/3
                                                    // Taylor expansion around -1/8: x = a + 1/8.
        let x = a.wrapping_add(1 << 28);
        let x2 = mul(x, x);
        let x3 = mul(x2, x);
        let x4 = mul(x2, x2);
        let x4_over_4 = rounding_divide_by_pot(x4, 2);
        let x4_over_24_plus_x3_over_6_plus_x2_over_2 =
            rounding_divide_by_pot(mul(x4_over_4.wrapping_add(x3), CONSTANT_1_OVER_3).wrapping_add(x2), 1);
        CONSTANT_TERM.wrapping_add(mul(CONSTANT_TERM, x.wrapping_add(x4_over_24_plus_x3_over_6_plus_x2_over_2)))
    }

    /// `exp_on_negative_values(FixedPoint<int32_t, integer_bits> a)`: `exp(a)` for `a <= 0`, as Q0.31.
    pub fn exp_on_negative_values(a: i32, integer_bits: i32) -> i32 {
        let fractional_bits = 31 - integer_bits;
        let one_quarter: i32 = 1 << (fractional_bits - 2);
        let mask = one_quarter - 1;
        let a_mod_quarter_minus_one_quarter = (a & mask).wrapping_sub(one_quarter);
        // Rescale<0> from `integer_bits` integer bits to 0.
        let mut result = exp_on_interval_between_negative_one_quarter_and_0_excl(saturating_rounding_multiply_by_pot(
            a_mod_quarter_minus_one_quarter,
            integer_bits,
        ));
        let remainder = a_mod_quarter_minus_one_quarter.wrapping_sub(a);
        // Barrel shifter: multiply by exp(-2^k) for every bit k of the remainder.
        const BARREL: [(i32, i32); 7] = [
            (-2, 1_672_461_947),
            (-1, 1_302_514_674),
            (0, 790_015_084),
            (1, 290_630_308),
            (2, 39_332_535),
            (3, 720_401),
            (4, 242),
        ];
        for (exponent, multiplier) in BARREL {
            if integer_bits > exponent {
                let shift_amount = fractional_bits + exponent;
                if remainder & (1i32.wrapping_shl(shift_amount as u32)) != 0 {
                    result = mul(result, multiplier);
                }
            }
        }
        if integer_bits > 5 {
            let clamp = -(1i32 << (36 - integer_bits).clamp(0, 30));
            if a < clamp {
                result = 0;
            }
        }
        if a == 0 {
            result = ONE_Q0_31;
        }
        result
    }

    /// `one_over_one_plus_x_for_x_in_0_1(FixedPoint<int32_t, 0> a)`: `1 / (1 + a)` by three
    /// Newton-Raphson steps, as Q0.31.
    pub fn one_over_one_plus_x_for_x_in_0_1(a: i32) -> i32 {
        const CONSTANT_48_OVER_17: i32 = 1_515_870_810; // Q2.29
        const CONSTANT_NEG_32_OVER_17: i32 = -1_010_580_540; // Q2.29
        const ONE_Q2_29: i32 = 1 << 29;
        let half_denominator = rounding_half_sum(a, ONE_Q0_31);
        let mut x = CONSTANT_48_OVER_17.wrapping_add(mul(half_denominator, CONSTANT_NEG_32_OVER_17));
        for _ in 0..3 {
            let half_denominator_times_x = mul(half_denominator, x);
            let one_minus_half_denominator_times_x = ONE_Q2_29.wrapping_sub(half_denominator_times_x);
            // x · (1 − d·x) is Q4.27; Rescale<2> shifts left by 2 with saturation.
            x = x.wrapping_add(saturating_rounding_multiply_by_pot(mul(x, one_minus_half_denominator_times_x), 2));
        }
        // ExactMulByPot<-1> (Q2 → Q1, same raw), then Rescale<0>: saturating left shift by 1.
        saturating_rounding_multiply_by_pot(x, 1)
    }

    /// TFLite's `GetReciprocal(x, x_integer_digits, &num_bits_over_unit)`: returns the Q0.31 raw value
    /// of `1 / (x normalised to [1, 2))` and the number of bits of `x` above 1.0.
    pub fn get_reciprocal(x: i32, x_integer_digits: i32) -> (i32, i32) {
        let headroom_plus_one = (x as u32).leading_zeros() as i32;
        let num_bits_over_unit = x_integer_digits - headroom_plus_one;
        let shifted_sum_minus_one =
            (x as u32).checked_shl(headroom_plus_one as u32).unwrap_or(0).wrapping_sub(1u32 << 31) as i32;
        (one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit)
    }
}

/// Number of entries of TFLite's int16 lookup tables (`LUTSize<int16_t>()`): 512 segments + 1.
pub const LUT_INT16_SIZE: usize = 513;

/// `LUTPopulateInt16<double>(input_scale, input_zero_point, output_scale, output_zero_point, transform)`:
/// a 513-entry table of `transform` sampled over the whole int16 input range, each entry biased by half
/// the interpolation error at the segment's midpoint (all arithmetic in double, rounding with
/// `std::round`).
pub fn lut_populate_int16(
    transform: impl Fn(f64) -> f64,
    input_scale: f64,
    input_zero_point: i32,
    output_scale: f64,
    output_zero_point: i32,
) -> Vec<i16> {
    let input_min = input_scale * f64::from(i32::from(i16::MIN) - input_zero_point);
    let input_max = input_scale * f64::from(i32::from(i16::MAX) - input_zero_point);
    let output_min = output_scale * f64::from(i32::from(i16::MIN) - output_zero_point);
    let output_max = output_scale * f64::from(i32::from(i16::MAX) - output_zero_point);

    const NB_STEPS: i32 = 512;
    let step = (input_max - input_min) / f64::from(NB_STEPS);
    let half_step = step / 2.0;
    let output_scaling_inv = f64::from(i32::from(i16::MAX) - i32::from(i16::MIN) + 1) / (output_max - output_min);
    let table_min = f64::from(i16::MIN);
    let table_max = f64::from(i16::MAX);

    let mut lut = Vec::with_capacity(LUT_INT16_SIZE);
    for i in 0..NB_STEPS {
        let i = f64::from(i);
        let val = transform(input_min + i * step);
        let val_midpoint = transform(input_min + i * step + half_step);
        let val_next = transform(input_min + (i + 1.0) * step);

        let sample_val = (val * output_scaling_inv).round();
        let midpoint_interp_val = ((val_next * output_scaling_inv + (val * output_scaling_inv).round()) / 2.0).round();
        let midpoint_val = (val_midpoint * output_scaling_inv).round();
        let midpoint_err = midpoint_interp_val - midpoint_val;
        let bias = (midpoint_err / 2.0).round();

        lut.push((sample_val - bias).max(table_min).min(table_max) as i16);
    }
    lut.push((transform(input_max) * output_scaling_inv).round().max(table_min).min(table_max) as i16);
    lut
}

/// `LUTLookup(int16_t value, const int16_t* lut)`: linear interpolation in a 513-entry table (base from
/// the top 9 bits, slope times the low 7 bits, rounded). A short table reads as zeros.
#[inline]
pub fn lut_lookup_int16(value: i16, lut: &[i16]) -> i16 {
    let index = (256 + i32::from(value >> 7)) as usize;
    let offset = i32::from(value & 0x7f);
    let base = lut.get(index).copied().unwrap_or(0);
    let next = lut.get(index + 1).copied().unwrap_or(0);
    let slope = next.wrapping_sub(base);
    let delta = (i32::from(slope) * offset + 64) >> 7;
    (i32::from(base) + delta) as i16
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // ---- QuantizeMultiplier on values derived by hand from the TFLite definition ----

    #[test]
    fn quantize_multiplier_known_values() {
        // 0.5 = 0.5 · 2^0 → q = 2^30, shift 0.
        assert_eq!(quantize_multiplier(0.5), QuantizedMultiplier { multiplier: 1 << 30, shift: 0 });
        // 1.0 = 0.5 · 2^1.
        assert_eq!(quantize_multiplier(1.0), QuantizedMultiplier { multiplier: 1 << 30, shift: 1 });
        // 0.25 = 0.5 · 2^-1.
        assert_eq!(quantize_multiplier(0.25), QuantizedMultiplier { multiplier: 1 << 30, shift: -1 });
        // 0.75 = 0.75 · 2^0 → 0.75 · 2^31 = 1610612736.
        assert_eq!(quantize_multiplier(0.75), QuantizedMultiplier { multiplier: 1_610_612_736, shift: 0 });
        // 3.0 = 0.75 · 2^2.
        assert_eq!(quantize_multiplier(3.0), QuantizedMultiplier { multiplier: 1_610_612_736, shift: 2 });
        // 0.1 = 0.8 · 2^-3 → round(0.8 · 2^31) = round(1717986918.4) = 1717986918.
        assert_eq!(quantize_multiplier(0.1), QuantizedMultiplier { multiplier: 1_717_986_918, shift: -3 });
        // 1/3 = (2/3) · 2^-1 → round(1431655765.33) = 1431655765.
        assert_eq!(quantize_multiplier(1.0 / 3.0), QuantizedMultiplier { multiplier: 1_431_655_765, shift: -1 });
        // Zero and values below 2^-31 (shift < -31) flush to (0, 0).
        assert_eq!(quantize_multiplier(0.0), QuantizedMultiplier { multiplier: 0, shift: 0 });
        assert_eq!(quantize_multiplier(2f64.powi(-40)), QuantizedMultiplier { multiplier: 0, shift: 0 });
        // A significand that rounds up to 2^31 renormalises: (1 - 2^-40) → q_fixed = 2^31 → 2^30, shift 1.
        assert_eq!(quantize_multiplier(1.0 - 2f64.powi(-40)), QuantizedMultiplier { multiplier: 1 << 30, shift: 1 });
        // Negative multipliers keep their sign in the significand.
        assert_eq!(quantize_multiplier(-0.5), QuantizedMultiplier { multiplier: -(1 << 30), shift: 0 });
    }

    #[test]
    fn frexp_matches_definition() {
        assert_eq!(frexp(1.0), (0.5, 1));
        assert_eq!(frexp(0.75), (0.75, 0));
        assert_eq!(frexp(-6.0), (-0.75, 3));
        assert_eq!(frexp(f64::MIN_POSITIVE / 4.0), (0.5, -1023));
        assert_eq!(frexp(0.0), (0.0, 0));
    }

    // ---- the fixed-point primitives on hand-derived values ----

    #[test]
    fn srdhm_known_values() {
        // 2^30 · 2^30 / 2^31 = 2^29.
        assert_eq!(saturating_rounding_doubling_high_mul(1 << 30, 1 << 30), 1 << 29);
        // The one overflow case saturates.
        assert_eq!(saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN), i32::MAX);
        // 3 · 2^30 / 2^31 = 1.5 → 2; -1.5: (-3·2^30 + 1 − 2^30) / 2^31 truncates to -1 — ties go up.
        assert_eq!(saturating_rounding_doubling_high_mul(3, 1 << 30), 2);
        assert_eq!(saturating_rounding_doubling_high_mul(-3, 1 << 30), -1);
        // 0.5 → 1; -0.5 → 0.
        assert_eq!(saturating_rounding_doubling_high_mul(1, 1 << 30), 1);
        assert_eq!(saturating_rounding_doubling_high_mul(-1, 1 << 30), 0);
        // Not a tie: -2.5 · ... = (-5 · 2^30) / 2^31 = -2.5 → -2; -7 · 2^29 / 2^31 = -1.75 → -2.
        assert_eq!(saturating_rounding_doubling_high_mul(-5, 1 << 30), -2);
        assert_eq!(saturating_rounding_doubling_high_mul(-7, 1 << 29), -2);
    }

    #[test]
    fn rounding_divide_by_pot_known_values() {
        assert_eq!(rounding_divide_by_pot(5, 1), 3); // 2.5 → 3
        assert_eq!(rounding_divide_by_pot(-5, 1), -3); // -2.5 → -3
        assert_eq!(rounding_divide_by_pot(7, 2), 2); // 1.75 → 2
        assert_eq!(rounding_divide_by_pot(-6, 2), -2); // -1.5 → -2
        assert_eq!(rounding_divide_by_pot(-5, 2), -1); // -1.25 → -1
        assert_eq!(rounding_divide_by_pot(123, 0), 123);
        assert_eq!(rounding_divide_by_pot(i32::MIN, 31), -1);
        assert_eq!(rounding_divide_by_pot_i16(-5, 1), -3);
        assert_eq!(rounding_divide_by_pot_i16(5, 1), 3);
    }

    #[test]
    fn multiply_by_quantized_multiplier_known_values() {
        // x · 0.5: 0.5 = (2^30, 0). 3 · 0.5 = 1.5 → SRDHM rounds to 2.
        assert_eq!(multiply_by_quantized_multiplier(3, 1 << 30, 0), 2);
        // x · 0.25 = (2^30, -1): SRDHM(x, 2^30) then rounding shift by 1 — double rounding:
        // 3 · 0.5 = 1.5 → 2, then 2/2 = 1 (the exact 0.75 also rounds to 1).
        assert_eq!(multiply_by_quantized_multiplier(3, 1 << 30, -1), 1);
        // 5 · 0.25 = 1.25: SRDHM(5, 2^30) = 2.5 → 3, then 3/2 = 1.5 → 2. The double rounding shows
        // (a single rounding would give 1).
        assert_eq!(multiply_by_quantized_multiplier(5, 1 << 30, -1), 2);
        // Left shifts: 3 · 4.0 = (2^30, 3): SRDHM(24, 2^30) = 12.
        assert_eq!(multiply_by_quantized_multiplier(3, 1 << 30, 3), 12);
        // int64 16x8 form: reduced multiplier (2^30 + 2^15) >> 16 = 2^14; total shift 15 + 1 = 16;
        // 5 · 2^14 + 2^15 = 114688 >> 16 = 1 (1.25 → 1, single rounding).
        assert_eq!(multiply_by_quantized_multiplier_i64(5, 1 << 30, -1), 1);
        // Ties go up: 6 · 0.25 = 1.5 → 2; -6 · 0.25 = -1.5 → -1.
        assert_eq!(multiply_by_quantized_multiplier_i64(6, 1 << 30, -1), 2);
        assert_eq!(multiply_by_quantized_multiplier_i64(-6, 1 << 30, -1), -1);
        // Multipliers at or above 0x7FFF0000 reduce to 0x7FFF instead of overflowing.
        // 2^16 · 0x7FFF / 2^15 = 65534 (+ 0.5 rounding bit that does not carry).
        assert_eq!(multiply_by_quantized_multiplier_i64(1 << 16, i32::MAX, 0), 65534);
    }

    #[test]
    fn activation_range_known_values() {
        // uint8-style output: scale 6/255, zero point 0: relu6 → [0, round(255)] = [0, 255].
        assert_eq!(activation_range_quantized(Activation::Relu6, 6.0 / 255.0, 0, 0, 255), (0, 255));
        // int8: scale 0.05, zp -10: relu → [max(-128, -10), 127]; relu6 → [-10, min(127, 110)].
        assert_eq!(activation_range_quantized(Activation::Relu, 0.05, -10, -128, 127), (-10, 127));
        assert_eq!(activation_range_quantized(Activation::Relu6, 0.05, -10, -128, 127), (-10, 110));
        // Rounding is half away from zero in float: 6 / 0.4 = 15 exactly; 6 / 0.08 = 75.
        assert_eq!(activation_range_quantized(Activation::Relu6, 0.4, 0, -128, 127), (0, 15));
        assert_eq!(activation_range_quantized(Activation::None, 0.4, 3, -128, 127), (-128, 127));
    }

    #[test]
    fn checked_log2_known_values() {
        assert_eq!(checked_log2(1.0 / 32768.0), Some(-15));
        assert_eq!(checked_log2(0.5), Some(-1));
        assert_eq!(checked_log2(4.0), Some(2));
        assert_eq!(checked_log2(0.3), None);
    }

    #[test]
    fn softmax_scaling_known_values() {
        // beta 1, scale 1/16, 5 integer bits: 2^-4 · 2^26 = 2^22 = 0.5 · 2^23 → (2^30, 23).
        let m = preprocess_softmax_scaling(1.0, 1.0 / 16.0, 5);
        assert_eq!(m, QuantizedMultiplier { multiplier: 1 << 30, shift: 23 });
        // Radius: 31 · 2^26 / 2^23 = 248.
        assert_eq!(calculate_input_radius(5, 23, 31), 248);
    }

    #[test]
    fn fixed_point_exp_and_reciprocal() {
        // exp(0) = One.
        assert_eq!(fixed::exp_on_negative_values(0, 5), i32::MAX);
        // exp(-1) in Q5.26: -1 = -(1 << 26). Expect ≈ 0.36787944 · 2^31.
        let e = fixed::exp_on_negative_values(-(1 << 26), 5);
        let real = f64::from(e) / 2f64.powi(31);
        assert!((real - (-1f64).exp()).abs() < 1e-6, "{real}");
        for k in 1..100 {
            let x = -f64::from(k) / 8.0;
            let raw = (x * 2f64.powi(26)) as i32;
            let got = f64::from(fixed::exp_on_negative_values(raw, 5)) / 2f64.powi(31);
            assert!((got - x.exp()).abs() < 1e-6, "exp({x}) = {got}");
        }
        // 1 / (1 + 0.5) = 2/3.
        let r = fixed::one_over_one_plus_x_for_x_in_0_1(1 << 30);
        assert!((f64::from(r) / 2f64.powi(31) - 2.0 / 3.0).abs() < 1e-8);
        // GetReciprocal of 1.25 in Q12.19: 0.8, 1 bit... x = 1.25 · 2^19.
        let (s, bits) = fixed::get_reciprocal((1.25 * 2f64.powi(19)) as i32, 12);
        assert_eq!(bits, 0);
        assert!((f64::from(s) / 2f64.powi(31) - 0.8).abs() < 1e-8);
    }

    #[test]
    fn int16_luts_look_like_their_functions() {
        let range = 65535.0;
        let exp_lut = lut_populate_int16(f64::exp, 10.0 / range, 32767, 2.0 / range, 0);
        assert_eq!(exp_lut.len(), LUT_INT16_SIZE);
        // The last entry is exp(0) · 32768 clamped to 32767.
        assert_eq!(exp_lut[512], 32767);
        // Looking up the top of the int16 range gives ≈ 1.0 in Q0.15.
        assert!(lut_lookup_int16(32767, &exp_lut) >= 32700);
        let recip = lut_populate_int16(|x| 1.0 / (1.0 + x), 1.0 / range, -32768, 2.0 / range, 0);
        // 1/(1+0) = 1 → clamped 32767 at the bottom of the range; 1/(1+1) = 0.5 at the top.
        assert_eq!(recip[0], 32767);
        assert_eq!(recip[512], 16384);
    }

    // ---- properties against exact (wide) arithmetic ----

    fn exact_round_half_up(num: i128, den: i128) -> i128 {
        // round(num / den), halves toward +∞, den > 0.
        (num + den / 2).div_euclid(den)
    }

    fn exact_round_half_away(num: i128, den: i128) -> i128 {
        // round(num / den), halves away from zero, den > 0.
        let q = num / den;
        let r = num % den;
        if 2 * r.abs() >= den {
            q + num.signum()
        } else {
            q
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20000))]
        #[test]
        fn one_rounding_equals_the_two_roundings(
            x in prop_oneof![-70000..=70000i32, any::<i32>(), Just(i32::MIN), Just(i32::MAX)],
            m in prop_oneof![(1i32 << 30)..=i32::MAX, (4i32..8).prop_map(|k| k << 28), Just(0), Just(1 << 30), Just(i32::MAX)],
            e in 0..=30u32,
        ) {
            prop_assert_eq!(
                multiply_by_quantized_multiplier_one_rounding(x, m, e),
                multiply_by_quantized_multiplier(x, m, -(e as i32))
            );
        }
    }

    proptest! {
        #[test]
        fn srdhm_is_rounded_exact_product(
            a in any::<i32>(),
            // Powers of two make exact ties common.
            b in prop_oneof![any::<i32>(), (0u32..31).prop_map(|k| 1i32 << k), (0u32..31).prop_map(|k| -(1i32 << k))],
        ) {
            prop_assume!(!(a == i32::MIN && b == i32::MIN));
            let exact = exact_round_half_up(i128::from(a) * i128::from(b), 1i128 << 31);
            prop_assert_eq!(i128::from(saturating_rounding_doubling_high_mul(a, b)), exact);
        }

        #[test]
        fn rdbpot_is_rounded_exact_quotient(
            x in prop_oneof![any::<i32>(), (any::<i16>(), 0u32..16).prop_map(|(m, k)| i32::from(m) << k)],
            e in 0i32..=31,
        ) {
            let exact = exact_round_half_away(i128::from(x), 1i128 << e);
            prop_assert_eq!(i128::from(rounding_divide_by_pot(x, e)), exact);
        }

        #[test]
        fn multiplier_decomposition_reproduces_the_real_multiplier(
            mantissa in 0.5f64..1.0, exponent in -30i32..20,
        ) {
            let real = mantissa * 2f64.powi(exponent);
            let q = quantize_multiplier(real);
            prop_assert!(q.multiplier >= 1 << 30);
            // Within half a unit of the 31-bit significand.
            let err = (q.to_f64() - real).abs();
            prop_assert!(err <= 2f64.powi(q.shift - 32) * 1.000001, "{real} -> {q:?} err {err}");
        }

        #[test]
        fn mbqm_is_close_to_the_real_product(x in -(1i32 << 24)..(1i32 << 24), mantissa in 0.5f64..1.0, exponent in -20i32..0) {
            let real = mantissa * 2f64.powi(exponent);
            let q = quantize_multiplier(real);
            let got = f64::from(q.apply(x));
            let want = f64::from(x) * q.to_f64();
            // Double rounding: at most one unit away from the exact product.
            prop_assert!((got - want).abs() <= 1.0, "{x} · {real}: {got} vs {want}");
            let got64 = f64::from(q.apply_i64(i64::from(x)));
            prop_assert!((got64 - f64::from(x) * real).abs() <= 1.0 + f64::from(x).abs() * 2f64.powi(exponent - 14));
        }

        #[test]
        fn i16_srdhm_matches_exact(a in any::<i16>(), b in any::<i16>()) {
            prop_assume!(!(a == i16::MIN && b == i16::MIN));
            let exact = exact_round_half_up(i128::from(a) * i128::from(b), 1i128 << 15);
            prop_assert_eq!(i128::from(saturating_rounding_doubling_high_mul_i16(a, b)), exact);
        }
    }
}
