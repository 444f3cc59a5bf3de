//! Chroma upsampling and YCbCr -> RGB as libjpeg-turbo does them on Pillow's path
//! (`do_fancy_upsampling` on, jdsample.c; jdcolor.c's 16-bit fixed-point tables).

/// How one component's samples become full-resolution ones, chosen as `jinit_upsampler` does from
/// the ratio of the largest sampling factors to the component's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upsample {
    /// Full size: the samples themselves.
    Copy,
    /// 2:1 horizontal, triangle filter (`h2v1_fancy_upsample`).
    H2V1Fancy,
    /// 2:1 vertical, triangle filter (`h1v2_fancy_upsample`, 4:4:0).
    H1V2Fancy,
    /// 2:1 both ways, triangle filter (`h2v2_fancy_upsample`, 4:2:0).
    H2V2Fancy,
    /// Any other integral ratio, or 2:1 on a component at most 2 samples wide: replication.
    Box { h: usize, v: usize },
}

impl Upsample {
    /// `h`, `v`: how many times the component is subsampled; `width`: its downsampled width.
    pub fn choose(h: usize, v: usize, width: usize) -> Upsample {
        match (h, v) {
            (1, 1) => Upsample::Copy,
            (2, 1) if width > 2 => Upsample::H2V1Fancy,
            (1, 2) => Upsample::H1V2Fancy,
            (2, 2) if width > 2 => Upsample::H2V2Fancy,
            (h, v) => Upsample::Box { h, v },
        }
    }

    /// The component row nearest output row `y` and, for the vertical triangle filters, the next
    /// nearest (above for even `y`, below for odd), clamped to the `rows` real rows as libjpeg's
    /// context rows replicate the first and last.
    pub fn rows(self, y: usize, rows: usize) -> (usize, usize) {
        match self {
            Upsample::H1V2Fancy | Upsample::H2V2Fancy => {
                let near = y / 2;
                let far = if y.is_multiple_of(2) { near.saturating_sub(1) } else { (near + 1).min(rows - 1) };
                (near, far)
            }
            Upsample::Box { v, .. } => (y / v, y / v),
            Upsample::Copy | Upsample::H2V1Fancy => (y, y),
        }
    }

    /// Writes `out.len()` full-resolution samples of output row `y` from the component rows
    /// [`rows`] named, `width` samples of each real.
    pub fn row(self, y: usize, near: &[u8], far: &[u8], width: usize, out: &mut [u8]) {
        match self {
            Upsample::Copy => out.copy_from_slice(&near[..out.len()]),
            Upsample::Box { h, .. } => out.iter_mut().enumerate().for_each(|(x, o)| *o = near[x / h]),
            Upsample::H1V2Fancy => {
                let bias = if y.is_multiple_of(2) { 1 } else { 2 };
                for ((o, &n), &f) in out.iter_mut().zip(near).zip(far) {
                    *o = ((n as u32 * 3 + f as u32 + bias) >> 2) as u8;
                }
            }
            Upsample::H2V1Fancy => {
                let s = |x: usize| near[x] as u32;
                let mut put = |x: usize, v: u32| {
                    if x < out.len() {
                        out[x] = v as u8;
                    }
                };
                put(0, s(0));
                put(1, (s(0) * 3 + s(1) + 2) >> 2);
                for x in 1..width - 1 {
                    put(2 * x, (s(x) * 3 + s(x - 1) + 1) >> 2);
                    put(2 * x + 1, (s(x) * 3 + s(x + 1) + 2) >> 2);
                }
                let last = width - 1;
                put(2 * last, (s(last) * 3 + s(last - 1) + 1) >> 2);
                put(2 * last + 1, s(last));
            }
            Upsample::H2V2Fancy => {
                let col = |x: usize| near[x] as u32 * 3 + far[x] as u32;
                let mut put = |x: usize, v: u32| {
                    if x < out.len() {
                        out[x] = v as u8;
                    }
                };
                put(0, (col(0) * 4 + 8) >> 4);
                put(1, (col(0) * 3 + col(1) + 7) >> 4);
                for x in 1..width - 1 {
                    put(2 * x, (col(x) * 3 + col(x - 1) + 8) >> 4);
                    put(2 * x + 1, (col(x) * 3 + col(x + 1) + 7) >> 4);
                }
                let last = width - 1;
                put(2 * last, (col(last) * 3 + col(last - 1) + 8) >> 4);
                put(2 * last + 1, (col(last) * 4 + 7) >> 4);
            }
        }
    }
}

