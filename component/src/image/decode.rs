//! Decoding PNG, JPEG and BMP into rows for [`Resizer`], converted to RGB or to Pillow's luma on the
//! way, with memory bounded before anything large is allocated.
//!
//! - PNG (not interlaced) and sequential JPEG: streamed row by row (the `png` crate; our
//!   [`jpeg`](super::jpeg) decoder one MCU row at a time), so only the resize's intermediate is
//!   held: any size up to [`MAX_DIMENSION`](super::MAX_DIMENSION) a side.
//! - BMP and interlaced PNG: their decoders produce the whole image, so the header's size is checked
//!   against [`MAX_BUFFERED_PIXELS`] first; progressive JPEG, which holds every DCT coefficient until
//!   its last scan, against [`MAX_PROGRESSIVE_PIXELS`]. A larger one is `too-large`.
//! - A file that ends early or is corrupt is `invalid-image` naming the problem, as Pillow refuses it
//!   ("image file is truncated").

use std::io::Cursor;

use crate::error::{Error, Result};

use super::jpeg;
use super::resize::Resizer;
use super::MAX_DIMENSION;

/// Largest image a whole-image decoder may produce: 12.6 MP (4096 x 3072), 36 MiB as RGB, which with
/// the model, its arenas and the encoded file keeps `classify` of a 12 MP photo under 64 MiB of linear
/// memory (README, "Reliability").
pub const MAX_BUFFERED_PIXELS: u64 = 4096 * 3072;
/// Progressive JPEG keeps 2 bytes per coefficient of every component until its last scan: 6 bytes
/// a pixel at 4:4:4 (3 at 4:2:0), so 3.1 MP holds 18 MiB of coefficients (conformance `memory.rs`).
pub const MAX_PROGRESSIVE_PIXELS: u64 = 2048 * 1536;

/// Decodes `bytes` and feeds every row, as RGB (`channels == 3`) or Pillow's luma (`channels == 1`), to
/// the resizer `make` returns for the image's size.
pub fn decode_rows(bytes: &[u8], channels: u32, make: impl FnOnce(u32, u32) -> Result<Resizer>) -> Result<Resizer> {
    match bytes {
        [0x89, b'P', b'N', b'G', ..] => png(bytes, channels, make),
        [0xff, 0xd8, 0xff, ..] => jpeg(bytes, channels, make),
        [b'B', b'M', ..] => bmp(bytes, channels, make),
        _ => Err(Error::InvalidImage("not a PNG, JPEG or BMP image".into())),
    }
}

fn check_dimensions(w: u32, h: u32) -> Result<()> {
    if w == 0 || h == 0 {
        return Err(Error::InvalidImage("image has no pixels".into()));
    }
    if w > MAX_DIMENSION || h > MAX_DIMENSION {
        return Err(Error::TooLarge(format!("image is {w}x{h}; at most {MAX_DIMENSION} pixels a side are accepted")));
    }
    Ok(())
}

