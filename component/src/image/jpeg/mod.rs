//! A JPEG decoder that gives exactly what Pillow 13 gets from libjpeg-turbo on its default path:
//! ISLOW integer IDCT ([`idct`]), fancy (triangle) chroma upsampling and jdcolor.c's fixed-point
//! YCbCr -> RGB ([`color`]), baseline and progressive Huffman coding with restarts ([`entropy`]),
//! any integral sampling factors, gray, YCbCr and RGB. CMYK/YCCK, 12-bit, lossless, hierarchical
//! and arithmetic-coded files are refused. Written here because no pure-Rust decoder matches
//! libjpeg-turbo bit for bit (zune-jpeg, the `image` crate's, differs on 1-20% of pixels).
//!
//! Memory: a sequential file with every component in one scan is decoded one MCU row at a time
//! and streamed to the [`Sink`] (two MCU rows of samples held); a progressive file (or a
//! sequential one in several scans) keeps every DCT coefficient (2 bytes a coefficient) until its
//! last scan, and only then streams rows. [`Info::buffered`] tells the sink which before anything
//! large is allocated.

mod color;
mod entropy;
mod huffman;
mod idct;
mod markers;

use crate::error::{Error, Result};

use color::{Upsample, YccTables};
use entropy::ScanDecoder;
use idct::Block;
use markers::{Frame, Reader, Tables};

/// Each scan of a progressive file walks every block of its components, so a file of many empty
/// scans costs time without size; encoders write at most a few dozen (libjpeg's default: 10).
pub const MAX_SCANS: usize = 256;

pub(crate) fn bad(what: &str) -> Error {
    Error::InvalidImage(format!("JPEG: corrupt data: {what}"))
}

pub(crate) fn truncated() -> Error {
    Error::InvalidImage("JPEG: image file is truncated".into())
}

/// What the frame header says, given to [`Sink::start`] before the entropy data is decoded.
pub struct Info {
    pub width: u32,
    pub height: u32,
    /// One component: rows are gray, else RGB.
    pub gray: bool,
    /// Every coefficient is held until the last scan (progressive or multi-scan sequential).
    pub buffered: bool,
}

/// Where decoded rows go, top to bottom: `width` gray or `3 * width` RGB bytes each.
pub trait Sink {
    fn start(&mut self, info: &Info) -> Result<()>;
    fn row(&mut self, row: &[u8]) -> Result<()>;
}

/// Decodes a whole JPEG file into `sink`.
pub fn decode(bytes: &[u8], sink: &mut impl Sink) -> Result<()> {
    let mut r = Reader { data: bytes, pos: 0 };
    if r.u8()? != 0xff || r.u8()? != 0xd8 {
        return Err(Error::InvalidImage("not a JPEG image".into()));
    }
    let mut tables = Tables::default();
    let mut frame: Option<Frame> = None;
    // Each component's quantization table, latched at its first scan as libjpeg does.
    let mut quant: Vec<Option<[u16; 64]>> = Vec::new();
    // Buffered mode: every component's coefficients.
    let mut coefs: Option<Vec<Vec<Block>>> = None;
    let mut scans = 0;
    loop {
        let marker = r.marker()?;
        match marker {
            0xc0..=0xc2 => {
                if frame.is_some() {
                    return Err(bad("a second frame header"));
                }
                let f = markers::frame(r.segment()?, marker == 0xc2)?;
                quant = vec![None; f.components.len()];
                frame = Some(f);
            }
            0xc3 | 0xc5..=0xc7 | 0xc9..=0xcb | 0xcd..=0xcf => {
                return Err(Error::InvalidImage(
                    "JPEG: lossless, hierarchical and arithmetic-coded JPEGs are not supported".into(),
                ))
            }
            0xc4 => tables.huffman(r.segment()?)?,
            0xdb => tables.quant(r.segment()?)?,
            0xdd => tables.restart(r.segment()?)?,
            0xe0..=0xef => {
                let body = r.segment()?;
                tables.app(marker, body);
            }
            0xda => {
                let frame = frame.as_ref().ok_or_else(|| bad("scan before the frame header"))?;
                scans += 1;
                if scans > MAX_SCANS {
                    return Err(Error::InvalidImage(format!("JPEG: more than {MAX_SCANS} scans")));
                }
                let scan = markers::scan(r.segment()?, frame)?;
                tables.standard_huffman()?;
                for &(ci, _, _) in &scan.components {
                    if quant[ci].is_none() {
                        let id = frame.components[ci].quant;
                        quant[ci] = Some(tables.quant[id].ok_or_else(|| bad("undefined quantization table"))?);
                    }
                }
                if coefs.is_none() {
                    let buffered = frame.progressive || scan.components.len() < frame.components.len();
                    let gray = frame.components.len() == 1;
                    let (width, height) = (frame.width as u32, frame.height as u32);
                    sink.start(&Info { width, height, gray, buffered })?;
                    if !buffered {
                        let quant: Vec<[u16; 64]> = quant.iter().map(|q| q.expect("latched above")).collect();
                        return stream(bytes, r.pos, frame, &scan, &tables, &quant, sink);
                    }
                    let blocks = |c: &markers::Component| vec![[0i16; 64]; c.blocks_w * c.blocks_h];
                    coefs = Some(frame.components.iter().map(blocks).collect());
                }
                let all = coefs.as_mut().expect("allocated above");
                let mut decoder = ScanDecoder::new(bytes, r.pos, frame, &scan, &tables)?;
                for row in 0..frame.mcus_y {
                    decoder.mcu_row(row, &mut scan_stripes(all, frame, &scan, row))?;
                }
                r.pos = decoder.bits.pos;
            }
            0xd9 => {
                let (Some(frame), Some(all)) = (frame.as_ref(), coefs.as_ref()) else {
                    return Err(bad("no image data before the end of the file"));
                };
                let quant = quant
                    .iter()
                    .map(|q| q.ok_or_else(|| bad("a component without a scan")))
                    .collect::<Result<Vec<_>>>()?;
                let mut out = Output::new(frame, &tables);
                for row in 0..frame.mcus_y {
                    let stripes: Vec<&[Block]> = frame
                        .components
                        .iter()
                        .zip(all)
                        .map(|(c, blocks)| &blocks[row * c.v * c.blocks_w..(row + 1) * c.v * c.blocks_w])
                        .collect();
                    out.stripe(&stripes, &quant, sink)?;
                }
                return out.finish(sink);
            }
            // Markers without a length: stray restarts, TEM.
            0xd0..=0xd7 | 0x01 => {}
            _ => {
                r.segment()?;
            }
        }
    }
}

