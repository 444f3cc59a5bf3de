//! A small reader for the `.npy` files in `golden/`.
//!
//! Supported: format versions 1.0 (2-byte header length), 2.0 and 3.0 (4-byte), C order, dtypes
//! `|u1`, `|i1`, `<i2`, `<f4` (also spelled `u1`, `i1`, `<u1`, `<i1`). Anything else is an error
//! naming what was found, so a change in the golden script shows up as a clear failure.
//! Format: <https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html>

use std::path::Path;

use anyhow::{bail, ensure, Context, Result};

use crate::api::{Tensor, TensorData};

const MAGIC: &[u8] = b"\x93NUMPY";

/// An n-dimensional array read from a `.npy` file.
#[derive(Clone, Debug, PartialEq)]
pub struct Npy {
    pub shape: Vec<usize>,
    pub data: TensorData,
}

impl Npy {
    pub fn read_file(path: &Path) -> Result<Npy> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Npy::parse(&bytes).with_context(|| format!("parsing {}", path.display()))
    }

    pub fn parse(bytes: &[u8]) -> Result<Npy> {
        ensure!(bytes.len() >= 10 && bytes.starts_with(MAGIC), "not a .npy file (bad magic)");
        let major = bytes[6];
        let (header_len, header_start): (usize, usize) = match major {
            1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
            2 | 3 => {
                ensure!(bytes.len() >= 12, "truncated .npy header");
                (u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize, 12)
            }
            v => bail!("unsupported .npy format version {v}.{}", bytes[7]),
        };
        let header_end =
            header_start.checked_add(header_len).filter(|&end| end <= bytes.len()).context("truncated .npy header")?;
        let header = std::str::from_utf8(&bytes[header_start..header_end]).context(".npy header is not UTF-8")?;

        let descr = dict_value(header, "descr")?;
        let descr = unquote(descr).with_context(|| format!("descr is not a string: {descr}"))?;
        let fortran = dict_value(header, "fortran_order")?;
        ensure!(fortran.trim() == "False", "only C-order arrays are supported (fortran_order = {fortran})");
        let shape = parse_shape(dict_value(header, "shape")?)?;

        let count = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).context("shape overflows")?;
        let body = &bytes[header_end..];
        let data = match descr {
            "|u1" | "u1" | "<u1" => TensorData::Uint8(take(body, count, 1)?.to_vec()),
            "|i1" | "i1" | "<i1" => TensorData::Int8(take(body, count, 1)?.iter().map(|&b| b as i8).collect()),
            "<i2" => TensorData::Int16(
                take(body, count, 2)?.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect(),
            ),
            "<f4" => TensorData::Float32(
                take(body, count, 4)?.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            ),
            other => bail!("unsupported dtype {other:?} (expected |u1, |i1, <i2 or <f4)"),
        };
        Ok(Npy { shape, data })
    }

    /// As a WIT tensor (shape as u32).
    pub fn to_tensor(&self) -> Result<Tensor> {
        let shape =
            self.shape.iter().map(|&d| u32::try_from(d).context("dimension exceeds u32")).collect::<Result<_>>()?;
        Ok(Tensor { shape, data: self.data.clone() })
    }
}

fn take(body: &[u8], count: usize, size: usize) -> Result<&[u8]> {
    let need = count.checked_mul(size).context("array size overflows")?;
    ensure!(body.len() == need, "data is {} bytes, shape and dtype need {need}", body.len());
    Ok(body)
}

/// The raw text of `key`'s value in the header's Python dict literal.
fn dict_value<'a>(header: &'a str, key: &str) -> Result<&'a str> {
    let quoted = [format!("'{key}'"), format!("\"{key}\"")];
    let start = quoted
        .iter()
        .find_map(|q| header.find(q.as_str()).map(|i| i + q.len()))
        .with_context(|| format!("header has no {key:?}: {header}"))?;
    let rest = header[start..].trim_start();
    let rest = rest.strip_prefix(':').with_context(|| format!("malformed header near {key:?}: {header}"))?.trim_start();
    // A value ends at the first comma or closing brace outside parentheses and quotes.
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    for (i, c) in rest.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, ',' | '}') if depth == 0 => return Ok(rest[..i].trim()),
            _ => {}
        }
    }
    bail!("unterminated value for {key:?}: {header}")
}

fn unquote(s: &str) -> Option<&str> {
    let s = s.trim();
    s.strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .or_else(|| s.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
}

fn parse_shape(s: &str) -> Result<Vec<usize>> {
    let inner = s
        .trim()
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .with_context(|| format!("shape is not a tuple: {s}"))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.trim_end_matches('L').parse::<usize>().with_context(|| format!("bad dimension {d:?} in shape {s}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Build a v1.0 file the way numpy does: header padded with spaces to a multiple of 64.
    fn npy(descr: &str, shape: &str, body: &[u8]) -> Vec<u8> {
        let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn reads_each_dtype() {
        let a = Npy::parse(&npy("|u1", "(1, 3)", &[0, 128, 255])).unwrap();
        assert_eq!(a.shape, vec![1, 3]);
        assert_eq!(a.data, TensorData::Uint8(vec![0, 128, 255]));

        let a = Npy::parse(&npy("|i1", "(3,)", &[0, 0x80, 0xff])).unwrap();
        assert_eq!(a.shape, vec![3]);
        assert_eq!(a.data, TensorData::Int8(vec![0, -128, -1]));

        let a = Npy::parse(&npy("<i2", "(2,)", &[0x00, 0x80, 0xff, 0x7f])).unwrap();
        assert_eq!(a.data, TensorData::Int16(vec![i16::MIN, i16::MAX]));

        let body: Vec<u8> = [1.5f32, -0.25].iter().flat_map(|f| f.to_le_bytes()).collect();
        let a = Npy::parse(&npy("<f4", "(1, 1, 2)", &body)).unwrap();
        assert_eq!(a.shape, vec![1, 1, 2]);
        assert_eq!(a.data, TensorData::Float32(vec![1.5, -0.25]));
    }

    #[test]
    fn scalar_shape_is_one_element() {
        let a = Npy::parse(&npy("|u1", "()", &[7])).unwrap();
        assert!(a.shape.is_empty());
        assert_eq!(a.data.len(), 1);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(Npy::parse(b"not numpy").is_err());
        // wrong body length
        assert!(Npy::parse(&npy("|u1", "(4,)", &[1, 2, 3])).is_err());
        // big-endian and unsupported dtypes
        assert!(Npy::parse(&npy(">i2", "(1,)", &[0, 1])).is_err());
        assert!(Npy::parse(&npy("<f8", "(1,)", &[0; 8])).is_err());
        // Fortran order
        let mut f = npy("|u1", "(1,)", &[1]);
        let pos = f.windows(5).position(|w| w == b"False").unwrap();
        f[pos..pos + 5].copy_from_slice(b"True ");
        assert!(Npy::parse(&f).is_err());
        // truncated header
        let full = npy("|u1", "(1,)", &[1]);
        assert!(Npy::parse(&full[..20]).is_err());
    }
}
