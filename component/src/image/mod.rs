//! Image input: decode (PNG/JPEG/BMP, [`decode`], JPEG by our own [`jpeg`]) → RGB, or Pillow's integer
//! luma → Pillow's bilinear resize ([`resize`]): HWC pixels. What a model makes of them is `crate::input`'s.
//!
//! The same steps `golden/generate.py` applies with Pillow: `convert('RGB')` / `convert('L')`,
//! `resize((W, H), BILINEAR)` over the whole image (no crop). Every decoder gives exactly Pillow's
//! pixels (JPEG: libjpeg-turbo's, as Pillow 13 decodes it) and the resize is bit-identical to Pillow's,
//! so every golden photo gives exactly the golden input tensor.
//! `host-tests/tests/conformance/{image_pipeline,jpeg}.rs` measure all of this against `golden/`.
//!
//! Memory is bounded by design: decoders hand rows to the resizer, which keeps only its first pass's
//! output, so a PNG or sequential JPEG of any accepted size is never held whole; whole-image decoders
//! are refused above a pixel budget read from the header (`decode`). Not covered: EXIF orientation
//! (ignored on both sides), CMYK JPEGs (refused).

mod decode;
pub mod jpeg;
mod resize;

pub use decode::{MAX_BUFFERED_PIXELS, MAX_PROGRESSIVE_PIXELS};
pub use resize::{resize_bilinear, Resizer};

use crate::error::{Error, Result};

/// Largest accepted source width or height, in pixels.
pub const MAX_DIMENSION: u32 = 16_384;

/// Decode `bytes` (PNG, JPEG or BMP), convert to RGB (`channels == 3`) or to Pillow's luma
/// (`channels == 1`) and resize to `width` x `height` exactly as Pillow's bilinear `resize` does.
/// Returns HWC u8 pixels, `width * height * channels` of them.
pub fn decode_resize(bytes: &[u8], width: u32, height: u32, channels: u32) -> Result<Vec<u8>> {
    check_size(width, height, channels)?;
    let resizer = decode::decode_rows(bytes, channels, |w, h| Resizer::new(w, h, channels, width, height))?;
    Ok(resizer.finish())
}

pub(crate) fn check_size(width: u32, height: u32, channels: u32) -> Result<()> {
    if channels != 1 && channels != 3 {
        return Err(Error::InvalidInput(format!("images have 1 or 3 channels, not {channels}")));
    }
    if width == 0 || height == 0 || width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(Error::InvalidInput(format!("cannot resize an image to {width}x{height}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn shared() -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared"))
    }

    fn png_of(w: u32, h: u32, rgb: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let encoder = image::codecs::png::PngEncoder::new(&mut out);
        image::ImageEncoder::write_image(encoder, rgb, w, h, image::ExtendedColorType::Rgb8).unwrap();
        out
    }

    /// A palette PNG whose PLTE ends in a partial entry (5 bytes), indices 0 and 1 used, interlaced
    /// or not: `invalid-image` naming the palette, never the png crate's panic (a trap in wasm).
    #[test]
    fn a_palette_of_partial_entries_is_invalid_image() {
        for interlace in [0u8, 1] {
            let chunk = |kind: &[u8], data: &[u8]| {
                let mut c = (data.len() as u32).to_be_bytes().to_vec();
                c.extend_from_slice(kind);
                c.extend_from_slice(data);
                c.extend_from_slice(&crc32fast::hash(&c[4..]).to_be_bytes());
                c
            };
            let mut file = b"\x89PNG\r\n\x1a\n".to_vec();
            file.extend(chunk(b"IHDR", &[0, 0, 0, 2, 0, 0, 0, 2, 8, 3, 0, 0, interlace]));
            file.extend(chunk(b"PLTE", &[10, 20, 30, 40, 50]));
            file.extend(chunk(b"IDAT", &miniz_oxide::deflate::compress_to_vec_zlib(&[0, 0, 1, 0, 1, 0], 6)));
            file.extend(chunk(b"IEND", &[]));
            match decode_resize(&file, 2, 2, 3) {
                Err(Error::InvalidImage(m)) => assert!(m.contains("palette"), "{m}"),
                other => panic!("interlace {interlace}: {other:?}"),
            }
        }
    }

    #[test]
    fn image_luma_is_pillows() {
        // values checked against Pillow 13 convert('L')
        let png = png_of(4, 1, &[255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]);
        assert_eq!(decode_resize(&png, 4, 1, 1).unwrap(), vec![76, 150, 29, 255]);
        // gray-as-RGB gives the gray value back
        let gray: Vec<u8> = (0..=255u8).flat_map(|g| [g, g, g]).collect();
        assert_eq!(decode_resize(&png_of(256, 1, &gray), 256, 1, 1).unwrap(), (0..=255u8).collect::<Vec<_>>());
    }

    /// The streaming PNG and BMP decoders give the pixels the `image` crate decodes whole, for every
    /// shared photo, as RGB and as luma. (JPEG is our own decoder, held to Pillow's pixels instead:
    /// `host-tests` conformance `jpeg`.)
    #[test]
    fn png_and_bmp_decoders_match_the_image_crate_on_every_shared_photo() {
        for entry in std::fs::read_dir(shared().join("images")).unwrap() {
            let path = entry.unwrap().path();
            let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
            if !matches!(ext.as_str(), "png" | "bmp") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let want = image::load_from_memory(&bytes).unwrap();
            let (w, h) = (want.width(), want.height());
            let rgb = want.to_rgb8().into_raw();
            assert_eq!(decode_resize(&bytes, w, h, 3).unwrap(), rgb, "{}", path.display());
            let luma: Vec<u8> = match &want {
                image::DynamicImage::ImageLuma8(g) => g.clone().into_raw(),
                image::DynamicImage::ImageLumaA8(g) => g.as_raw().chunks_exact(2).map(|p| p[0]).collect(),
                _ => rgb
                    .chunks_exact(3)
                    .map(|p| ((p[0] as u32 * 19595 + p[1] as u32 * 38470 + p[2] as u32 * 7471 + 0x8000) >> 16) as u8)
                    .collect(),
            };
            assert_eq!(decode_resize(&bytes, w, h, 1).unwrap(), luma, "{} (luma)", path.display());
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
        // truncated files are refused, as Pillow refuses them ("image file is truncated"), wherever the cut
        // falls in the pixel data (a PNG cut after its last compressed row, in a CRC or the IEND chunk, has
        // every row and decodes, in Pillow too; so does a JPEG missing only its final EOI marker)
        for (name, file) in [("bmp", &bmp), ("png", &png), ("jpeg", &jpg)] {
            let last = match name {
                "png" => file.len() * 9 / 10,
                "jpeg" => file.len() - 3,
                _ => file.len() - 1,
            };
            for cut in [1usize, 2, 10, 30, 60, 100, 500, file.len() / 3, file.len() / 2, last] {
                let r = decode_resize(&file[..cut], 16, 16, 3);
                assert!(matches!(r, Err(Error::InvalidImage(_))), "{name} cut at {cut}: {r:?}");
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
        png.extend_from_slice(&crc32fast::hash(&ihdr).to_be_bytes());
        let r = decode_resize(&png, 8, 8, 3);
        assert!(matches!(r, Err(Error::TooLarge(_)) | Err(Error::InvalidImage(_))), "{r:?}");
    }
}
