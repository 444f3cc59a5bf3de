//! libjpeg-turbo's `jpeg_idct_islow` (jidctint.c, the IJG 6b "LL&M" integer IDCT, 13-bit constants,
//! 2 extra bits between the passes): Pillow's default DCT method. Its SIMD builds give the same
//! results, so this scalar form is the reference for every libjpeg-turbo platform.

/// Coefficients of one block in natural (row-major) order, not yet dequantized.
pub type Block = [i16; 64];

const CONST_BITS: u32 = 13;
const PASS1_BITS: u32 = 2;

const FIX_0_298631336: i64 = 2446;
const FIX_0_390180644: i64 = 3196;
const FIX_0_541196100: i64 = 4433;
const FIX_0_765366865: i64 = 6270;
const FIX_0_899976223: i64 = 7373;
const FIX_1_175875602: i64 = 9633;
const FIX_1_501321110: i64 = 12299;
const FIX_1_847759065: i64 = 15137;
const FIX_1_961570560: i64 = 16069;
const FIX_2_053119869: i64 = 16819;
const FIX_2_562915447: i64 = 20995;
const FIX_3_072711026: i64 = 25172;

fn descale(x: i64, n: u32) -> i64 {
    (x + (1 << (n - 1))) >> n
}

/// libjpeg's post-IDCT range limit: the output plus 128, masked to 10 bits, read from a table that
/// clamps what a valid stream can produce and wraps what only a corrupt one can.
fn range_limit(x: i64) -> u8 {
    match x & 1023 {
        m @ 0..=127 => (m + 128) as u8,
        128..=511 => 255,
        512..=895 => 0,
        m => (m - 896) as u8,
    }
}

/// One 1-D pass over 8 values (a column of coefficients or a row of the work array), returning
/// the 8 outputs scaled up by `2^CONST_BITS` (not yet descaled).
fn pass(v: [i64; 8]) -> [i64; 8] {
    // Even part.
    let (z2, z3) = (v[2], v[6]);
    let z1 = (z2 + z3) * FIX_0_541196100;
    let tmp2 = z1 - z3 * FIX_1_847759065;
    let tmp3 = z1 + z2 * FIX_0_765366865;
    let tmp0 = (v[0] + v[4]) << CONST_BITS;
    let tmp1 = (v[0] - v[4]) << CONST_BITS;
    let (tmp10, tmp13, tmp11, tmp12) = (tmp0 + tmp3, tmp0 - tmp3, tmp1 + tmp2, tmp1 - tmp2);
    // Odd part.
    let (t0, t1, t2, t3) = (v[7], v[5], v[3], v[1]);
    let (z1, z2, z3, z4) = (t0 + t3, t1 + t2, t0 + t2, t1 + t3);
    let z5 = (z3 + z4) * FIX_1_175875602;
    let (t0, t1, t2, t3) = (t0 * FIX_0_298631336, t1 * FIX_2_053119869, t2 * FIX_3_072711026, t3 * FIX_1_501321110);
    let (z1, z2) = (z1 * -FIX_0_899976223, z2 * -FIX_2_562915447);
    let (z3, z4) = (z3 * -FIX_1_961570560 + z5, z4 * -FIX_0_390180644 + z5);
    let (t0, t1, t2, t3) = (t0 + z1 + z3, t1 + z2 + z4, t2 + z2 + z3, t3 + z1 + z4);
    [tmp10 + t3, tmp11 + t2, tmp12 + t1, tmp13 + t0, tmp13 - t0, tmp12 - t1, tmp11 - t2, tmp10 - t3]
}

