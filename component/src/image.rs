//! Image input: decode (PNG/JPEG/BMP) → RGB, or Pillow's integer luma → Pillow-compatible bilinear
//! resize → normalize → quantize.
//!
//! This is the documented default preprocessing, the same rule `golden/generate.py` applies with Pillow:
//! `convert('RGB')` / `convert('L')`, `resize((W, H), BILINEAR)` over the whole image (no crop),
//! `real = (pixel - mean) / std` and `q = round_half_away(real / scale) + zero_point`, all in f32.
//! `normalize` and `quantize` are bit-identical to the script. Decoding and resizing match Pillow to
//! within the bounds the golden test below measures: PNG/BMP decode exactly; the resize follows Pillow's
//! pass order but fast_image_resize's coarser fixed-point weights move ~0.3% of the pixels by one level
//! (up to 2, rarely); zune-jpeg differs from libjpeg-turbo on ~1% of decoded pixels (4:2:0 files: more).
//! Not covered: 16-bit images (converted by scaling, Pillow truncates or clips), EXIF orientation (ignored
//! on both sides), CMYK JPEGs.

use std::io::Cursor;

use fast_image_resize as fr;
use image::{DynamicImage, ImageError, ImageReader, Limits};

use crate::error::{Error, Result};

/// Largest accepted source width or height, in pixels.
pub const MAX_DIMENSION: u32 = 16_384;
/// Largest decoded image, in bytes, the decoder may allocate (a 48 MP RGB photo is 144 MiB).
pub const MAX_DECODED_BYTES: u64 = 256 << 20;

/// Decode `bytes` (PNG, JPEG or BMP), convert to RGB (`channels == 3`) or to Pillow's luma
/// (`channels == 1`) and resize to `width` x `height` with Pillow-compatible bilinear convolution.
/// Returns HWC u8 pixels, `width * height * channels` of them.
pub fn decode_resize(bytes: &[u8], width: u32, height: u32, channels: u32) -> Result<Vec<u8>> {
    resize_to(bytes, width, height, channels, None)
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

fn resize_to(
    bytes: &[u8],
    width: u32,
    height: u32,
    channels: u32,
    cpu: Option<fr::CpuExtensions>,
) -> Result<Vec<u8>> {
    let pixel_type = match channels {
        1 => fr::PixelType::U8,
        3 => fr::PixelType::U8x3,
        _ => {
            return Err(Error::InvalidInput(format!(
                "images have 1 or 3 channels, not {channels}"
            )))
        }
    };
    if width == 0 || height == 0 || width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(Error::InvalidInput(format!(
            "cannot resize an image to {width}x{height}"
        )));
    }
    let decoded = decode(bytes)?;
    let (src_w, src_h) = (decoded.width(), decoded.height());
    let pixels = match channels {
        3 => decoded.into_rgb8().into_raw(),
        _ => pillow_luma(decoded),
    };
    let src = fr::images::Image::from_vec_u8(src_w, src_h, pixels, pixel_type)
        .map_err(|e| Error::InvalidImage(format!("{e}")))?;
    let mut resizer = fr::Resizer::new();
    if let Some(cpu) = cpu {
        // SAFETY: callers (the tests) only pass extensions that `is_supported()` on this CPU.
        unsafe { resizer.set_cpu_extensions(cpu) };
    }
    let options =
        fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Bilinear));
    let mut pass =
        |src: &fr::images::Image, w: u32, h: u32| -> Result<fr::images::Image<'static>> {
            let mut dst = fr::images::Image::new(w, h, pixel_type);
            resizer
                .resize(src, &mut dst, &options)
                .map_err(|e| Error::InvalidImage(format!("resize: {e}")))?;
            Ok(dst)
        };
    // Pillow resamples in two 1-D passes with u8 rounding in between, and the order matters (~17% of
    // the pixels move by one level otherwise). Pillow 13 goes vertical-first only when the height shrinks
    // by more than twice as much as the width; older Pillow always went horizontal-first. fast_image_resize
    // always does the vertical pass first for u8 when it does both, so ask it for one axis at a time.
    let (shrink_h, shrink_w) = (src_h as i64 - height as i64, src_w as i64 - width as i64);
    let vertical_first = shrink_h > 0 && shrink_h > 2 * shrink_w;
    let dst = if src_w != width && src_h != height {
        let first = if vertical_first {
            pass(&src, src_w, height)?
        } else {
            pass(&src, width, src_h)?
        };
        pass(&first, width, height)?
    } else {
        pass(&src, width, height)?
    };
    Ok(dst.into_vec())
}