/// A budget and the name of its constant, which the `too-large` message names.
type Budget = (u64, &'static str);
const BUFFERED: Budget = (MAX_BUFFERED_PIXELS, "MAX_BUFFERED_PIXELS");
const PROGRESSIVE: Budget = (MAX_PROGRESSIVE_PIXELS, "MAX_PROGRESSIVE_PIXELS");

fn check_buffered(w: u32, h: u32, (limit, name): Budget, what: &str) -> Result<()> {
    check_dimensions(w, h)?;
    if w as u64 * h as u64 > limit {
        return Err(Error::TooLarge(format!(
            "{what} of {w}x{h} pixels is over the {:.1} MP decoded at once ({name})",
            limit as f64 / 1e6
        )));
    }
    Ok(())
}

/// Source pixels of one of the layouts decoders produce.
#[derive(Clone, Copy)]
enum Layout {
    Gray,
    GrayAlpha,
    Rgb,
    Rgba,
}

impl Layout {
    fn bytes(self) -> usize {
        match self {
            Layout::Gray => 1,
            Layout::GrayAlpha => 2,
            Layout::Rgb => 3,
            Layout::Rgba => 4,
        }
    }
}

/// Converts decoded rows to what the model takes: `convert('RGB')` (alpha dropped, gray replicated)
/// or `convert('L')`, Pillow's ITU-R 601 luma in 16-bit fixed point,
/// `L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16` (alpha ignored, gray passed through).
struct Rows {
    layout: Layout,
    channels: usize,
    row: Vec<u8>,
    resizer: Resizer,
    width: usize,
}

impl Rows {
    fn new(layout: Layout, channels: u32, width: u32, resizer: Resizer) -> Rows {
        let row = Vec::with_capacity(width as usize * channels as usize);
        Rows { layout, channels: channels as usize, row, resizer, width: width as usize }
    }

    fn push(&mut self, src: &[u8]) -> Result<()> {
        let n = self.layout.bytes();
        if src.len() < self.width * n {
            return Err(Error::InvalidImage(format!("a row has {} bytes, {} needed", src.len(), self.width * n)));
        }
        let src = &src[..self.width * n];
        self.row.clear();
        match (self.channels, self.layout) {
            (3, Layout::Rgb) => self.row.extend_from_slice(src),
            (3, Layout::Rgba) => src.chunks_exact(4).for_each(|p| self.row.extend_from_slice(&p[..3])),
            (3, Layout::Gray | Layout::GrayAlpha) => src.chunks_exact(n).for_each(|p| self.row.extend([p[0]; 3])),
            (_, Layout::Gray | Layout::GrayAlpha) => self.row.extend(src.chunks_exact(n).map(|p| p[0])),
            (_, Layout::Rgb | Layout::Rgba) => self.row.extend(src.chunks_exact(n).map(|p| {
                let l = p[0] as u32 * 19595 + p[1] as u32 * 38470 + p[2] as u32 * 7471 + 0x8000;
                (l >> 16) as u8
            })),
        }
        self.resizer.push_row(&self.row);
        Ok(())
    }
}

fn png(bytes: &[u8], channels: u32, make: impl FnOnce(u32, u32) -> Result<Resizer>) -> Result<Resizer> {
    let bad = |e: png::DecodingError| match e {
        png::DecodingError::LimitsExceeded => Error::TooLarge(format!("PNG: {e}")),
        png::DecodingError::IoError(ref io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            Error::InvalidImage("PNG: image file is truncated".into())
        }
        e => Error::InvalidImage(format!("PNG: {e}")),
    };
    check_palette(bytes)?;
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    // 8 bits per channel, palettes and low bit depths expanded (what the `image` crate asked before);
    // 16-bit samples keep their high byte, as Pillow's `RGB;16B` unpacker does.
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(bad)?;
    let (w, h, interlaced) = (reader.info().width, reader.info().height, reader.info().interlaced);
    check_dimensions(w, h)?;
    let layout = match reader.output_color_type().0 {
        png::ColorType::Grayscale => Layout::Gray,
        png::ColorType::GrayscaleAlpha => Layout::GrayAlpha,
        png::ColorType::Rgb => Layout::Rgb,
        png::ColorType::Rgba => Layout::Rgba,
        png::ColorType::Indexed => return Err(Error::InvalidImage("PNG: palette not expanded".into())),
    };
    let mut rows = Rows::new(layout, channels, w, make(w, h)?);
    if interlaced {
        // Adam7 hands out passes, not rows: the whole image is needed.
        check_buffered(w, h, BUFFERED, "an interlaced PNG")?;
        let mut image = vec![0u8; reader.output_buffer_size().ok_or_else(|| Error::TooLarge("PNG size".into()))?];
        let frame = reader.next_frame(&mut image).map_err(bad)?;
        for row in image[..frame.buffer_size()].chunks_exact(frame.line_size) {
            rows.push(row)?;
        }
    } else {
        for _ in 0..h {
            let row = reader.next_row().map_err(bad)?;
            let row = row.ok_or_else(|| Error::InvalidImage("PNG: image file is truncated".into()))?;
            rows.push(row.data())?;
        }
    }
    Ok(rows.resizer)
}

fn jpeg(bytes: &[u8], channels: u32, make: impl FnOnce(u32, u32) -> Result<Resizer>) -> Result<Resizer> {
    /// Checks the size, makes the resizer once the frame header is read, then takes rows.
    struct ToRows<F> {
        make: Option<F>,
        channels: u32,
        rows: Option<Rows>,
    }
    impl<F: FnOnce(u32, u32) -> Result<Resizer>> jpeg::Sink for ToRows<F> {
        fn start(&mut self, info: &jpeg::Info) -> Result<()> {
            let (w, h) = (info.width, info.height);
            match info.buffered {
                true => check_buffered(w, h, PROGRESSIVE, "a progressive JPEG")?,
                // Streamed: only two MCU rows are held, whatever the size.
                false => check_dimensions(w, h)?,
            }
            let make = self.make.take().expect("one frame");
            let layout = if info.gray { Layout::Gray } else { Layout::Rgb };
            self.rows = Some(Rows::new(layout, self.channels, w, make(w, h)?));
            Ok(())
        }
        fn row(&mut self, row: &[u8]) -> Result<()> {
            self.rows.as_mut().expect("started").push(row)
        }
    }
    let mut sink = ToRows { make: Some(make), channels, rows: None };
    jpeg::decode(bytes, &mut sink)?;
    Ok(sink.rows.expect("decode starts the sink before it succeeds").resizer)
}

fn bmp(bytes: &[u8], channels: u32, make: impl FnOnce(u32, u32) -> Result<Resizer>) -> Result<Resizer> {
    use image::ImageDecoder;
    let bad = |e: image::ImageError| match e {
        image::ImageError::Limits(_) => Error::TooLarge(format!("BMP: {e}")),
        e => Error::InvalidImage(format!("BMP: {e}")),
    };
    // The size from the header ourselves first: the decoder refuses some huge ones itself, but as an
    // unsupported format and only where their byte count overflows a usize (wasm32, not 64-bit hosts).
    if let Some((w, h)) = bmp_dimensions(bytes) {
        check_buffered(w, h, BUFFERED, "a BMP")?;
    }
    let mut decoder = image::codecs::bmp::BmpDecoder::new(Cursor::new(bytes)).map_err(bad)?;
    let (w, h) = decoder.dimensions();
    check_buffered(w, h, BUFFERED, "a BMP")?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_BUFFERED_PIXELS * 4);
    decoder.set_limits(limits).map_err(bad)?;
    let layout = match decoder.color_type() {
        image::ColorType::L8 => Layout::Gray,
        image::ColorType::La8 => Layout::GrayAlpha,
        image::ColorType::Rgb8 => Layout::Rgb,
        image::ColorType::Rgba8 => Layout::Rgba,
        other => return Err(Error::InvalidImage(format!("BMP: unsupported pixel format {other:?}"))),
    };
    let resizer = make(w, h)?;
    let mut image = vec![0u8; decoder.total_bytes() as usize];
    decoder.read_image(&mut image).map_err(bad)?;
    let mut rows = Rows::new(layout, channels, w, resizer);
    for row in image.chunks_exact(w as usize * layout.bytes()) {
        rows.push(row)?;
    }
    Ok(rows.resizer)
}