/// Dequantizes `coefs` with `quant` (natural order) and writes the 8x8 samples to `out` rows of
/// `stride` bytes.
pub fn idct_islow(coefs: &Block, quant: &[u16; 64], out: &mut [u8], stride: usize) {
    let mut ws = [0i64; 64];
    for col in 0..8 {
        let c = |row: usize| coefs[row * 8 + col] as i64 * quant[row * 8 + col] as i64;
        if (1..8).all(|row| coefs[row * 8 + col] == 0) {
            // AC terms all zero: the same value the full pass gives, as libjpeg shortcuts it.
            let dc = c(0) << PASS1_BITS;
            (0..8).for_each(|row| ws[row * 8 + col] = dc);
            continue;
        }
        let o = pass([c(0), c(1), c(2), c(3), c(4), c(5), c(6), c(7)]);
        // The work array holds C ints: every value a valid stream gives fits, as libjpeg assumes.
        (0..8).for_each(|row| ws[row * 8 + col] = descale(o[row], CONST_BITS - PASS1_BITS) as i32 as i64);
    }
    for row in 0..8 {
        let w: [i64; 8] = ws[row * 8..row * 8 + 8].try_into().expect("8 values");
        let dst = &mut out[row * stride..row * stride + 8];
        if w[1..].iter().all(|&x| x == 0) {
            dst.fill(range_limit(descale(w[0], PASS1_BITS + 3)));
            continue;
        }
        let o = pass(w);
        for (d, o) in dst.iter_mut().zip(o) {
            *d = range_limit(descale(o, CONST_BITS + PASS1_BITS + 3));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook 2-D IDCT in f64, rounded, clamped: what the integer one approximates.
    fn reference(coefs: &Block, quant: &[u16; 64]) -> [f64; 64] {
        let mut out = [0f64; 64];
        let c = |u: usize| if u == 0 { std::f64::consts::FRAC_1_SQRT_2 } else { 1.0 };
        for y in 0..8 {
            for x in 0..8 {
                let mut s = 0.0;
                for v in 0..8 {
                    for u in 0..8 {
                        let f = coefs[v * 8 + u] as f64 * quant[v * 8 + u] as f64;
                        s += c(u)
                            * c(v)
                            * f
                            * ((2 * x + 1) as f64 * u as f64 * std::f64::consts::PI / 16.0).cos()
                            * ((2 * y + 1) as f64 * v as f64 * std::f64::consts::PI / 16.0).cos();
                    }
                }
                out[y * 8 + x] = (s / 4.0 + 128.0).clamp(0.0, 255.0);
            }
        }
        out
    }

    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        *seed >> 33
    }

    #[test]
    fn islow_is_within_one_level_of_the_exact_idct() {
        let mut seed = 7;
        let quant = [1u16; 64];
        for case in 0..400 {
            let mut coefs = [0i16; 64];
            // Sparse blocks as photos have: a DC and a few low-frequency terms, some with only a DC.
            coefs[0] = (lcg(&mut seed) % 2048) as i16 - 1024;
            for _ in 0..(case % 12) {
                let i = (lcg(&mut seed) % 64) as usize;
                coefs[i] = (lcg(&mut seed) % 200) as i16 - 100;
            }
            let mut out = [0u8; 64];
            idct_islow(&coefs, &quant, &mut out, 8);
            let want = reference(&coefs, &quant);
            for (got, want) in out.iter().zip(want) {
                assert!((*got as f64 - want).abs() <= 1.0, "case {case}: {got} vs {want:.2}");
            }
        }
    }

    #[test]
    fn a_dc_only_block_is_flat_and_dequantized() {
        let mut coefs = [0i16; 64];
        coefs[0] = -3;
        let mut quant = [1u16; 64];
        quant[0] = 16;
        let mut out = [0u8; 16 * 8];
        idct_islow(&coefs, &quant, &mut out, 16);
        // -3 * 16 / 8 = -6 from the 128 centre.
        assert!(out.chunks(16).all(|row| row[..8].iter().all(|&p| p == 122) && row[8..].iter().all(|&p| p == 0)));
    }

    #[test]
    fn the_range_limit_clamps_and_wraps_as_libjpegs_table() {
        assert_eq!([range_limit(-128), range_limit(0), range_limit(127)], [0, 128, 255]);
        assert_eq!([range_limit(128), range_limit(383), range_limit(-129), range_limit(-512)], [255, 255, 0, 0]);
        // Only a corrupt stream gets here: the table's second half repeats.
        assert_eq!([range_limit(512), range_limit(1024)], [0, 128]);
    }
}