/// Decodes a sequential scan holding every component, one MCU row at a time.
fn stream(
    bytes: &[u8],
    pos: usize,
    frame: &Frame,
    scan: &markers::Scan,
    tables: &Tables,
    quant: &[[u16; 64]],
    sink: &mut impl Sink,
) -> Result<()> {
    let mut decoder = ScanDecoder::new(bytes, pos, frame, scan, tables)?;
    let mut blocks: Vec<Vec<Block>> = frame.components.iter().map(|c| vec![[0i16; 64]; c.v * c.blocks_w]).collect();
    let mut out = Output::new(frame, tables);
    for row in 0..frame.mcus_y {
        blocks.iter_mut().for_each(|b| b.fill([0; 64]));
        // The buffers hold one MCU row: its block rows are the whole buffer, at index 0.
        decoder.mcu_row(row, &mut scan_stripes(&mut blocks, frame, scan, 0))?;
        let stripes: Vec<&[Block]> = blocks.iter().map(|b| b.as_slice()).collect();
        out.stripe(&stripes, quant, sink)?;
    }
    out.finish(sink)
}

/// The scan's components in scan order (which may differ from frame order), each its block rows of
/// MCU row `row` of `blocks` (every component's blocks, frame order).
fn scan_stripes<'b>(
    blocks: &'b mut [Vec<Block>],
    frame: &Frame,
    scan: &markers::Scan,
    row: usize,
) -> Vec<&'b mut [Block]> {
    let mut rest: Vec<Option<&mut Vec<Block>>> = blocks.iter_mut().map(Some).collect();
    scan.components
        .iter()
        .map(|&(ci, _, _)| {
            let n = frame.components[ci].v * frame.components[ci].blocks_w;
            &mut rest[ci].take().expect("a component once per scan")[row * n..(row + 1) * n]
        })
        .collect()
}

/// One component's samples: the MCU row being completed and the one before, so that the rows of
/// an MCU row go out once the first row below it (the vertical filters' context) is known.
struct Plane {
    stride: usize,
    rows: usize,
    /// Samples of the previous MCU row (`prev`) and the newest (`cur`).
    prev: Vec<u8>,
    cur: Vec<u8>,
    /// The last row of the MCU row before `prev`.
    above: Vec<u8>,
    upsample: Upsample,
}

impl Plane {
    /// Moves `cur` to `prev` (the old `prev` becomes the buffer to overwrite), first keeping the
    /// outgoing `prev`'s last row as `above` once `received` MCU rows make that a real row.
    fn advance(&mut self, received: usize) {
        if received > 1 {
            let last = (self.rows - 1) * self.stride;
            self.above.copy_from_slice(&self.prev[last..last + self.stride]);
        }
        std::mem::swap(&mut self.prev, &mut self.cur);
    }
}

