//! Image input: decode (PNG/JPEG/BMP) → RGB, or Pillow's integer luma → Pillow's bilinear resize →
//! normalize → quantize.
//!
//! This is the documented default preprocessing, the same rule `golden/generate.py` applies with Pillow:
//! `convert('RGB')` / `convert('L')`, `resize((W, H), BILINEAR)` over the whole image (no crop),
//! `real = (pixel - mean) / std` and `q = round_half_away(real / scale) + zero_point`, all in f32.
//! The resize ([`resize_bilinear`]) and `normalize` / `quantize` are bit-identical to the script, and
//! PNG/BMP decode exactly like Pillow, so PNG and BMP photos give exactly the golden input tensors; JPEG
//! adds the decoder: zune-jpeg differs from libjpeg-turbo on ~1% of decoded pixels (4:2:0 files: more).
//! `host-tests/tests/conformance/image_pipeline.rs` measures all of this against `golden/`.
//! Not covered: 16-bit images (converted by scaling, Pillow truncates or clips), EXIF orientation (ignored
//! on both sides), CMYK JPEGs.

use std::io::Cursor;
use std::ops::Range;

use image::{DynamicImage, ImageError, ImageReader, Limits};

use crate::error::{Error, Result};

/// Largest accepted source width or height, in pixels.
pub const MAX_DIMENSION: u32 = 16_384;
/// Largest decoded image, in bytes, the decoder may allocate (a 48 MP RGB photo is 144 MiB).
pub const MAX_DECODED_BYTES: u64 = 256 << 20;

/// Decode `bytes` (PNG, JPEG or BMP), convert to RGB (`channels == 3`) or to Pillow's luma
/// (`channels == 1`) and resize to `width` x `height` exactly as Pillow's bilinear `resize` does.
/// Returns HWC u8 pixels, `width * height * channels` of them.
pub fn decode_resize(bytes: &[u8], width: u32, height: u32, channels: u32) -> Result<Vec<u8>> {
    check_size(width, height, channels)?;
    let decoded = decode(bytes)?;
    let (src_w, src_h) = (decoded.width(), decoded.height());
    let pixels = match channels {
        3 => decoded.into_rgb8().into_raw(),
        _ => pillow_luma(decoded),
    };
    if (src_w, src_h) == (width, height) {
        return Ok(pixels); // Pillow returns a copy: no filtering at all
    }
    resize_bilinear(&pixels, src_w, src_h, channels, width, height)
}

/// `(pixel - mean) / std`, in f32 (exactly numpy's float32 arithmetic in the golden script).
#[inline]
pub fn normalize(pixel: u8, mean: f32, std: f32) -> f32 {
    (pixel as f32 - mean) / std
}

/// `round_half_away_from_zero(real / scale) + zero_point`, clamped to `qmin..=qmax`. The division is f32;
/// `f32::round` rounds exact ties away from zero, as the golden script does.
#[inline]
pub fn quantize(real: f32, scale: f32, zero_point: i32, qmin: i32, qmax: i32) -> i32 {
    // `as` saturates (NaN → 0), so nothing here can overflow.
    let q = (real / scale).round() as i32;
    q.saturating_add(zero_point).clamp(qmin, qmax)
}

fn check_size(width: u32, height: u32, channels: u32) -> Result<()> {
    if channels != 1 && channels != 3 {
        return Err(Error::InvalidInput(format!("images have 1 or 3 channels, not {channels}")));
    }
    if width == 0 || height == 0 || width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(Error::InvalidInput(format!("cannot resize an image to {width}x{height}")));
    }
    Ok(())
}

