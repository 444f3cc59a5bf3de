//! Bad input natively: every malformed model or image is an `Err`, never a panic. (host-tests runs the
//! same kind of inputs through the WIT boundary, where a panic would be a trap.)

use edge_classify::model::{LoadOptions, Model, Tensor, TensorData};
use edge_classify::Error;
use proptest::prelude::*;
use std::sync::OnceLock;

fn shared(path: &str) -> Vec<u8> {
    let p = format!("{}/../../shared/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// The smallest shared model (300 KB) keeps each case cheap.
fn vww() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| shared("models/person_detect.tflite"))
}

fn photo() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| shared("images/hot_dog.jpg"))
}

/// A model that loads must also run without panicking.
fn exercise(bytes: &[u8]) -> Result<(), Error> {
    let mut m = Model::load(bytes, &LoadOptions::default())?;
    let n: u32 = m.info().input.shape.iter().product();
    if m.info().input.element == edge_classify::model::ElementType::Int8 {
        m.infer(&Tensor { shape: m.info().input.shape.clone(), data: TensorData::Int8(vec![3; n as usize]) })?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn truncated_models_are_rejected(cut in 0usize..300_000) {
        let bytes = vww();
        let cut = cut % bytes.len();
        prop_assert!(Model::load(&bytes[..cut], &LoadOptions::default()).is_err());
    }

    #[test]
    fn bit_flipped_models_never_panic(flips in prop::collection::vec((0usize..300_568, 0u8..8), 1..8)) {
        let mut bytes = vww().to_vec();
        for (at, bit) in flips {
            let at = at % bytes.len();
            bytes[at] ^= 1 << bit;
        }
        // A flip inside weight data leaves a valid model; anywhere else it must be refused cleanly.
        let _ = exercise(&bytes);
    }

    /// Flips confined to the flatbuffer's tables (the first and last KB: root, vtables, tensor and
    /// operator tables) rather than weight data.
    #[test]
    fn bit_flipped_tables_never_panic(flips in prop::collection::vec((0usize..2048, 0u8..8), 1..4)) {
        let mut bytes = vww().to_vec();
        let len = bytes.len();
        for (at, bit) in flips {
            let at = if at < 1024 { at } else { len - 2048 + at };
            bytes[at] ^= 1 << bit;
        }
        let _ = exercise(&bytes);
    }

    #[test]
    fn random_bytes_are_rejected(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        prop_assert!(Model::load(&bytes, &LoadOptions::default()).is_err());
    }

    #[test]
    fn random_bytes_with_tflite_identifier_are_rejected(mut bytes in prop::collection::vec(any::<u8>(), 8..4096)) {
        bytes[4..8].copy_from_slice(b"TFL3");
        prop_assert!(Model::load(&bytes, &LoadOptions::default()).is_err());
    }

    #[test]
    fn garbage_images_are_invalid_image(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let mut m = Model::load(vww(), &LoadOptions::default()).unwrap();
        prop_assert!(matches!(m.classify(&bytes, 1), Err(Error::InvalidImage(_))));
    }

    #[test]
    fn truncated_or_flipped_images_never_panic(cut in 0usize..200_000, flip in 0usize..200_000) {
        let mut bytes = photo().to_vec();
        let f = flip % bytes.len();
        bytes[f] ^= 0x55;
        bytes.truncate(cut % bytes.len());
        let mut m = Model::load(vww(), &LoadOptions::default()).unwrap();
        let _ = m.classify(&bytes, 2);
    }
}

/// Finds the little-endian `[1, 96, 96, 1]` shape vector of the person detector's input.
fn patch_input_shape(bytes: &mut [u8], new: [i32; 4]) {
    let mut pattern = 4u32.to_le_bytes().to_vec();
    for d in [1i32, 96, 96, 1] {
        pattern.extend(d.to_le_bytes());
    }
    let at = bytes.windows(pattern.len()).position(|w| w == pattern).expect("input shape vector present") + 4;
    for (i, d) in new.iter().enumerate() {
        bytes[at + 4 * i..at + 4 * i + 4].copy_from_slice(&d.to_le_bytes());
    }
}

#[test]
fn absurd_tensor_size_is_too_large() {
    let mut bytes = vww().to_vec();
    patch_input_shape(&mut bytes, [1, 1 << 16, 1 << 16, 1 << 10]);
    let err = Model::load(&bytes, &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, Error::TooLarge(_)), "{err}");
}

#[test]
fn negative_dimension_is_unsupported() {
    let mut bytes = vww().to_vec();
    patch_input_shape(&mut bytes, [1, -1, 96, 1]);
    let err = Model::load(&bytes, &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, Error::UnsupportedModel(_)), "{err}");
}

#[test]
fn contradicting_shape_is_malformed() {
    let mut bytes = vww().to_vec();
    // 50 rows give the first stride-2 convolution 25 output rows, not the 48 the file declares.
    patch_input_shape(&mut bytes, [1, 50, 96, 1]);
    let err = Model::load(&bytes, &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, Error::MalformedModel(_)), "{err}");
}

#[test]
fn infer_checks_shape_and_type() {
    let mut m = Model::load(vww(), &LoadOptions::default()).unwrap();
    let bad_shape = Tensor { shape: vec![1, 96, 95, 1], data: TensorData::Int8(vec![0; 96 * 95]) };
    assert!(matches!(m.infer(&bad_shape), Err(Error::InvalidInput(_))));
    let bad_type = Tensor { shape: vec![1, 96, 96, 1], data: TensorData::Float32(vec![0.0; 96 * 96]) };
    assert!(matches!(m.infer(&bad_type), Err(Error::InvalidInput(_))));
    let bad_len = Tensor { shape: vec![1, 96, 96, 1], data: TensorData::Int8(vec![0; 7]) };
    assert!(matches!(m.infer(&bad_len), Err(Error::InvalidInput(_))));
}

#[test]
fn options_are_checked() {
    let labels = Some("only one label".to_string());
    let err = Model::load(vww(), &LoadOptions { labels, ..Default::default() }).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    let err = Model::load(vww(), &LoadOptions { std: Some(0.0), ..Default::default() }).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    let err = Model::load(vww(), &LoadOptions { mean: Some(f32::NAN), ..Default::default() }).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
}