/// IDCT, upsampling and colour conversion of MCU rows into sink rows.
struct Output<'f> {
    frame: &'f Frame,
    planes: Vec<Plane>,
    ycc: Option<YccTables>,
    /// MCU rows received so far.
    stripes: usize,
    upsampled: Vec<Vec<u8>>,
    pixels: Vec<u8>,
}

impl<'f> Output<'f> {
    fn new(frame: &'f Frame, tables: &Tables) -> Output<'f> {
        let planes = frame
            .components
            .iter()
            .map(|c| {
                let (stride, rows) = (c.blocks_w * 8, c.v * 8);
                let upsample = Upsample::choose(frame.h_max / c.h, frame.v_max / c.v, c.width);
                Plane {
                    stride,
                    rows,
                    prev: vec![0; stride * rows],
                    cur: vec![0; stride * rows],
                    above: vec![0; stride],
                    upsample,
                }
            })
            .collect();
        let ycc = (frame.components.len() == 3 && tables.is_ycbcr(frame)).then(YccTables::new);
        let n = frame.components.len();
        Output {
            frame,
            planes,
            ycc,
            stripes: 0,
            upsampled: vec![vec![0; frame.width]; n],
            pixels: vec![0; frame.width * n],
        }
    }

    /// Takes the next MCU row's coefficients (per component, its `v * blocks_w` blocks).
    fn stripe(&mut self, blocks: &[&[Block]], quant: &[[u16; 64]], sink: &mut impl Sink) -> Result<()> {
        for ((plane, blocks), (c, quant)) in
            self.planes.iter_mut().zip(blocks).zip(self.frame.components.iter().zip(quant))
        {
            plane.advance(self.stripes);
            for (i, block) in blocks.iter().enumerate() {
                let (by, bx) = (i / c.blocks_w, i % c.blocks_w);
                idct::idct_islow(block, quant, &mut plane.cur[by * 8 * plane.stride + bx * 8..], plane.stride);
            }
        }
        self.stripes += 1;
        if self.stripes > 1 {
            self.emit(self.stripes - 2, sink)?;
        }
        Ok(())
    }

    fn finish(mut self, sink: &mut impl Sink) -> Result<()> {
        // The last MCU row has no row below: its filters replicate its last real row.
        for plane in &mut self.planes {
            plane.advance(self.stripes);
        }
        self.emit(self.stripes - 1, sink)
    }

    /// Sends the output rows of MCU row `s`, which is in `prev`; `cur` holds MCU row `s + 1`.
    fn emit(&mut self, s: usize, sink: &mut impl Sink) -> Result<()> {
        let rows_per_mcu = 8 * self.frame.v_max;
        let end = ((s + 1) * rows_per_mcu).min(self.frame.height);
        for y in s * rows_per_mcu..end {
            for ((plane, c), out) in self.planes.iter().zip(&self.frame.components).zip(&mut self.upsampled) {
                let (near, far) = plane.upsample.rows(y, c.height);
                let row = |iy: usize| -> &[u8] {
                    let first = s * plane.rows;
                    if iy < first {
                        &plane.above
                    } else if iy < first + plane.rows {
                        &plane.prev[(iy - first) * plane.stride..][..plane.stride]
                    } else {
                        &plane.cur[(iy - first - plane.rows) * plane.stride..][..plane.stride]
                    }
                };
                plane.upsample.row(y, row(near), row(far), c.width, out);
            }
            let row: &[u8] = match (&self.ycc, &self.upsampled[..]) {
                (_, [gray]) => gray,
                (Some(ycc), [y, cb, cr]) => {
                    ycc.convert(y, cb, cr, &mut self.pixels);
                    &self.pixels
                }
                (None, [r, g, b]) => {
                    for (px, ((r, g), b)) in self.pixels.chunks_exact_mut(3).zip(r.iter().zip(g).zip(b)) {
                        px.copy_from_slice(&[*r, *g, *b]);
                    }
                    &self.pixels
                }
                _ => unreachable!("1 or 3 components, checked by the frame header"),
            };
            sink.row(row)?;
        }
        Ok(())
    }
}

/// A whole decoded image, for tests and tools: `(width, height, channels, pixels)`.
pub fn decode_image(bytes: &[u8]) -> Result<(u32, u32, u32, Vec<u8>)> {
    struct Image(u32, u32, u32, Vec<u8>);
    impl Sink for Image {
        fn start(&mut self, info: &Info) -> Result<()> {
            *self = Image(info.width, info.height, if info.gray { 1 } else { 3 }, Vec::new());
            Ok(())
        }
        fn row(&mut self, row: &[u8]) -> Result<()> {
            self.3.extend_from_slice(row);
            Ok(())
        }
    }
    let mut image = Image(0, 0, 0, Vec::new());
    decode(bytes, &mut image)?;
    Ok((image.0, image.1, image.2, image.3))
}