/// Decode with limits, so a small file that claims a huge image is refused before allocating.
fn decode(bytes: &[u8]) -> Result<DynamicImage> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::InvalidImage(e.to_string()))?;
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
        DynamicImage::ImageLumaA8(gray_alpha) => gray_alpha
            .into_raw()
            .chunks_exact(2)
            .map(|p| p[0])
            .collect(),
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
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    fn shared() -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared"))
    }
    fn golden() -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../golden"))
    }

    // ---- a minimal JSON reader, enough for golden/manifest.json ----

    #[derive(Debug, Clone)]
    enum Json {
        Null,
        Bool,
        Num(f64),
        Str(String),
        Arr(Vec<Json>),
        Obj(BTreeMap<String, Json>),
    }

    impl Json {
        fn parse(text: &str) -> Json {
            let mut p = JsonParser {
                s: text.as_bytes(),
                i: 0,
            };
            let v = p.value();
            p.ws();
            assert_eq!(p.i, p.s.len(), "trailing data in JSON");
            v
        }
        fn get(&self, key: &str) -> &Json {
            match self {
                Json::Obj(m) => m.get(key).unwrap_or_else(|| panic!("no key {key:?}")),
                _ => panic!("not an object looking up {key:?}"),
            }
        }
        fn str(&self) -> &str {
            match self {
                Json::Str(s) => s,
                v => panic!("not a string: {v:?}"),
            }
        }
        fn num(&self) -> Option<f64> {
            match self {
                Json::Num(n) => Some(*n),
                Json::Null => None,
                v => panic!("not a number: {v:?}"),
            }
        }
        fn arr(&self) -> &[Json] {
            match self {
                Json::Arr(a) => a,
                v => panic!("not an array: {v:?}"),
            }
        }
    }

    struct JsonParser<'a> {
        s: &'a [u8],
        i: usize,
    }

    impl JsonParser<'_> {
        fn ws(&mut self) {
            while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
                self.i += 1;
            }
        }
        fn eat(&mut self, c: u8) {
            self.ws();
            assert_eq!(
                self.s[self.i], c,
                "JSON: expected {:?} at {}",
                c as char, self.i
            );
            self.i += 1;
        }
        fn value(&mut self) -> Json {
            self.ws();
            match self.s[self.i] {
                b'{' => {
                    self.i += 1;
                    let mut m = BTreeMap::new();
                    self.ws();
                    if self.s[self.i] == b'}' {
                        self.i += 1;
                        return Json::Obj(m);
                    }
                    loop {
                        self.ws();
                        let Json::Str(k) = self.value() else {
                            panic!("JSON key")
                        };
                        self.eat(b':');
                        m.insert(k, self.value());
                        self.ws();
                        self.i += 1;
                        if self.s[self.i - 1] == b'}' {
                            return Json::Obj(m);
                        }
                    }
                }
                b'[' => {
                    self.i += 1;
                    let mut a = Vec::new();
                    self.ws();
                    if self.s[self.i] == b']' {
                        self.i += 1;
                        return Json::Arr(a);
                    }
                    loop {
                        a.push(self.value());
                        self.ws();
                        self.i += 1;
                        if self.s[self.i - 1] == b']' {
                            return Json::Arr(a);
                        }
                    }
                }
                b'"' => {
                    self.i += 1;
                    let mut out = String::new();
                    loop {
                        let c = self.s[self.i];
                        self.i += 1;
                        match c {
                            b'"' => return Json::Str(out),
                            b'\\' => {
                                let e = self.s[self.i];
                                self.i += 1;
                                match e {
                                    b'n' => out.push('\n'),
                                    b't' => out.push('\t'),
                                    b'u' => {
                                        let hex = std::str::from_utf8(&self.s[self.i..self.i + 4])
                                            .unwrap();
                                        self.i += 4;
                                        out.push(
                                            char::from_u32(u32::from_str_radix(hex, 16).unwrap())
                                                .unwrap_or('?'),
                                        );
                                    }
                                    other => out.push(other as char),
                                }
                            }
                            _ => {
                                // copy a whole UTF-8 sequence
                                let start = self.i - 1;
                                let mut end = self.i;
                                while end < self.s.len() && (self.s[end] & 0xC0) == 0x80 {
                                    end += 1;
                                }
                                out.push_str(std::str::from_utf8(&self.s[start..end]).unwrap());
                                self.i = end;
                            }
                        }
                    }
                }
                b't' => {
                    self.i += 4;
                    Json::Bool
                }
                b'f' => {
                    self.i += 5;
                    Json::Bool
                }
                b'n' => {
                    self.i += 4;
                    Json::Null
                }
                _ => {
                    let start = self.i;
                    while self.i < self.s.len() && b"+-0123456789.eE".contains(&self.s[self.i]) {
                        self.i += 1;
                    }
                    Json::Num(
                        std::str::from_utf8(&self.s[start..self.i])
                            .unwrap()
                            .parse()
                            .unwrap(),
                    )
                }
            }
        }
    }

    // ---- a minimal .npy reader (v1.0/v2.0, little-endian, C order) ----

    #[derive(Debug)]
    struct Npy {
        shape: Vec<usize>,
        /// integer data widened to i32, or float data
        ints: Option<Vec<i32>>,
        floats: Option<Vec<f32>>,
    }

    fn read_npy(path: &Path) -> Npy {
        let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(&b[..6], b"\x93NUMPY", "{}: not .npy", path.display());
        let (hlen, hstart) = match b[6] {
            1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
            2 | 3 => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
            v => panic!("npy version {v}"),
        };
        let header = std::str::from_utf8(&b[hstart..hstart + hlen]).unwrap();
        let data = &b[hstart + hlen..];
        let field = |key: &str| -> &str {
            let at = header
                .find(&format!("'{key}':"))
                .unwrap_or_else(|| panic!("npy header lacks {key}"));
            header[at + key.len() + 3..].trim_start()
        };
        assert!(
            field("fortran_order").starts_with("False"),
            "{}: Fortran order",
            path.display()
        );
        let descr = field("descr");
        let descr = &descr[1..descr[1..].find('\'').unwrap() + 1];
        let shape_txt = field("shape");
        let shape: Vec<usize> = shape_txt[1..shape_txt.find(')').unwrap()]
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect();
        let n: usize = shape.iter().product();
        let (ints, floats) = match descr {
            "|u1" | "<u1" => (Some(data[..n].iter().map(|&v| v as i32).collect()), None),
            "|i1" | "<i1" => (
                Some(data[..n].iter().map(|&v| v as i8 as i32).collect()),
                None,
            ),
            "<i2" => (
                Some(
                    data[..2 * n]
                        .chunks_exact(2)
                        .map(|c| i16::from_le_bytes([c[0], c[1]]) as i32)
                        .collect(),
                ),
                None,
            ),
            "<f4" => (
                None,
                Some(
                    data[..4 * n]
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                ),
            ),
            d => panic!("{}: unsupported dtype {d}", path.display()),
        };
        Npy {
            shape,
            ints,
            floats,
        }
    }

    fn dtype_range(dtype: &str) -> (i32, i32) {
        match dtype {
            "uint8" => (0, 255),
            "int8" => (-128, 127),
            "int16" => (-32768, 32767),
            d => panic!("dtype {d}"),
        }
    }

    /// Every golden photo case: decode_resize + normalize + quantize vs the golden input tensor.
    ///
    /// Compared in pixel levels: each golden element is mapped back to the pixel value(s) that the rule
    /// turns into it (so an element that no pixel produces fails the test — that checks normalize and
    /// quantize bit for bit), and the distance to our pixel is the difference. Tensor-level (quantization
    /// level) differences are printed too: one pixel level is ~1 level for int8/uint8, 257 for int16.
    #[test]
    fn image_matches_golden_inputs() {
        let manifest =
            Json::parse(&std::fs::read_to_string(golden().join("manifest.json")).unwrap());
        // source format -> (max pixel diff, differing elements, elements, max tensor-level diff, worst case share)
        let mut by_format: BTreeMap<&'static str, (i64, usize, usize, i64, f64)> = BTreeMap::new();
        let mut cases = 0;
        for model in manifest.get("models").arr() {
            let id = model.get("id").str();
            let input = model.get("input");
            let shape: Vec<u32> = input
                .get("shape")
                .arr()
                .iter()
                .map(|v| v.num().unwrap() as u32)
                .collect();
            let (h, w, c) = (shape[1], shape[2], shape[3]);
            let dtype = input.get("dtype").str();
            let scale = input.get("scale").num().map(|v| v as f32);
            let zero_point = input.get("zero_point").num().map(|v| v as i32);
            let mean = model.get("mean").num().unwrap() as f32;
            let std = model.get("std").num().unwrap() as f32;
            assert_eq!(
                model.get("color").str(),
                if c == 3 { "rgb" } else { "gray" }
            );
            // what each pixel value becomes in this model's input tensor (i64: quantized value or f32 bits)
            let table: Vec<i64> = (0..=255u8)
                .map(|p| match (scale, zero_point) {
                    (Some(scale), Some(zp)) => {
                        let (qmin, qmax) = dtype_range(dtype);
                        quantize(normalize(p, mean, std), scale, zp, qmin, qmax) as i64
                    }
                    _ => normalize(p, mean, std).to_bits() as i64,
                })
                .collect();
            for case in model.get("cases").arr() {
                if case.get("kind").str() != "photo" {
                    continue;
                }
                let image = case.get("image").str();
                let bytes = std::fs::read(shared().join("images").join(image)).unwrap();
                let pixels =
                    decode_resize(&bytes, w, h, c).unwrap_or_else(|e| panic!("{image}: {e}"));
                let want = read_npy(&golden().join(case.get("input").str()));
                assert_eq!(
                    want.shape,
                    shape.iter().map(|&d| d as usize).collect::<Vec<_>>()
                );
                let want: Vec<i64> = match (want.ints, want.floats) {
                    (Some(q), None) if scale.is_some() => q.into_iter().map(i64::from).collect(),
                    (None, Some(f)) if scale.is_none() => {
                        f.into_iter().map(|v| v.to_bits() as i64).collect()
                    }
                    _ => panic!("{id}: golden dtype does not match the manifest"),
                };
                assert_eq!(pixels.len(), want.len());
                let (mut max_px, mut max_level, mut differing) = (0i64, 0i64, 0usize);
                for (&p, &g) in pixels.iter().zip(&want) {
                    let ours = table[p as usize];
                    if ours == g {
                        continue;
                    }
                    differing += 1;
                    let px = (0..256i64)
                        .filter(|&q| table[q as usize] == g)
                        .map(|q| (q - p as i64).abs())
                        .min()
                        .unwrap_or_else(|| {
                            panic!("{id}/{image}: golden value {g} is made by no pixel")
                        });
                    max_px = max_px.max(px);
                    if scale.is_some() {
                        max_level = max_level.max((ours - g).abs());
                    }
                }
                println!(
                    "{id:36} {image:28} {differing:6}/{:6} differ, max {max_px} pixel level(s), max {max_level} tensor level(s)",
                    pixels.len()
                );
                let format = match image.rsplit('.').next().unwrap() {
                    "jpg" | "jpeg" => "jpeg",
                    "png" => "png",
                    _ => "bmp",
                };
                let e = by_format.entry(format).or_default();
                e.0 = e.0.max(max_px);
                e.1 += differing;
                e.2 += pixels.len();
                e.3 = e.3.max(max_level);
                e.4 = e.4.max(differing as f64 / pixels.len() as f64);
                cases += 1;
            }
        }
        assert_eq!(cases, 120, "expected 6 models x 20 photos");
        for (format, &(max_px, differing, total, max_level, worst_share)) in &by_format {
            let share = differing as f64 / total as f64;
            println!(
                "{format}: {differing}/{total} elements differ ({:.3}%, worst case {:.2}%), max {max_px} pixel level(s), max {max_level} tensor level(s)",
                100.0 * share,
                100.0 * worst_share
            );
            let &(_, bound_px, bound_share, bound_case) =
                BOUNDS.iter().find(|b| b.0 == *format).unwrap();
            assert!(
                max_px <= bound_px,
                "{format}: max {max_px} pixel levels > {bound_px}"
            );
            assert!(
                share <= bound_share,
                "{format}: {:.3}% of elements differ > {:.3}%",
                100.0 * share,
                100.0 * bound_share
            );
            assert!(
                worst_share <= bound_case,
                "{format}: a case with {:.2}% differing > {:.2}%",
                100.0 * worst_share,
                100.0 * bound_case
            );
        }
    }

    /// Measured bounds (see the test's printout), per source format: (format, max difference in pixel
    /// levels, max share of differing elements over all its cases, max share in any one case).
    ///
    /// Measured with image 0.25.10 / zune-jpeg 0.5.15 / fast_image_resize 6.1.0 against Pillow 13.0.0:
    /// bmp 0.336% of elements differ (worst case resized_cat.bmp 224→160: 4.34%), max 2 levels;
    /// png 0.215% (worst 0.82%), max 1; jpeg 4.87% (worst face.jpg: 20.3%), max 2.
    /// BMP and PNG decode bit-exactly like Pillow, so their differences are the resize alone:
    /// fast_image_resize's ≤15-bit coefficients vs Pillow's 22-bit ones. JPEG adds the decoder: zune-jpeg
    /// vs libjpeg-turbo differ on ~1% of decoded pixels (max 3) for 4:4:4 files and on 16% (max 4) for
    /// face.jpg, which is 4:2:0 (chroma upsampling).
    const BOUNDS: &[(&str, i64, f64, f64)] = &[
        ("bmp", 2, 0.005, 0.05),
        ("png", 1, 0.004, 0.012),
        ("jpeg", 2, 0.06, 0.22),
    ];

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
        let rgb =
            image::RgbImage::from_raw(4, 1, vec![255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255])
                .unwrap();
        assert_eq!(
            pillow_luma(DynamicImage::ImageRgb8(rgb)),
            vec![76, 150, 29, 255]
        );
        // gray passes through unchanged, and gray-as-RGB gives the same value
        for g in 0..=255u8 {
            let rgb = image::RgbImage::from_raw(1, 1, vec![g, g, g]).unwrap();
            assert_eq!(pillow_luma(DynamicImage::ImageRgb8(rgb)), vec![g]);
        }
    }

    /// The resize must not depend on which SIMD path fast_image_resize picks (the wasm build uses
    /// simd128 or scalar code, the native tests AVX2).
    #[test]
    fn image_resize_same_on_every_cpu_path() {
        let mut paths = vec![fr::CpuExtensions::None];
        #[cfg(target_arch = "x86_64")]
        {
            paths.push(fr::CpuExtensions::Sse4_1);
            paths.push(fr::CpuExtensions::Avx2);
        }
        paths.retain(|p| p.is_supported());
        for image in ["bird.bmp", "parrot.jpg", "chelsea.png"] {
            let bytes = std::fs::read(shared().join("images").join(image)).unwrap();
            for (w, h, c) in [(224, 224, 3), (160, 160, 3), (96, 96, 1), (1000, 700, 3)] {
                let base = resize_to(&bytes, w, h, c, Some(paths[0])).unwrap();
                assert_eq!(base.len(), (w * h * c) as usize);
                for &p in &paths[1..] {
                    assert!(
                        resize_to(&bytes, w, h, c, Some(p)).unwrap() == base,
                        "{image} {w}x{h}x{c} {p:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn image_bad_input_is_an_error_not_a_panic() {
        let bmp = std::fs::read(shared().join("images/bird.bmp")).unwrap();
        let png = std::fs::read(shared().join("images/chelsea.png")).unwrap();
        let jpg = std::fs::read(shared().join("images/hot_dog.jpg")).unwrap();
        // arguments
        assert!(matches!(
            decode_resize(&bmp, 10, 10, 2),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            decode_resize(&bmp, 10, 10, 4),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            decode_resize(&bmp, 0, 10, 3),
            Err(Error::InvalidInput(_))
        ));
        // garbage
        assert!(matches!(
            decode_resize(&[], 8, 8, 3),
            Err(Error::InvalidImage(_))
        ));
        assert!(matches!(
            decode_resize(b"not an image at all", 8, 8, 3),
            Err(Error::InvalidImage(_))
        ));
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
        assert!(matches!(
            decode_resize(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", 8, 8, 3),
            Err(Error::InvalidImage(_))
        ));
        // valid magic, garbage after it
        for magic in [&b"\x89PNG\r\n\x1a\n"[..], b"\xff\xd8\xff\xe0", b"BM"] {
            let mut v = magic.to_vec();
            v.extend_from_slice(&garbage[..200]);
            assert!(decode_resize(&v, 8, 8, 3).is_err(), "{magic:?} + garbage");
        }
        // truncated files: header cuts must be errors; cuts in the pixel data must at least not panic
        for (name, file) in [("bmp", &bmp), ("png", &png), ("jpeg", &jpg)] {
            for cut in [
                1usize,
                2,
                10,
                30,
                60,
                100,
                500,
                file.len() / 2,
                file.len() - 1,
            ] {
                let r = decode_resize(&file[..cut], 16, 16, 3);
                if cut <= 30 {
                    assert!(r.is_err(), "{name} cut at {cut} decoded");
                }
                if let Err(e) = &r {
                    assert!(
                        matches!(e, Error::InvalidImage(_) | Error::TooLarge(_)),
                        "{name} cut {cut}: {e}"
                    );
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
        assert!(
            matches!(decode_resize(&bmp, 8, 8, 3), Err(Error::TooLarge(_))),
            "{:?}",
            decode_resize(&bmp, 8, 8, 3)
        );
        // Within the dimension limit but over the byte limit: 16000 x 16000 x 24 bit = 768 MB.
        bmp[18..22].copy_from_slice(&16_000i32.to_le_bytes());
        bmp[22..26].copy_from_slice(&16_000i32.to_le_bytes());
        assert!(
            matches!(decode_resize(&bmp, 8, 8, 3), Err(Error::TooLarge(_))),
            "{:?}",
            decode_resize(&bmp, 8, 8, 3)
        );

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
        assert!(
            matches!(r, Err(Error::TooLarge(_)) | Err(Error::InvalidImage(_))),
            "{r:?}"
        );
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
