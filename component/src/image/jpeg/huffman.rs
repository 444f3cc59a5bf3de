//! Canonical Huffman tables (T.81 C, F.2.2.3) as a DHT segment defines them: built by `markers`,
//! read by `entropy`'s block decoders.

use crate::error::Result;

use super::bad;

const LOOKUP_BITS: usize = 9;

/// A canonical Huffman table: a 9-bit lookup, then T.81 F.2.2.3's `maxcode` for longer codes.
pub struct Huffman {
    /// `length << 8 | value` for every code of at most 9 bits, indexed by the next 9 bits; 0 if none.
    lookup: Vec<u16>,
    maxcode: [i32; 17],
    offset: [i32; 17],
    values: Vec<u8>,
}

impl Huffman {
    pub fn new(counts: &[u8; 16], values: &[u8]) -> Result<Huffman> {
        let mut t =
            Huffman { lookup: vec![0; 1 << LOOKUP_BITS], maxcode: [-1; 17], offset: [0; 17], values: values.to_vec() };
        let (mut code, mut k) = (0i32, 0i32);
        for len in 1..=16 {
            t.offset[len] = k - code;
            for _ in 0..counts[len - 1] {
                // jdhuff.c's check: the codes of a length must fit in that many bits.
                if code >= 1 << len {
                    return Err(bad("bad Huffman table"));
                }
                if len <= LOOKUP_BITS {
                    let shift = LOOKUP_BITS - len;
                    let first = (code as usize) << shift;
                    let entry = (len as u16) << 8 | values[k as usize] as u16;
                    t.lookup[first..first + (1 << shift)].fill(entry);
                }
                code += 1;
                k += 1;
            }
            if counts[len - 1] > 0 {
                t.maxcode[len] = code - 1;
            }
            code <<= 1;
        }
        Ok(t)
    }

    /// The code at the start of the next 16 bits: its length and value; `None` if no code of
    /// this table starts them.
    pub fn code_at(&self, peek: u16) -> Option<(u32, u8)> {
        let peek = peek as usize;
        let e = self.lookup[peek >> (16 - LOOKUP_BITS)];
        if e != 0 {
            return Some(((e >> 8) as u32, e as u8));
        }
        for len in LOOKUP_BITS + 1..=16 {
            let code = (peek >> (16 - len)) as i32;
            if code <= self.maxcode[len] {
                return Some((len as u32, self.values[(code + self.offset[len]) as usize]));
            }
        }
        None
    }
}
