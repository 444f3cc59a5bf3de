//! Raw camera frames: an uncompressed 8-bit BMP whose pixel bytes are int8 model input.

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The frame's pixel bytes as int8, top row first, if `bytes` is an uncompressed 8-bit BMP of
/// exactly `width` x `height`; `None` for anything else (which then goes through `classify`).
pub fn raw_int8_frame(bytes: &[u8], width: usize, height: usize) -> Option<Vec<i8>> {
    if bytes.get(..2)? != b"BM" {
        return None;
    }
    let pixels_at = u32_at(bytes, 10)? as usize;
    let w = u32_at(bytes, 18)? as i32;
    let h = u32_at(bytes, 22)? as i32;
    let (bpp, compression) = (u16_at(bytes, 28)?, u32_at(bytes, 30)?);
    if bpp != 8 || compression != 0 || w as i64 != width as i64 || h.unsigned_abs() as usize != height {
        return None;
    }
    // Rows are padded to 4 bytes; a positive height means the file stores the bottom row first.
    let stride = width.div_ceil(4) * 4;
    let data = bytes.get(pixels_at..pixels_at.checked_add(stride.checked_mul(height)?)?)?;
    let mut out = Vec::with_capacity(width * height);
    for row in 0..height {
        let file_row = if h > 0 { height - 1 - row } else { row };
        out.extend(data[file_row * stride..][..width].iter().map(|&b| b as i8));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal 8-bit BMP: 14-byte file header, 40-byte info header, 256-entry palette.
    fn bmp(width: usize, height: i32, rows_in_file_order: &[Vec<u8>]) -> Vec<u8> {
        let stride = width.div_ceil(4) * 4;
        let pixels_at = 14 + 40 + 1024;
        let mut b = vec![0u8; pixels_at];
        b[..2].copy_from_slice(b"BM");
        b[10..14].copy_from_slice(&(pixels_at as u32).to_le_bytes());
        b[14..18].copy_from_slice(&40u32.to_le_bytes());
        b[18..22].copy_from_slice(&(width as u32).to_le_bytes());
        b[22..26].copy_from_slice(&height.to_le_bytes());
        b[26..28].copy_from_slice(&1u16.to_le_bytes());
        b[28..30].copy_from_slice(&8u16.to_le_bytes());
        for row in rows_in_file_order {
            let mut r = row.clone();
            r.resize(stride, 0);
            b.extend(r);
        }
        b
    }

    #[test]
    fn bottom_up_rows_are_flipped_and_padding_skipped() {
        let file = bmp(3, 2, &[vec![4, 5, 255], vec![1, 2, 3]]);
        assert_eq!(raw_int8_frame(&file, 3, 2), Some(vec![1, 2, 3, 4, 5, -1]));
    }

    #[test]
    fn top_down_rows_are_kept() {
        let file = bmp(3, -2, &[vec![1, 2, 3], vec![4, 5, 6]]);
        assert_eq!(raw_int8_frame(&file, 3, 2), Some(vec![1, 2, 3, 4, 5, 6]));
    }

    #[test]
    fn other_sizes_and_truncated_files_are_not_frames() {
        let file = bmp(3, 2, &[vec![4, 5, 6], vec![1, 2, 3]]);
        assert_eq!(raw_int8_frame(&file, 4, 2), None);
        assert_eq!(raw_int8_frame(&file[..file.len() - 1], 3, 2), None);
        assert_eq!(raw_int8_frame(b"\x89PNG", 3, 2), None);
    }
}