// ---- Pillow's bilinear resampling, bit for bit ----
//
// Why not fast_image_resize (used before): its convolution is the same filter but with ≤15-bit
// fixed-point weights where Pillow uses 22 bits, so ~0.3% of the resized values came out 1 level off
// (up to 2; 4.3% of the values of resized_cat.bmp 224→160). That was enough to flip the top-1 of two
// low-confidence photos (dragonfly.bmp, imprinting_dog_test_0.bmp on dog_breeds int8). Reproducing
// Pillow's arithmetic makes the resize exact, so BMP/PNG inputs equal the golden tensors.
//
// Pillow (`ImagingResample`, 8-bit path) resizes in two separable 1-D passes, rounding to u8 in
// between. Per output coordinate of an axis: `scale = in / out`, the triangle filter (support 1)
// widened by `max(scale, 1)`, taps `[trunc(center - support + 0.5), trunc(center + support + 0.5))`
// clipped to the image, weights normalized to sum 1 in f64 and then rounded to fixed point with
// `PRECISION_BITS` fraction bits. Each pass accumulates in i32 from `1 << (PRECISION_BITS - 1)` and
// clips `acc >> PRECISION_BITS` to 0..=255. A pass whose dimension does not change is skipped.

/// Fraction bits of Pillow's 8-bit resampling weights: `32 - 8 - 2`.
const PRECISION_BITS: u32 = 32 - 8 - 2;
const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// The filter of one axis: output coordinate `i` reads source taps `bounds[i].0 ..` (`bounds[i].1` of
/// them) with the fixed-point weights `weights[i * ksize ..][.. bounds[i].1]`.
struct Axis {
    ksize: usize,
    bounds: Vec<(usize, usize)>,
    weights: Vec<i32>,
}

/// Pillow's bilinear (triangle) filter.
#[inline]
fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}

impl Axis {
    /// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for the whole source range `0..in_size`
    /// (in and out sizes ≥ 1). The f64 operations are Pillow's, in Pillow's order.
    fn bilinear(in_size: usize, out_size: usize) -> Axis {
        let scale = in_size as f64 / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = filterscale; // the triangle's support (1.0) widened when shrinking
        let ksize = support.ceil() as usize * 2 + 1;
        let ss = 1.0 / filterscale;
        let mut bounds = Vec::with_capacity(out_size);
        let mut weights = vec![0i32; out_size * ksize];
        let mut w = vec![0f64; ksize];
        for (i, out) in weights.chunks_exact_mut(ksize).enumerate() {
            let center = (i as f64 + 0.5) * scale;
            // `as` truncates toward zero like C's (int) cast; both ends are clipped to the image.
            let first = ((center - support + 0.5) as i64).max(0);
            let end = ((center + support + 0.5) as i64).min(in_size as i64);
            // Never more than ksize taps (2 * support + 1 spans at most that many integers).
            let len = (end - first).clamp(0, ksize as i64) as usize;
            let mut total = 0.0;
            for (x, w) in w[..len].iter_mut().enumerate() {
                *w = triangle(((first + x as i64) as f64 - center + 0.5) * ss);
                total += *w;
            }
            for (k, &w) in out.iter_mut().zip(&w[..len]) {
                let w = if total != 0.0 { w / total } else { w };
                let scaled = w * (1u32 << PRECISION_BITS) as f64;
                *k = if w < 0.0 { (scaled - 0.5) as i32 } else { (scaled + 0.5) as i32 };
            }
            bounds.push((first as usize, len));
        }
        Axis { ksize, bounds, weights }
    }

    /// The source range this axis reads (Pillow crops the intermediate image to it).
    fn span(&self) -> Range<usize> {
        let first = self.bounds.iter().map(|b| b.0).min().unwrap_or(0);
        let end = self.bounds.iter().map(|b| b.0 + b.1).max().unwrap_or(0);
        first..end.max(first)
    }

    fn taps(&self, i: usize) -> (usize, &[i32]) {
        let (first, len) = self.bounds[i];
        (first, &self.weights[i * self.ksize..][..len])
    }
}

/// Pillow's `clip8`: the accumulator's integer part, clipped to a u8.
#[inline]
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

// Overflow: weights are ≥ 0 and each is rounded up by at most 0.5, so an accumulator stays below
// HALF + 255 * (2^22 + ksize / 2) < 1.08e9 for ksize ≤ 2 * MAX_DIMENSION + 1: i32 is enough, as in Pillow.

