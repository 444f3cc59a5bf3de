//! Huffman-coded entropy data (T.81 F.2, G.2), decoded by `huffman`'s tables: the bit reader with libjpeg's byte stuffing and
//! marker rules, and the sequential and progressive (spectral selection and successive
//! approximation) block decoders of jdhuff.c and jdphuff.c.

use crate::error::Result;

use super::huffman::Huffman;
use super::idct::Block;
use super::markers::{Frame, Scan, Tables, ZIGZAG};
use super::{bad, truncated};

/// `table`'s next symbol from `bits`.
fn decode(table: &Huffman, bits: &mut Bits) -> Result<u8> {
    let (len, value) = table.code_at(bits.peek(16) as u16).ok_or_else(|| bad("bad Huffman code"))?;
    bits.consume(len);
    Ok(value)
}

/// Bits of entropy-coded data, MSB first. `FF 00` is a data `FF` (so is `FF FF .. FF 00`, as
/// libjpeg reads it); at any other marker the data ends and zeros are read, as libjpeg does. Zeros
/// read past the end of the file are counted: a decode that needs them is truncated.
pub struct Bits<'a> {
    data: &'a [u8],
    pub pos: usize,
    acc: u64,
    n: u32,
    at_marker: bool,
    padded: u32,
}

impl<'a> Bits<'a> {
    pub fn new(data: &'a [u8], pos: usize) -> Bits<'a> {
        Bits { data, pos, acc: 0, n: 0, at_marker: false, padded: 0 }
    }

    fn fill(&mut self) {
        while self.n <= 56 {
            let mut byte = 0;
            if self.at_marker {
            } else if self.pos >= self.data.len() {
                self.padded += 8;
            } else if self.data[self.pos] != 0xff {
                byte = self.data[self.pos];
                self.pos += 1;
            } else {
                let mut next = self.pos + 1;
                while self.data.get(next) == Some(&0xff) {
                    next += 1;
                }
                match self.data.get(next) {
                    Some(0) => {
                        byte = 0xff;
                        self.pos = next + 1;
                    }
                    Some(_) => self.at_marker = true,
                    None => self.padded += 8,
                }
            }
            self.acc |= (byte as u64) << (56 - self.n);
            self.n += 8;
        }
    }

    fn peek(&mut self, k: u32) -> u64 {
        if self.n < k {
            self.fill();
        }
        self.acc >> (64 - k)
    }

    fn consume(&mut self, k: u32) {
        self.acc <<= k;
        self.n -= k;
    }

    fn bits(&mut self, k: u32) -> u32 {
        if k == 0 {
            return 0;
        }
        let v = self.peek(k) as u32;
        self.consume(k);
        v
    }

    /// T.81 F.2.2.1 EXTEND of the next `s` bits.
    fn receive_extend(&mut self, s: u32) -> i32 {
        let v = self.bits(s) as i32;
        if s > 0 && v < 1 << (s - 1) {
            v - (1 << s) + 1
        } else {
            v
        }
    }

    /// Errors if the decode so far read zeros from past the end of the file.
    pub fn check(&self) -> Result<()> {
        if self.padded > self.n {
            return Err(truncated());
        }
        Ok(())
    }

    /// At a restart marker: drops the partial byte and reads the marker, which must be `RSTn`.
    fn restart(&mut self, n: u8) -> Result<()> {
        self.check()?;
        *self = Bits::new(self.data, self.pos);
        let mut at = self.pos;
        while self.data.get(at) == Some(&0xff) {
            at += 1;
        }
        match self.data.get(at) {
            Some(&code) if at > self.pos && code == 0xd0 + n => {
                self.pos = at + 1;
                Ok(())
            }
            Some(_) => Err(bad("missing restart marker")),
            None => Err(truncated()),
        }
    }
}

/// The decoding state of one scan: bits, DC predictions, the end-of-band run, restarts.
pub struct ScanDecoder<'a, 't> {
    pub bits: Bits<'a>,
    frame: &'t Frame,
    scan: &'t Scan,
    dc: Vec<Option<&'t Huffman>>,
    ac: Vec<Option<&'t Huffman>>,
    preds: Vec<i32>,
    eobrun: u32,
    interval: usize,
    left: usize,
    next_rst: u8,
}

impl<'a, 't> ScanDecoder<'a, 't> {
    pub fn new(data: &'a [u8], pos: usize, frame: &'t Frame, scan: &'t Scan, tables: &'t Tables) -> Result<Self> {
        // A sequential scan decodes whole blocks whatever its Ss/Se/Ah say (libjpeg only warns), so it
        // needs both tables; a progressive one only what its band reads.
        let first_dc = !frame.progressive || (scan.ss == 0 && scan.ah == 0);
        let any_ac = !frame.progressive || scan.se > 0;
        let mut dc = Vec::new();
        let mut ac = Vec::new();
        for &(_, d, a) in &scan.components {
            let need = |t: &'t Option<Huffman>, needed: bool| match (t, needed) {
                (Some(t), true) => Ok(Some(t)),
                (None, true) => Err(bad("scan uses an undefined Huffman table")),
                (_, false) => Ok(None),
            };
            dc.push(need(&tables.dc[d], first_dc)?);
            ac.push(need(&tables.ac[a], any_ac)?);
        }
        let interval = tables.restart_interval;
        Ok(ScanDecoder {
            bits: Bits::new(data, pos),
            frame,
            scan,
            dc,
            ac,
            preds: vec![0; scan.components.len()],
            eobrun: 0,
            interval,
            left: interval,
            next_rst: 0,
        })
    }

