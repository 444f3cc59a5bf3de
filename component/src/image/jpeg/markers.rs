//! The JPEG marker segments a decoder of Pillow's path needs (ITU T.81 annex B): frame, scan,
//! quantization and Huffman tables, restart interval, and the JFIF / Adobe markers that name the
//! colour space as libjpeg guesses it.

use crate::error::{Error, Result};

use super::huffman::Huffman;
use super::{bad, truncated};

/// T.81 figure A.6: where the i-th zig-zag coefficient sits in the block.
pub const ZIGZAG: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21,
    28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54,
    47, 55, 62, 63,
];

pub struct Component {
    pub id: u8,
    pub h: usize,
    pub v: usize,
    pub quant: usize,
    /// Samples after downsampling: `ceil(image_width * h / h_max)` (libjpeg's `downsampled_width`).
    pub width: usize,
    pub height: usize,
    /// Blocks in the frame's MCU layout (whole MCUs, so at least `ceil(width / 8)`).
    pub blocks_w: usize,
    pub blocks_h: usize,
}

pub struct Frame {
    pub progressive: bool,
    pub width: usize,
    pub height: usize,
    pub components: Vec<Component>,
    pub h_max: usize,
    pub v_max: usize,
    pub mcus_x: usize,
    pub mcus_y: usize,
}

pub struct Scan {
    /// Per component of the scan: its index in the frame, DC and AC table numbers.
    pub components: Vec<(usize, usize, usize)>,
    pub ss: usize,
    pub se: usize,
    pub ah: u8,
    pub al: u8,
}

/// Tables and markers seen so far; tables may be redefined between scans.
#[derive(Default)]
pub struct Tables {
    pub quant: [Option<[u16; 64]>; 4],
    pub dc: [Option<Huffman>; 4],
    pub ac: [Option<Huffman>; 4],
    pub restart_interval: usize,
    pub jfif: bool,
    /// The Adobe APP14 marker's transform flag, if one was seen.
    pub adobe_transform: Option<u8>,
}

/// A cursor over the file's bytes.
pub struct Reader<'a> {
    pub data: &'a [u8],
    pub pos: usize,
}

impl<'a> Reader<'a> {
    pub fn u8(&mut self) -> Result<u8> {
        let b = *self.data.get(self.pos).ok_or_else(truncated)?;
        self.pos += 1;
        Ok(b)
    }

    pub fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }

    /// The next marker code, skipping fill bytes (and, as libjpeg does with a warning, any other
    /// garbage before it).
    pub fn marker(&mut self) -> Result<u8> {
        loop {
            while self.u8()? != 0xff {}
            let mut code = self.u8()?;
            while code == 0xff {
                code = self.u8()?;
            }
            if code != 0 {
                return Ok(code);
            }
        }
    }

    /// The payload of a marker segment (after its length field).
    pub fn segment(&mut self) -> Result<&'a [u8]> {
        let len = self.u16()? as usize;
        if len < 2 {
            return Err(bad("marker segment shorter than its length field"));
        }
        let body = self.data.get(self.pos..self.pos + len - 2).ok_or_else(truncated)?;
        self.pos += len - 2;
        Ok(body)
    }
}

