//! Images at the decoders' memory budgets (`component/src/image/decode.rs`), made on the fly: the
//! classifier's memory tests (tests/conformance/memory.rs) and the Worker's isolate bound
//! (tests/apps/worker.rs) send them.

/// Pixels with detail everywhere (so the JPEG is not trivially small), RGB.
pub fn pattern(w: u32, h: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            v.extend([(x * 7 + y) as u8, ((y * 5) ^ x) as u8, ((x * y) >> 6) as u8]);
        }
    }
    v
}

/// A baseline RGB JPEG of [`pattern`] at quality 90.
pub fn jpeg(w: u32, h: u32) -> Vec<u8> {
    jpeg_at(w, h, 90)
}

/// The same at `quality` (a 4096x3072 one fits a 4 MiB body at 50).
pub fn jpeg_at(w: u32, h: u32, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode(&pattern(w, h), w, h, image::ExtendedColorType::Rgb8)
        .expect("encoding a JPEG");
    out
}

/// A baseline JPEG of one flat gray (`image`'s encoder, 4:2:0): a small file of as many pixels as
/// asked for, which a streaming decoder must not hold.
pub fn jpeg_flat(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 50)
        .encode(&vec![128u8; (w * h * 3) as usize], w, h, image::ExtendedColorType::Rgb8)
        .expect("encoding a JPEG");
    out
}

/// Only the 54 bytes of headers of a 24-bit BMP of `w x h` (a negative height: top-down rows), no pixel
/// data: its size is refused or accepted from them, before anything is decoded.
pub fn bmp_header(w: i32, h: i32) -> Vec<u8> {
    let mut bmp = b"BM".to_vec();
    for v in [54u32, 0, 54, 40] {
        bmp.extend_from_slice(&v.to_le_bytes()); // file size, reserved, pixel offset, BITMAPINFOHEADER
    }
    bmp.extend_from_slice(&w.to_le_bytes());
    bmp.extend_from_slice(&h.to_le_bytes());
    bmp.extend_from_slice(&[1, 0, 24, 0]); // planes, bits per pixel
    bmp.extend_from_slice(&[0u8; 24]); // compression, sizes, resolution, palette
    bmp
}

/// A black RGB PNG: a tiny file of `w * h * 3` bytes of pixels.
pub fn png_black(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let encoder = image::codecs::png::PngEncoder::new_with_quality(
        &mut out,
        image::codecs::png::CompressionType::Best,
        image::codecs::png::FilterType::NoFilter,
    );
    image::ImageEncoder::write_image(encoder, &vec![0u8; (w * h * 3) as usize], w, h, image::ExtendedColorType::Rgb8)
        .expect("encoding a PNG");
    out
}

/// A progressive RGB JPEG of [`pattern`] with the given chroma sampling.
pub fn progressive(w: u16, h: u16, sampling: jpeg_encoder::SamplingFactor) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, 90);
    encoder.set_progressive(true);
    encoder.set_sampling_factor(sampling);
    encoder
        .encode(&pattern(w as u32, h as u32), w, h, jpeg_encoder::ColorType::Rgb)
        .expect("encoding a progressive JPEG");
    out
}