/// Horizontal pass: rows `rows` of `src` (`src_w` pixels of `C` channels each), whose leftmost stored
/// column is source column `col_offset`, into `dst` (`axis.bounds.len()` pixels per row).
fn horizontal<const C: usize>(
    src: &[u8],
    src_w: usize,
    rows: Range<usize>,
    col_offset: usize,
    axis: &Axis,
    dst: &mut [u8],
) {
    let out_w = axis.bounds.len();
    for (dst_row, y) in dst.chunks_exact_mut(out_w * C).zip(rows) {
        let src_row = &src[y * src_w * C..][..src_w * C];
        for (x, px) in dst_row.chunks_exact_mut(C).enumerate() {
            let (first, k) = axis.taps(x);
            let taps = &src_row[(first - col_offset) * C..][..k.len() * C];
            let mut acc = [HALF; C];
            for (t, &k) in taps.chunks_exact(C).zip(k) {
                for c in 0..C {
                    acc[c] += t[c] as i32 * k;
                }
            }
            for c in 0..C {
                px[c] = clip8(acc[c]);
            }
        }
    }
}

/// Vertical pass: columns `cols` of `src` (`src_w` pixels of `channels` each per row), whose top stored
/// row is source row `row_offset`, into `dst` (`cols.len()` pixels per row, `axis.bounds.len()` rows).
fn vertical(
    src: &[u8],
    src_w: usize,
    channels: usize,
    cols: Range<usize>,
    row_offset: usize,
    axis: &Axis,
    dst: &mut [u8],
) {
    let row_len = cols.len() * channels;
    if row_len == 0 {
        return;
    }
    let mut acc = vec![0i32; row_len];
    for (y, dst_row) in dst.chunks_exact_mut(row_len).enumerate() {
        let (first, k) = axis.taps(y);
        acc.fill(HALF);
        for (t, &k) in k.iter().enumerate() {
            let row = (first - row_offset + t) * src_w + cols.start;
            for (a, &p) in acc.iter_mut().zip(&src[row * channels..][..row_len]) {
                *a += p as i32 * k;
            }
        }
        for (d, &a) in dst_row.iter_mut().zip(&acc) {
            *d = clip8(a);
        }
    }
}

/// Resize HWC u8 pixels (`channels` 1 or 3) from `src_w` x `src_h` to `width` x `height` exactly as
/// Pillow 13's `Image.resize((width, height), Image.BILINEAR)` does (see `golden/README.md`).
pub fn resize_bilinear(src: &[u8], src_w: u32, src_h: u32, channels: u32, width: u32, height: u32) -> Result<Vec<u8>> {
    check_size(width, height, channels)?;
    let (sw, sh, w, h, c) = (src_w as usize, src_h as usize, width as usize, height as usize, channels as usize);
    if sw == 0 || sh == 0 || sw.checked_mul(sh).and_then(|n| n.checked_mul(c)) != Some(src.len()) {
        return Err(Error::InvalidInput(format!("{} bytes are not a {src_w}x{src_h}x{channels} image", src.len())));
    }
    let pass_h = |src: &[u8], src_w: usize, rows: Range<usize>, offset: usize, axis: &Axis| {
        let mut dst = vec![0u8; axis.bounds.len() * rows.len() * c];
        match c {
            1 => horizontal::<1>(src, src_w, rows, offset, axis, &mut dst),
            _ => horizontal::<3>(src, src_w, rows, offset, axis, &mut dst),
        }
        dst
    };
    let pass_v = |src: &[u8], src_w: usize, cols: Range<usize>, offset: usize, axis: &Axis| {
        let mut dst = vec![0u8; cols.len() * axis.bounds.len() * c];
        vertical(src, src_w, c, cols, offset, axis, &mut dst);
        dst
    };
    Ok(match (w != sw, h != sh) {
        (false, false) => src.to_vec(),
        (true, false) => pass_h(src, sw, 0..sh, 0, &Axis::bilinear(sw, w)),
        (false, true) => pass_v(src, sw, 0..sw, 0, &Axis::bilinear(sh, h)),
        (true, true) => {
            let (across, down) = (Axis::bilinear(sw, w), Axis::bilinear(sh, h));
            // Pillow 13 goes vertical-first iff the height shrinks by more than twice as much as the
            // width (older Pillow: always horizontal-first). The order changes ~17% of the values by one
            // level. The intermediate keeps only the rows (columns) the second pass reads, as Pillow's.
            let (shrink_h, shrink_w) = (sh as i64 - h as i64, sw as i64 - w as i64);
            if shrink_h > 0 && shrink_h > 2 * shrink_w {
                let cols = across.span();
                let tmp = pass_v(src, sw, cols.clone(), 0, &down);
                pass_h(&tmp, cols.len(), 0..h, cols.start, &across)
            } else {
                let rows = down.span();
                let tmp = pass_h(src, sw, rows.clone(), 0, &across);
                pass_v(&tmp, w, 0..w, rows.start, &down)
            }
        }
    })
}