const SCALEBITS: u32 = 16;
const ONE_HALF: i64 = 1 << (SCALEBITS - 1);

fn fix(x: f64) -> i64 {
    (x * (1i64 << SCALEBITS) as f64 + 0.5) as i64
}

/// jdcolor.c's YCbCr -> RGB tables: Cr -> R and Cb -> B rounded ahead, the G terms kept scaled.
pub struct YccTables {
    cr_r: [i32; 256],
    cb_b: [i32; 256],
    cr_g: [i64; 256],
    cb_g: [i64; 256],
}

impl YccTables {
    pub fn new() -> YccTables {
        let mut t = YccTables { cr_r: [0; 256], cb_b: [0; 256], cr_g: [0; 256], cb_g: [0; 256] };
        for i in 0..256 {
            let x = i as i64 - 128;
            t.cr_r[i] = ((fix(1.40200) * x + ONE_HALF) >> SCALEBITS) as i32;
            t.cb_b[i] = ((fix(1.77200) * x + ONE_HALF) >> SCALEBITS) as i32;
            t.cr_g[i] = -fix(0.71414) * x;
            t.cb_g[i] = -fix(0.34414) * x + ONE_HALF;
        }
        t
    }

    /// Interleaves one row of full-resolution Y, Cb, Cr into RGB.
    pub fn convert(&self, y: &[u8], cb: &[u8], cr: &[u8], rgb: &mut [u8]) {
        let clamp = |v: i32| v.clamp(0, 255) as u8;
        for (((px, &y), &cb), &cr) in rgb.chunks_exact_mut(3).zip(y).zip(cb).zip(cr) {
            let (y, cb, cr) = (y as i32, cb as usize, cr as usize);
            px[0] = clamp(y + self.cr_r[cr]);
            px[1] = clamp(y + ((self.cb_g[cb] + self.cr_g[cr]) >> SCALEBITS) as i32);
            px[2] = clamp(y + self.cb_b[cb]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upsampler_is_chosen_by_ratio_as_libjpeg_does() {
        assert_eq!(Upsample::choose(1, 1, 9), Upsample::Copy);
        assert_eq!(Upsample::choose(2, 1, 9), Upsample::H2V1Fancy);
        assert_eq!(Upsample::choose(1, 2, 1), Upsample::H1V2Fancy);
        assert_eq!(Upsample::choose(2, 2, 3), Upsample::H2V2Fancy);
        // Too narrow for the triangle filter's two end columns.
        assert_eq!(Upsample::choose(2, 2, 2), Upsample::Box { h: 2, v: 2 });
        assert_eq!(Upsample::choose(4, 1, 50), Upsample::Box { h: 4, v: 1 });
    }

    #[test]
    fn h2v1_fancy_weights_three_quarters_near_with_alternating_rounding() {
        let mut out = [0u8; 8];
        Upsample::H2V1Fancy.row(0, &[0, 4, 8, 200], &[], 4, &mut out);
        // Ends copy; inside (3 * near + far + 1 or 2) / 4.
        assert_eq!(out, [0, 1, 3, 5, 7, 56, 152, 200]);
    }

    #[test]
    fn h2v2_fancy_blends_the_row_above_for_even_rows_and_below_for_odd() {
        assert_eq!(Upsample::H2V2Fancy.rows(0, 5), (0, 0));
        assert_eq!(Upsample::H2V2Fancy.rows(1, 5), (0, 1));
        assert_eq!(Upsample::H2V2Fancy.rows(4, 5), (2, 1));
        assert_eq!(Upsample::H2V2Fancy.rows(9, 5), (4, 4));
        let mut out = [0u8; 6];
        Upsample::H2V2Fancy.row(1, &[16, 32, 48], &[0, 0, 0], 3, &mut out);
        // Column sums 3 * near + far = 48, 96, 144; then (3 * this + neighbour + 8 or 7) / 16.
        assert_eq!(out, [12, 15, 21, 27, 33, 36]);
    }

    #[test]
    fn ycc_tables_match_jdcolor() {
        let t = YccTables::new();
        let mut rgb = [0u8; 9];
        t.convert(&[128, 0, 255], &[128, 255, 0], &[128, 0, 255], &mut rgb);
        // Neutral gray stays; saturated chroma clamps.
        assert_eq!(rgb[..3], [128, 128, 128]);
        assert_eq!(rgb[3..6], [0, 48, 225]);
        assert_eq!(rgb[6..], [255, 208, 28]);
    }
}