/// Width and height in a BMP's info header: 16-bit in the OS/2 core header (12 bytes), signed 32-bit
/// (negative height: top-down rows) in the Windows ones.
fn bmp_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    let u32_at = |at: usize| Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    let u16_at = |at: usize| Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?) as u32);
    match u32_at(14)? {
        12 => Some((u16_at(18)?, u16_at(20)?)),
        _ => Some(((u32_at(18)? as i32).unsigned_abs(), (u32_at(22)? as i32).unsigned_abs())),
    }
}

/// A PLTE chunk must hold whole RGB entries (PNG 11.2.3). png 0.18.1 panics expanding an
/// index into a partial last entry (found by fuzzing `image_decode`), which in the component is a trap,
/// so such a file is refused here, as libpng refuses it. (Pillow alone is lenient: it drops the partial
/// entry.) Chunks are walked up to the first IDAT, after which a PLTE may not come.
fn check_palette(bytes: &[u8]) -> Result<()> {
    let mut at = 8;
    while let Some(head) = bytes.get(at..at + 8) {
        let len = u32::from_be_bytes(head[..4].try_into().expect("4 bytes")) as usize;
        match &head[4..8] {
            b"PLTE" if !len.is_multiple_of(3) => {
                return Err(Error::InvalidImage(format!("PNG: a palette of {len} bytes is not whole RGB entries")))
            }
            b"IDAT" => break,
            _ => {}
        }
        at = at.saturating_add(12).saturating_add(len);
    }
    Ok(())
}