/// Decode with limits, so a small file that claims a huge image is refused before allocating.
fn decode(bytes: &[u8]) -> Result<DynamicImage> {
    let mut reader =
        ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| Error::InvalidImage(e.to_string()))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    let image = reader.decode().map_err(|e| match e {
        ImageError::Limits(_) => Error::TooLarge(format!(
            "image exceeds {MAX_DIMENSION}x{MAX_DIMENSION} pixels or {} MiB decoded: {e}",
            MAX_DECODED_BYTES >> 20
        )),
        e => Error::InvalidImage(e.to_string()),
    })?;
    if image.width() == 0 || image.height() == 0 {
        return Err(Error::InvalidImage("image has no pixels".into()));
    }
    Ok(image)
}

/// Pillow's `convert('L')`: ITU-R 601 luma in 16-bit fixed point, rounded,
/// `L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16`; alpha is ignored. Gray images pass through.
fn pillow_luma(image: DynamicImage) -> Vec<u8> {
    match image {
        DynamicImage::ImageLuma8(gray) => gray.into_raw(),
        DynamicImage::ImageLumaA8(gray_alpha) => gray_alpha.into_raw().chunks_exact(2).map(|p| p[0]).collect(),
        other => other
            .into_rgb8()
            .into_raw()
            .chunks_exact(3)
            .map(|p| {
                let l = p[0] as u32 * 19595 + p[1] as u32 * 38470 + p[2] as u32 * 7471 + 0x8000;
                (l >> 16) as u8
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn shared() -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared"))
    }

    #[test]
    fn image_quantize_rounds_ties_away_from_zero() {
        assert_eq!(quantize(0.5, 1.0, 0, -128, 127), 1);
        assert_eq!(quantize(-0.5, 1.0, 0, -128, 127), -1);
        assert_eq!(quantize(1.5, 1.0, 0, -128, 127), 2);
        assert_eq!(quantize(-2.5, 1.0, 0, -128, 127), -3);
        assert_eq!(quantize(0.49999997, 1.0, 0, -128, 127), 0);
        assert_eq!(quantize(-0.49999997, 1.0, 0, -128, 127), 0);
        assert_eq!(quantize(1.0, 1.0 / 128.0, 128, 0, 255), 255); // 256 clamps
        assert_eq!(quantize(f32::NAN, 1.0, 3, 0, 255), 3);
        assert_eq!(quantize(f32::INFINITY, 1.0, 3, 0, 255), 255);
        assert_eq!(quantize(-1e30, 1.0, 3, -32768, 32767), -32768);
        // The real input scale 1/127.5 (mobilenet_v2 ptq, zero point 127), values checked with numpy
        // float32: pixel 127 → -0.5 and 200 → 72.5 exactly (ties: away from zero, not to even), pixel 0
        // → -127.49999 (not a tie).
        let scale = 0.007_843_138_f32; // 1/127.5 as stored in the models (f32 0.0078431377...)
        let q = |p: u8| quantize(normalize(p, 127.5, 127.5), scale, 127, 0, 255);
        assert_eq!(normalize(127, 127.5, 127.5) / scale, -0.5);
        assert_eq!(normalize(200, 127.5, 127.5) / scale, 72.5);
        assert_eq!((q(127), q(128), q(200)), (126, 128, 200));
        assert_eq!((q(0), q(255)), (0, 254));
        assert_eq!(normalize(255, 127.5, 127.5), 1.0);
        assert_eq!(normalize(0, 127.5, 127.5), -1.0);
    }

    #[test]
    fn image_luma_is_pillows() {
        // values checked against Pillow 13 convert('L')
        let rgb = image::RgbImage::from_raw(4, 1, vec![255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]).unwrap();
        assert_eq!(pillow_luma(DynamicImage::ImageRgb8(rgb)), vec![76, 150, 29, 255]);
        // gray passes through unchanged, and gray-as-RGB gives the same value
        for g in 0..=255u8 {
            let rgb = image::RgbImage::from_raw(1, 1, vec![g, g, g]).unwrap();
            assert_eq!(pillow_luma(DynamicImage::ImageRgb8(rgb)), vec![g]);
        }
    }

    /// Small cases whose expected values come from Pillow 13.0.0 (`Image.fromarray(a).resize((w, h),
    /// Image.BILINEAR)` on the same pattern). 3x2 RGB → 5x3 goes horizontal-first and 6x20 gray → 5x4
    /// vertical-first; each would differ in the other order.
    #[test]
    fn image_resize_matches_pillow() {
        let pattern = |w: u32, h: u32, c: u32| -> Vec<u8> {
            let mut v = Vec::new();
            for y in 0..h {
                for x in 0..w {
                    for ch in 0..c {
                        v.push(((x * 53 + y * 97 + ch * 31 + (x * y * 7) % 13) * 37 % 256) as u8);
                    }
                }
            }
            v
        };
        // (source width, height, channels, output width, height, Pillow's output)
        type Case = (u32, u32, u32, u32, u32, &'static [u8]);
        let cases: [Case; 4] = [
            (7, 5, 1, 3, 2, &[108, 140, 142, 115, 172, 144]),
            (
                3,
                2,
                3,
                5,
                3,
                &[
                    0, 123, 246, 68, 88, 211, 169, 36, 159, 117, 137, 107, 82, 205, 72, 3, 126, 249, 71, 91, 214, 173,
                    40, 163, 131, 152, 121, 103, 226, 93, 5, 128, 251, 74, 94, 217, 177, 44, 167, 145, 166, 135, 124,
                    247, 114,
                ],
            ),
            (
                6,
                20,
                1,
                5,
                4,
                &[42, 150, 145, 145, 118, 45, 101, 141, 142, 124, 82, 155, 143, 137, 129, 84, 97, 122, 128, 133],
            ),
            (1, 1, 3, 2, 2, &[0, 123, 246, 0, 123, 246, 0, 123, 246, 0, 123, 246]),
        ];
        for (sw, sh, c, w, h, want) in cases {
            let got = resize_bilinear(&pattern(sw, sh, c), sw, sh, c, w, h).unwrap();
            assert_eq!(got, want, "{sw}x{sh}x{c} -> {w}x{h}");
        }
        // same size: a copy; wrong buffer sizes and channel counts: errors, not panics
        let p = pattern(4, 3, 3);
        assert_eq!(resize_bilinear(&p, 4, 3, 3, 4, 3).unwrap(), p);
        assert!(resize_bilinear(&p, 4, 4, 3, 2, 2).is_err());
        assert!(resize_bilinear(&p, 0, 3, 3, 2, 2).is_err());
        assert!(resize_bilinear(&p, 6, 3, 2, 2, 2).is_err());
        // extreme ratios
        let wide = pattern(MAX_DIMENSION, 1, 1);
        assert_eq!(resize_bilinear(&wide, MAX_DIMENSION, 1, 1, 1, 1).unwrap().len(), 1);
        assert_eq!(resize_bilinear(&[7], 1, 1, 1, 3, MAX_DIMENSION).unwrap(), vec![7; 3 * MAX_DIMENSION as usize]);
    }

    #[test]
    fn image_bad_input_is_an_error_not_a_panic() {
        let bmp = std::fs::read(shared().join("images/bird.bmp")).unwrap();
        let png = std::fs::read(shared().join("images/chelsea.png")).unwrap();
        let jpg = std::fs::read(shared().join("images/hot_dog.jpg")).unwrap();
        // arguments
        assert!(matches!(decode_resize(&bmp, 10, 10, 2), Err(Error::InvalidInput(_))));
        assert!(matches!(decode_resize(&bmp, 10, 10, 4), Err(Error::InvalidInput(_))));
        assert!(matches!(decode_resize(&bmp, 0, 10, 3), Err(Error::InvalidInput(_))));
        // garbage
        assert!(matches!(decode_resize(&[], 8, 8, 3), Err(Error::InvalidImage(_))));
        assert!(matches!(decode_resize(b"not an image at all", 8, 8, 3), Err(Error::InvalidImage(_))));
        let mut noise = 0x1234_5678u32;
        let garbage: Vec<u8> = (0..4096)
            .map(|_| {
                noise ^= noise << 13;
                noise ^= noise >> 17;
                noise ^= noise << 5;
                noise as u8
            })
            .collect();
        assert!(decode_resize(&garbage, 8, 8, 3).is_err());
        // a format we do not decode
        assert!(matches!(decode_resize(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", 8, 8, 3), Err(Error::InvalidImage(_))));
        // valid magic, garbage after it
        for magic in [&b"\x89PNG\r\n\x1a\n"[..], b"\xff\xd8\xff\xe0", b"BM"] {
            let mut v = magic.to_vec();
            v.extend_from_slice(&garbage[..200]);
            assert!(decode_resize(&v, 8, 8, 3).is_err(), "{magic:?} + garbage");
        }
        // truncated files: header cuts must be errors; cuts in the pixel data must at least not panic
        for (name, file) in [("bmp", &bmp), ("png", &png), ("jpeg", &jpg)] {
            for cut in [1usize, 2, 10, 30, 60, 100, 500, file.len() / 2, file.len() - 1] {
                let r = decode_resize(&file[..cut], 16, 16, 3);
                if cut <= 30 {
                    assert!(r.is_err(), "{name} cut at {cut} decoded");
                }
                if let Err(e) = &r {
                    assert!(matches!(e, Error::InvalidImage(_) | Error::TooLarge(_)), "{name} cut {cut}: {e}");
                }
            }
        }
    }

    #[test]
    fn image_decompression_bombs_are_refused() {
        // A 54-byte BMP header that claims 60000 x 60000 x 24 bit (10 GB of pixels).
        let mut bmp = Vec::new();
        bmp.extend_from_slice(b"BM");
        bmp.extend_from_slice(&(54u32 + 16).to_le_bytes()); // file size (a lie)
        bmp.extend_from_slice(&0u32.to_le_bytes());
        bmp.extend_from_slice(&54u32.to_le_bytes()); // pixel data offset
        bmp.extend_from_slice(&40u32.to_le_bytes()); // BITMAPINFOHEADER
        bmp.extend_from_slice(&60_000i32.to_le_bytes());
        bmp.extend_from_slice(&60_000i32.to_le_bytes());
        bmp.extend_from_slice(&1u16.to_le_bytes());
        bmp.extend_from_slice(&24u16.to_le_bytes());
        bmp.extend_from_slice(&[0u8; 24]);
        bmp.extend_from_slice(&[0u8; 16]);
        assert!(matches!(decode_resize(&bmp, 8, 8, 3), Err(Error::TooLarge(_))), "{:?}", decode_resize(&bmp, 8, 8, 3));
        // Within the dimension limit but over the byte limit: 16000 x 16000 x 24 bit = 768 MB.
        bmp[18..22].copy_from_slice(&16_000i32.to_le_bytes());
        bmp[22..26].copy_from_slice(&16_000i32.to_le_bytes());
        assert!(matches!(decode_resize(&bmp, 8, 8, 3), Err(Error::TooLarge(_))), "{:?}", decode_resize(&bmp, 8, 8, 3));

        // A PNG whose IHDR claims 100000 x 100000 (a valid chunk, CRC included).
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(&ihdr);
        png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
        let r = decode_resize(&png, 8, 8, 3);
        assert!(matches!(r, Err(Error::TooLarge(_)) | Err(Error::InvalidImage(_))), "{r:?}");
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }
}