    /// Decodes MCU row `row` of the scan into `stripes`: for each component of the scan, its block
    /// rows `row * v .. (row + 1) * v`, `blocks_w` blocks each.
    pub fn mcu_row(&mut self, row: usize, stripes: &mut [&mut [Block]]) -> Result<()> {
        let frame = self.frame;
        if let [(ci, _, _)] = self.scan.components[..] {
            // Non-interleaved: one block per MCU, over the component's own blocks only.
            let c = &frame.components[ci];
            let (bw, bh) = (c.width.div_ceil(8), c.height.div_ceil(8));
            for by in row * c.v..((row + 1) * c.v).min(bh) {
                for bx in 0..bw {
                    self.before_mcu()?;
                    self.block(0, &mut stripes[0][(by - row * c.v) * c.blocks_w + bx])?;
                }
            }
        } else {
            for mx in 0..frame.mcus_x {
                self.before_mcu()?;
                let scan = self.scan;
                for (k, (stripe, &(ci, _, _))) in stripes.iter_mut().zip(&scan.components).enumerate() {
                    let c = &frame.components[ci];
                    for v in 0..c.v {
                        for h in 0..c.h {
                            self.block(k, &mut stripe[v * c.blocks_w + mx * c.h + h])?;
                        }
                    }
                }
            }
        }
        self.bits.check()
    }

    fn before_mcu(&mut self) -> Result<()> {
        if self.interval == 0 {
            return Ok(());
        }
        if self.left == 0 {
            self.bits.restart(self.next_rst)?;
            self.next_rst = (self.next_rst + 1) & 7;
            self.preds.iter_mut().for_each(|p| *p = 0);
            self.eobrun = 0;
            self.left = self.interval;
        }
        self.left -= 1;
        Ok(())
    }

    fn block(&mut self, k: usize, block: &mut Block) -> Result<()> {
        let scan = self.scan;
        match (self.frame.progressive, scan.ss == 0, scan.ah == 0) {
            (false, _, _) => self.sequential(k, block),
            (true, true, true) => self.dc_first(k, block),
            (true, true, false) => {
                if self.bits.bits(1) != 0 {
                    block[0] |= 1 << scan.al;
                }
                Ok(())
            }
            (true, false, true) => self.ac_first(k, block),
            (true, false, false) => self.ac_refine(k, block),
        }
    }

    fn dc_diff(&mut self, k: usize) -> Result<i32> {
        let s = decode(self.dc[k].expect("checked in new"), &mut self.bits)? as u32;
        if s > 15 {
            return Err(bad("bad DC magnitude"));
        }
        let diff = self.bits.receive_extend(s);
        self.preds[k] = self.preds[k].wrapping_add(diff);
        Ok(self.preds[k])
    }

    fn sequential(&mut self, k: usize, block: &mut Block) -> Result<()> {
        block[0] = self.dc_diff(k)? as i16;
        let ac = self.ac[k].expect("checked in new");
        let mut i = 1;
        while i < 64 {
            let rs = decode(ac, &mut self.bits)?;
            let (r, s) = ((rs >> 4) as usize, (rs & 15) as u32);
            if s != 0 {
                i += r;
                // Past the end only in a corrupt block: libjpeg's natural-order table sends it to 63.
                block[ZIGZAG[i.min(63)]] = self.bits.receive_extend(s) as i16;
            } else if r != 15 {
                break;
            } else {
                i += 15;
            }
            i += 1;
        }
        Ok(())
    }

    fn dc_first(&mut self, k: usize, block: &mut Block) -> Result<()> {
        block[0] = (self.dc_diff(k)? << self.scan.al) as i16;
        Ok(())
    }