pub fn frame(body: &[u8], progressive: bool) -> Result<Frame> {
    let [precision, h1, h0, w1, w0, n, rest @ ..] = body else { return Err(bad("short frame header")) };
    if *precision != 8 {
        return Err(Error::InvalidImage(format!("JPEG: {precision}-bit samples are not supported (8-bit only)")));
    }
    let (width, height) = (u16::from_be_bytes([*w1, *w0]) as usize, u16::from_be_bytes([*h1, *h0]) as usize);
    if width == 0 || height == 0 {
        // A height of 0 means "given by a DNL marker later", which libjpeg refuses too.
        return Err(Error::InvalidImage("image has no pixels".into()));
    }
    let n = *n as usize;
    match n {
        1 | 3 => {}
        4 => return Err(Error::InvalidImage("JPEG: CMYK and YCCK images are not supported".into())),
        n => return Err(Error::InvalidImage(format!("JPEG: {n} colour components are not supported"))),
    }
    if rest.len() < 3 * n {
        return Err(bad("short frame header"));
    }
    let mut components = Vec::with_capacity(n);
    for c in rest[..3 * n].chunks_exact(3) {
        let (h, v, quant) = ((c[1] >> 4) as usize, (c[1] & 15) as usize, c[2] as usize);
        if !(1..=4).contains(&h) || !(1..=4).contains(&v) || quant > 3 {
            return Err(bad("bad sampling factor or table number in the frame header"));
        }
        if components.iter().any(|o: &Component| o.id == c[0]) {
            return Err(bad("two components with the same id"));
        }
        components.push(Component { id: c[0], h, v, quant, width: 0, height: 0, blocks_w: 0, blocks_h: 0 });
    }
    let h_max = components.iter().map(|c| c.h).max().unwrap_or(1);
    let v_max = components.iter().map(|c| c.v).max().unwrap_or(1);
    let (mcus_x, mcus_y) = (width.div_ceil(8 * h_max), height.div_ceil(8 * v_max));
    for c in &mut components {
        if h_max % c.h != 0 || v_max % c.v != 0 {
            // libjpeg: "Fractional sampling not implemented yet".
            return Err(Error::InvalidImage("JPEG: fractional chroma sampling is not supported".into()));
        }
        c.width = (width * c.h).div_ceil(h_max);
        c.height = (height * c.v).div_ceil(v_max);
        c.blocks_w = mcus_x * c.h;
        c.blocks_h = mcus_y * c.v;
    }
    Ok(Frame { progressive, width, height, components, h_max, v_max, mcus_x, mcus_y })
}

pub fn scan(body: &[u8], frame: &Frame) -> Result<Scan> {
    let [n, rest @ ..] = body else { return Err(bad("short scan header")) };
    let n = *n as usize;
    if !(1..=4).contains(&n) || rest.len() < 2 * n + 3 {
        return Err(bad("bad scan header"));
    }
    let mut components = Vec::with_capacity(n);
    for c in rest[..2 * n].chunks_exact(2) {
        let index =
            frame.components.iter().position(|f| f.id == c[0]).ok_or_else(|| bad("scan of an unknown component"))?;
        if components.iter().any(|&(i, _, _)| i == index) {
            return Err(bad("component twice in a scan"));
        }
        let (dc, ac) = ((c[1] >> 4) as usize, (c[1] & 15) as usize);
        if dc > 3 || ac > 3 {
            return Err(bad("bad Huffman table number"));
        }
        components.push((index, dc, ac));
    }
    let (ss, se, a) = (rest[2 * n] as usize, rest[2 * n + 1] as usize, rest[2 * n + 2]);
    let (ah, al) = (a >> 4, a & 15);
    let blocks_in_mcu: usize = components.iter().map(|&(i, _, _)| frame.components[i].h * frame.components[i].v).sum();
    if n > 1 && blocks_in_mcu > 10 {
        return Err(bad("more than 10 blocks in an MCU"));
    }
    if frame.progressive {
        // T.81 G.1.1.1: DC scans alone (any components), AC scans one component and one band.
        let ok = if ss == 0 { se == 0 } else { ss <= se && se <= 63 && n == 1 };
        if !ok || al > 13 || (ah != 0 && al + 1 != ah) {
            return Err(bad("bad progressive scan parameters"));
        }
    }
    // A sequential scan with other Ss, Se, Ah, Al is decoded as sequential: libjpeg only warns.
    Ok(Scan { components, ss, se, ah, al })
}

impl Tables {
    pub fn quant(&mut self, mut body: &[u8]) -> Result<()> {
        while let [pq_tq, rest @ ..] = body {
            let (precision, id) = (pq_tq >> 4, (pq_tq & 15) as usize);
            let size = if precision == 0 { 64 } else { 128 };
            if id > 3 || precision > 1 || rest.len() < size {
                return Err(bad("bad quantization table"));
            }
            let mut table = [0u16; 64];
            for (i, &pos) in ZIGZAG.iter().enumerate() {
                table[pos] = match precision {
                    0 => rest[i] as u16,
                    _ => u16::from_be_bytes([rest[2 * i], rest[2 * i + 1]]),
                };
            }
            self.quant[id] = Some(table);
            body = &rest[size..];
        }
        Ok(())
    }

