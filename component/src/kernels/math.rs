//! `exp` built from IEEE-754 `+ − × ÷` only, so it returns the same bits on every target.
//!
//! `f32::exp` / `f64::exp` call the platform's libm: glibc natively, Rust's `libm` port in wasm. The two
//! disagree in the last bit now and then, which made the float SOFTMAX differ between native and wasm
//! (44 of 380 probabilities on the dog model). Wasm arithmetic itself is deterministic, so an `exp`
//! written in plain arithmetic makes fp32 results bit-identical across every runtime (issue 4).
//!
//! Accuracy: the double result is within a few ulp of `e^x`, so [`expf`] (computed in double, rounded
//! once to float) is the correctly rounded `e^x` except when `e^x` lies within ~2^-50 (relative) of a
//! float rounding boundary — the same answer as glibc's `expf` (≤ 0.502 ulp) almost everywhere.

/// A real value as a quantized one: `round_half_away_from_zero(real / scale) + zero_point`, clamped to
/// `qmin..=qmax` (TFLite's QUANTIZE and the golden script's input rule). The division is f32;
/// `f32::round` rounds exact ties away from zero.
#[inline]
pub fn quantize_value(real: f32, scale: f32, zero_point: i32, qmin: i32, qmax: i32) -> i32 {
    // `as` saturates (NaN → 0), so nothing here can overflow.
    let q = (real / scale).round() as i32;
    q.saturating_add(zero_point).clamp(qmin, qmax)
}

/// ln 2 = LN2_HI + LN2_LO to about 2^-85: `k * LN2_HI` is exact for the |k| < 2^11 used here (the low
/// 32 bits of `LN2_HI` are zero), and LN2_LO carries the digits of ln 2 a single double cannot.
const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
/// Above this `e^x` overflows a double; below `MIN_X` it underflows to 0 (even as a subnormal).
const MAX_X: f64 = 709.782712893384;
const MIN_X: f64 = -745.1332191019412;

/// `e^x` in double precision, deterministic across targets.
pub fn exp_f64(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x > MAX_X {
        return f64::INFINITY;
    }
    if x < MIN_X {
        return 0.0;
    }
    // x = k·ln2 + r with |r| <= ln2/2; `k` is an exact small integer.
    let k = round_half_away(x * std::f64::consts::LOG2_E);
    let r = (x - k * LN2_HI) - k * LN2_LO;
    // Taylor series of e^r to r^14/14!: the truncation error is below 2^-60 for |r| <= 0.35.
    let mut p = INV_FACTORIAL[14];
    for &c in INV_FACTORIAL[..14].iter().rev() {
        p = p * r + c;
    }
    scale_by_pow2(p, k as i32)
}

/// `e^x` for `f32`: [`exp_f64`] rounded once.
pub fn expf(x: f32) -> f32 {
    exp_f64(f64::from(x)) as f32
}

/// 1/i! for i = 0..=14, computed once by the compiler (const evaluation is IEEE arithmetic too).
const INV_FACTORIAL: [f64; 15] = {
    let mut c = [1.0; 15];
    let mut fact = 1.0;
    let mut i = 1;
    while i < 15 {
        fact *= i as f64;
        c[i] = 1.0 / fact;
        i += 1;
    }
    c
};

/// `round()` as TFLite's `std::round` does (half away from zero), written out so it cannot depend on a
/// platform routine.
fn round_half_away(v: f64) -> f64 {
    let t = v.trunc();
    if (v - t).abs() >= 0.5 {
        t + v.signum()
    } else {
        t
    }
}

/// `v · 2^k` for the `k` range `exp_f64` produces (−1075..=1024), exact unless the result is subnormal.
fn scale_by_pow2(v: f64, k: i32) -> f64 {
    let pow2 = |e: i32| f64::from_bits(((e + 1023) as u64) << 52);
    if k > 1023 {
        v * pow2(1023) * pow2(k - 1023)
    } else if k < -1022 {
        // Two steps so the intermediate stays normal; only the final multiply rounds.
        v * pow2(k + 54) * pow2(-54)
    } else {
        v * pow2(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn special_values() {
        assert_eq!(exp_f64(0.0), 1.0);
        assert!(exp_f64(f64::NAN).is_nan());
        assert_eq!(exp_f64(f64::INFINITY), f64::INFINITY);
        assert_eq!(exp_f64(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp_f64(710.0), f64::INFINITY);
        assert_eq!(exp_f64(-746.0), 0.0);
        assert_eq!(expf(-200.0), 0.0);
        assert_eq!(expf(100.0), f32::INFINITY);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        /// Against the platform's exp (glibc natively): within 2 ulp in double.
        #[test]
        fn double_within_two_ulp(x in -745.0f64..709.0) {
            let ours = exp_f64(x);
            let libm = x.exp();
            let ulp = f64::from_bits(libm.to_bits() + 1) - libm;
            if libm > f64::MIN_POSITIVE {
                prop_assert!((ours - libm).abs() <= 2.0 * ulp, "x={x}: {ours:e} vs {libm:e}");
            } else {
                // Subnormal results have absolute, not relative, precision.
                prop_assert!((ours - libm).abs() <= 2.0 * f64::from_bits(1), "x={x}");
            }
        }

        /// The softmax range: equal to the platform's `expf` except within an ulp at rare ties.
        #[test]
        fn float_matches_libm(x in -104.0f32..88.0) {
            let (ours, libm) = (expf(x), x.exp());
            prop_assert!(ours.to_bits().abs_diff(libm.to_bits()) <= 1, "x={x}: {ours:e} vs {libm:e}");
        }
    }

    /// Rounded once from a double that is a few ulp off, `expf` is correctly rounded nearly everywhere:
    /// count disagreements with glibc over a dense grid of softmax-like arguments.
    #[test]
    fn float_agrees_with_libm_almost_everywhere() {
        let n = 200_000;
        let differ = (0..n).filter(|i| {
            let x = -20.0 + 20.0 * (*i as f32) / n as f32;
            expf(x) != x.exp()
        });
        let differ = differ.count();
        // glibc's expf is itself only within 0.502 ulp, so a few disagreements are expected.
        assert!(differ * 1000 <= n, "{differ} of {n} differ");
    }
}