    fn ac_first(&mut self, k: usize, block: &mut Block) -> Result<()> {
        if self.eobrun > 0 {
            self.eobrun -= 1;
            return Ok(());
        }
        let ac = self.ac[k].expect("checked in new");
        let (se, al) = (self.scan.se, self.scan.al);
        let mut i = self.scan.ss;
        while i <= se {
            let rs = decode(ac, &mut self.bits)?;
            let (r, s) = ((rs >> 4) as u32, (rs & 15) as u32);
            if s != 0 {
                i += r as usize;
                block[ZIGZAG[i.min(63)]] = (self.bits.receive_extend(s) << al) as i16;
            } else if r == 15 {
                i += 15;
            } else {
                self.eobrun = (1 << r) + self.bits.bits(r) - 1;
                break;
            }
            i += 1;
        }
        Ok(())
    }

    /// T.81 G.1.2.3 as jdphuff.c's `decode_mcu_AC_refine` does it.
    fn ac_refine(&mut self, k: usize, block: &mut Block) -> Result<()> {
        let (se, al) = (self.scan.se, self.scan.al);
        let (p1, m1) = (1i16 << al, (-1i16) << al);
        let mut i = self.scan.ss;
        let refine = |bits: &mut Bits, coef: &mut i16| {
            if bits.bits(1) != 0 && *coef & p1 == 0 {
                // Wrapping: only a corrupt stream overflows, and libjpeg's JCOEF wraps too.
                *coef = coef.wrapping_add(if *coef >= 0 { p1 } else { m1 });
            }
        };
        if self.eobrun == 0 {
            let ac = self.ac[k].expect("checked in new");
            while i <= se {
                let rs = decode(ac, &mut self.bits)?;
                let (mut r, s) = ((rs >> 4) as i32, rs & 15);
                let mut value = 0;
                if s != 0 {
                    // s must be 1 here; libjpeg warns and goes on otherwise.
                    value = if self.bits.bits(1) != 0 { p1 } else { m1 };
                } else if r != 15 {
                    self.eobrun = (1u32 << r) + self.bits.bits(r as u32);
                    break;
                }
                while i <= se {
                    let coef = &mut block[ZIGZAG[i]];
                    if *coef != 0 {
                        refine(&mut self.bits, coef);
                    } else {
                        r -= 1;
                        if r < 0 {
                            break;
                        }
                    }
                    i += 1;
                }
                if value != 0 {
                    block[ZIGZAG[i.min(63)]] = value;
                }
                i += 1;
            }
        }
        if self.eobrun > 0 {
            while i <= se {
                let coef = &mut block[ZIGZAG[i]];
                if *coef != 0 {
                    refine(&mut self.bits, coef);
                }
                i += 1;
            }
            self.eobrun -= 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_codes_decode_short_and_long() {
        // Two 2-bit codes (00, 01), one 3-bit (100) and one 12-bit (1010 0000 0000).
        let mut counts = [0u8; 16];
        counts[1] = 2;
        counts[2] = 1;
        counts[11] = 1;
        let t = Huffman::new(&counts, &[7, 8, 9, 10]).expect("table");
        let data = [0b0001_1001, 0b0100_0000, 0b0000_0000];
        let mut bits = Bits::new(&data, 0);
        let got: Vec<u8> = (0..4).map(|_| decode(&t, &mut bits).expect("code")).collect();
        assert_eq!(got, [7, 8, 9, 10]);
    }

    #[test]
    fn an_overfull_table_is_refused() {
        let mut counts = [0u8; 16];
        counts[0] = 3;
        assert!(Huffman::new(&counts, &[1, 2, 3]).is_err());
    }

    #[test]
    fn stuffed_bytes_are_data_and_a_marker_ends_it_with_zeros() {
        let data = [0xff, 0x00, 0xab, 0xff, 0xff, 0x00, 0xff, 0xd9];
        let mut bits = Bits::new(&data, 0);
        assert_eq!([bits.bits(8), bits.bits(8), bits.bits(8), bits.bits(8)], [0xff, 0xab, 0xff, 0]);
        assert!(bits.check().is_ok(), "zeros at a marker are not truncation");
        assert_eq!(bits.pos, 6, "left at the marker");
    }

    #[test]
    fn reading_past_the_end_of_the_file_is_truncation() {
        let mut bits = Bits::new(&[0x12], 0);
        bits.bits(8);
        assert!(bits.check().is_ok());
        bits.bits(1);
        assert!(bits.check().is_err());
    }

    #[test]
    fn extend_maps_magnitude_categories_to_signed_values() {
        let data = [0b0111_0000];
        let mut bits = Bits::new(&data, 0);
        // Category 2: 01 is -2; category 2: 11 is 3.
        assert_eq!([bits.receive_extend(2), bits.receive_extend(2)], [-2, 3]);
    }
}