    pub fn huffman(&mut self, mut body: &[u8]) -> Result<()> {
        while let [tc_th, rest @ ..] = body {
            let (class, id) = (tc_th >> 4, (tc_th & 15) as usize);
            if class > 1 || id > 3 || rest.len() < 16 {
                return Err(bad("bad Huffman table"));
            }
            let counts: [u8; 16] = rest[..16].try_into().expect("16 counts");
            let total: usize = counts.iter().map(|&c| c as usize).sum();
            let values = rest.get(16..16 + total).ok_or_else(|| bad("bad Huffman table"))?;
            let table = Some(Huffman::new(&counts, values)?);
            if class == 0 {
                self.dc[id] = table;
            } else {
                self.ac[id] = table;
            }
            body = &rest[16 + total..];
        }
        Ok(())
    }

    /// Fills slots 0 and 1 still undefined with the standard tables. Called for each scan: a table a
    /// later DHT defines replaces them, as it replaces libjpeg's, which it installs at the first.
    pub fn standard_huffman(&mut self) -> Result<()> {
        for (slot, (dc, ac)) in [(DC_LUMINANCE, AC_LUMINANCE), (DC_CHROMINANCE, AC_CHROMINANCE)].into_iter().enumerate()
        {
            if self.dc[slot].is_none() {
                self.dc[slot] = Some(Huffman::new(&dc.0, dc.1)?);
            }
            if self.ac[slot].is_none() {
                self.ac[slot] = Some(Huffman::new(&ac.0, ac.1)?);
            }
        }
        Ok(())
    }

    pub fn restart(&mut self, body: &[u8]) -> Result<()> {
        let [hi, lo, ..] = body else { return Err(bad("short restart interval")) };
        self.restart_interval = u16::from_be_bytes([*hi, *lo]) as usize;
        Ok(())
    }

    pub fn app(&mut self, marker: u8, body: &[u8]) {
        match marker {
            0xe0 if body.starts_with(b"JFIF\0") => self.jfif = true,
            0xee if body.starts_with(b"Adobe") && body.len() >= 12 => self.adobe_transform = Some(body[11]),
            _ => {}
        }
    }

    /// Whether 3 components are YCbCr (else RGB), as libjpeg's `default_decompress_parms` decides.
    pub fn is_ycbcr(&self, frame: &Frame) -> bool {
        if self.jfif {
            return true;
        }
        if let Some(transform) = self.adobe_transform {
            return transform != 0;
        }
        let ids: Vec<u8> = frame.components.iter().map(|c| c.id).collect();
        ids != b"RGB"
    }
}

/// T.81 Annex K.3's tables, which libjpeg-turbo installs in slots 0 and 1 of a file that defines none
/// there (`std_huff_tables`: Motion-JPEG frames, e.g. many webcams', omit them), so Pillow decodes it.
const DC_LUMINANCE: ([u8; 16], &[u8]) = (
    [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
    &[0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b],
);
const DC_CHROMINANCE: ([u8; 16], &[u8]) = (
    [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0],
    &[0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b],
);
const AC_LUMINANCE: ([u8; 16], &[u8]) = (
    [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 125],
    &[
        0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22, 0x71,
        0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72,
        0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37,
        0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59,
        0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83,
        0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3,
        0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3,
        0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
        0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
    ],
);
const AC_CHROMINANCE: ([u8; 16], &[u8]) = (
    [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 119],
    &[
        0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71, 0x13, 0x22,
        0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0, 0x15, 0x62, 0x72, 0xd1,
        0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x35, 0x36,
        0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58,
        0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a,
        0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a,
        0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba,
        0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
        0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
    ],
);
