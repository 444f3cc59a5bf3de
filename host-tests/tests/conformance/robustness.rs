//! Garbage in, error out: malformed models, images and tensors must come back as the WIT `error`
//! variant, never as a trap (an engine-level failure, the outer `Err` of [`host_tests::Call`]).
//!
//! The fuzzed cases use proptest with 64 cases each and a fixed seed, so runs are reproducible
//! and short. They use the smallest golden model (person_detect, 300 KB) to keep loads cheap.
//!
//! The "absurd tensor size" model is a real model with its input tensor's `shape` vector
//! patched in place: we walk the flatbuffer by hand (root table → `Model.subgraphs[0]` →
//! `SubGraph.inputs[0]` → `SubGraph.tensors[i]` → `Tensor.shape`, vtable slots from TFLite's
//! `schema.fbs`) and overwrite the height and width with 2^20 each, so the input alone declares
//! 2^40 elements. Patching in place keeps every offset valid: only the numbers change.

use std::sync::{Mutex, OnceLock};

use anyhow::{bail, ensure, Context, Result};
use host_tests::budget_images::bmp_header;
use host_tests::golden::GoldenModel;
use host_tests::{ApiError, Call, ElementType, ErrorKind, Model, Tensor, TensorData};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, RngSeed, TestCaseError, TestRunner};

use crate::common::{golden, wasmtime};

fn proptest_config() -> ProptestConfig {
    ProptestConfig {
        cases: 64,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0xed9e_c1a5),
        ..ProptestConfig::default()
    }
}

/// The smallest golden model and its bytes.
fn small_model() -> &'static (GoldenModel, Vec<u8>) {
    static SMALL: OnceLock<(GoldenModel, Vec<u8>)> = OnceLock::new();
    SMALL.get_or_init(|| {
        let model = golden()
            .models()
            .iter()
            .min_by_key(|m| std::fs::metadata(m.model_path()).map(|md| md.len()).unwrap_or(u64::MAX))
            .expect("the golden manifest lists models")
            .clone();
        let bytes = model.model_bytes().expect("reading the smallest golden model");
        (model, bytes)
    })
}

fn no_trap<T>(what: &str, call: Call<T>) -> Result<Result<T, ApiError>, TestCaseError> {
    call.map_err(|e| TestCaseError::fail(format!("{what} trapped instead of returning an error: {e:#}")))
}

fn load_bytes(bytes: &[u8]) -> Call<Box<dyn Model>> {
    use host_tests::Runtime as _;
    let options = small_model().0.load_options(false)?;
    wasmtime().load(bytes, &options)
}

/// A model that loaded from damaged bytes must still not trap on use.
fn exercise(model: &mut dyn Model) -> Result<(), TestCaseError> {
    let info = model.info().map_err(|e| TestCaseError::fail(format!("info() trapped: {e:#}")))?;
    let count = info.input.shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
    if let Some(count) = count.filter(|&c| c <= 1 << 24) {
        let input =
            Tensor { shape: info.input.shape.clone(), data: TensorData::zeros(info.input.element, count as usize) };
        // Ok or an error are both fine here; only a trap is not.
        let _ = no_trap("infer() on a model loaded from damaged bytes", model.infer(&input))?;
    }
    Ok(())
}

/// Run a property over `strategy` with the suite's proptest configuration. The runtime and the
/// small model are set up first, so a missing `dist/classifier.wasm` fails with its own message
/// rather than inside proptest's shrinking.
fn check<S: Strategy>(strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    wasmtime();
    small_model();
    let mut runner = TestRunner::new(proptest_config());
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

#[test]
fn load_of_a_truncated_model_returns_an_error() {
    check(any::<prop::sample::Index>(), |cut| {
        let bytes = &small_model().1;
        let len = cut.index(bytes.len());
        let result = no_trap("load(truncated)", load_bytes(&bytes[..len]))?;
        // Cutting away half the file necessarily loses weights; a shorter cut might only drop
        // padding, so there only the absence of a trap is required.
        if len < bytes.len() / 2 {
            prop_assert!(result.is_err(), "load accepted {len} of {} bytes", bytes.len());
        }
        if let Ok(mut model) = result {
            exercise(model.as_mut())?;
        }
        Ok(())
    });
}

#[test]
fn load_of_a_bit_flipped_model_never_traps() {
    let flips = prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, 0u8..8), 1..8);
    check(flips, |flips| {
        let mut bytes = small_model().1.clone();
        let len = bytes.len();
        for (at, region, bit) in flips {
            // Aim a third of the flips at each end, where flatbuffer tables and vtables usually
            // sit, and a third anywhere (mostly weights).
            let window = len.min(4096);
            let pos = match region {
                0 => at.index(window),
                1 => len - window + at.index(window),
                _ => at.index(len),
            };
            bytes[pos] ^= 1 << bit;
        }
        if let Ok(mut model) = no_trap("load(bit-flipped)", load_bytes(&bytes))? {
            exercise(model.as_mut())?;
        }
        Ok(())
    });
}

#[test]
fn load_of_random_bytes_returns_an_error() {
    let strategy = (any::<bool>(), any::<u32>(), prop::collection::vec(any::<u8>(), 0..4096));
    check(strategy, |(with_identifier, root, rest)| {
        // Half the cases carry a plausible header (root offset + the "TFL3" identifier) so the
        // reader gets past the first check.
        let bytes = if with_identifier { [&root.to_le_bytes()[..], b"TFL3", &rest].concat() } else { rest };
        let result = no_trap("load(random)", load_bytes(&bytes))?;
        prop_assert!(result.is_err(), "load accepted {} random bytes", bytes.len());
        Ok(())
    });
}

// ---- images ---------------------------------------------------------------------------------

/// A loaded small model, reloaded after a trap (a trapped instance cannot be entered again).
fn with_loaded_model<T>(f: impl FnOnce(&mut dyn Model) -> Result<T, TestCaseError>) -> Result<T, TestCaseError> {
    static MODEL: Mutex<Option<Box<dyn Model>>> = Mutex::new(None);
    let mut slot = MODEL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if slot.is_none() {
        let model = load_bytes(&small_model().1)
            .map_err(|e| TestCaseError::fail(format!("{e:#}")))?
            .map_err(|e| TestCaseError::fail(format!("loading the small model: {e}")))?;
        *slot = Some(model);
    }
    let result = f(slot.as_mut().unwrap().as_mut());
    if result.is_err() {
        *slot = None;
    }
    result
}

/// The smallest PNG, JPEG and BMP among the photos.
fn sample_images() -> &'static Vec<(String, Vec<u8>)> {
    static IMAGES: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let mut out = Vec::new();
        for ext in ["png", "jpg", "bmp"] {
            let case = golden()
                .models()
                .iter()
                .flat_map(|m| m.photo_cases())
                .filter(|c| c.image.to_ascii_lowercase().ends_with(ext))
                .min_by_key(|c| std::fs::metadata(c.image_path()).map(|md| md.len()).unwrap_or(u64::MAX));
            if let Some(case) = case {
                out.push((case.image.clone(), case.image_bytes().expect("reading a photo")));
            }
        }
        assert!(!out.is_empty(), "no photos found for the image robustness tests");
        out
    })
}

#[test]
fn classify_of_random_bytes_returns_invalid_image() {
    check(prop::collection::vec(any::<u8>(), 0..4096), |bytes| {
        with_loaded_model(|model| {
            match no_trap("classify(random)", model.classify(&bytes, 5))? {
                Err(e) => prop_assert_eq!(e.kind, ErrorKind::InvalidImage, "{}", e),
                Ok(p) => prop_assert!(false, "classify accepted {} random bytes: {:?}", bytes.len(), p),
            }
            Ok(())
        })
    });
}

#[test]
fn classify_of_a_truncated_or_bit_flipped_image_never_traps() {
    sample_images();
    let strategy = (
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        prop::collection::vec((any::<prop::sample::Index>(), 0u8..8), 0..8),
    );
    check(strategy, |(which, cut, flips)| {
        let (name, original) = which.get(sample_images());
        let mut bytes = original[..cut.index(original.len())].to_vec();
        if !bytes.is_empty() {
            for (at, bit) in flips {
                let pos = at.index(bytes.len().min(1024)); // headers are at the start
                bytes[pos] ^= 1 << bit;
            }
        }
        with_loaded_model(|model| {
            let what = format!("classify({name}, damaged to {} bytes)", bytes.len());
            let _ = no_trap(&what, model.classify(&bytes, 5))?;
            Ok(())
        })
    });
}

/// A PNG with a valid IHDR declaring `width` x `height` RGB, no image data, and IEND.
fn png_header(width: u32, height: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let body = [&kind[..], data].concat();
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, deflate, no filter, no interlace
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IEND", &[]);
    out
}

#[test]
fn images_declaring_absurd_sizes_return_an_error() {
    let cases = [
        ("BMP 50000x50000", bmp_header(50_000, 50_000)),
        ("BMP 50000x-50000 (top-down)", bmp_header(50_000, -50_000)),
        ("PNG 1000000x1000000", png_header(1_000_000, 1_000_000)),
        ("PNG 2^31-1 x 2^31-1", png_header(0x7fff_ffff, 0x7fff_ffff)),
    ];
    let mut failures = Vec::new();
    for (what, bytes) in cases {
        let outcome = with_loaded_model(|model| Ok(model.classify(&bytes, 5)));
        match outcome {
            Ok(Ok(Err(e))) => {
                if !matches!(e.kind, ErrorKind::InvalidImage | ErrorKind::TooLarge) {
                    failures.push(format!("{what}: expected invalid-image or too-large, got {e}"));
                }
            }
            Ok(Ok(Ok(p))) => failures.push(format!("{what}: accepted, gave {p:?}")),
            Ok(Err(e)) => failures.push(format!("{what}: trapped: {e:#}")),
            Err(e) => failures.push(format!("{what}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn classify_handles_extreme_top_k() {
    let (name, image) = &sample_images()[0];
    for top_k in [0, 1, u32::MAX] {
        let predictions = with_loaded_model(|model| {
            let classes = model.info().map_err(|e| TestCaseError::fail(format!("{e:#}")))?.classes;
            let p = no_trap("classify", model.classify(image, top_k))?
                .map_err(|e| TestCaseError::fail(format!("classify({name}, top_k {top_k}): {e}")))?;
            Ok((classes, p))
        });
        let (classes, p) = predictions.unwrap_or_else(|e| panic!("{e}"));
        assert!(
            p.len() <= (top_k as usize).min(classes as usize),
            "top_k {top_k}: {} predictions for {classes} classes",
            p.len()
        );
    }
}

// ---- tensors --------------------------------------------------------------------------------

#[test]
fn infer_rejects_wrong_shapes_and_element_types() {
    let mut failures = Vec::new();
    let outcome = with_loaded_model(|model| {
        let info = model.info().map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
        let shape = info.input.shape.clone();
        let count: usize = shape.iter().map(|&d| d as usize).product();
        let element = info.input.element;
        let other_element = [ElementType::Float32, ElementType::Uint8, ElementType::Int8, ElementType::Int16]
            .into_iter()
            .find(|&e| e != element)
            .unwrap();

        let mut more_channels = shape.clone();
        *more_channels.last_mut().unwrap() += 2;
        let more_count: usize = more_channels.iter().map(|&d| d as usize).product();
        let mut wider = shape.clone();
        wider[1] += 1;
        let wider_count: usize = wider.iter().map(|&d| d as usize).product();

        let cases: Vec<(&str, Tensor)> = vec![
            ("more channels", Tensor { shape: more_channels, data: TensorData::zeros(element, more_count) }),
            ("one row more", Tensor { shape: wider, data: TensorData::zeros(element, wider_count) }),
            ("no batch dimension", Tensor { shape: shape[1..].to_vec(), data: TensorData::zeros(element, count) }),
            ("rank 0", Tensor { shape: vec![], data: TensorData::zeros(element, 1) }),
            ("wrong element type", Tensor { shape: shape.clone(), data: TensorData::zeros(other_element, count) }),
            ("one element short", Tensor { shape: shape.clone(), data: TensorData::zeros(element, count - 1) }),
            ("one element too many", Tensor { shape: shape.clone(), data: TensorData::zeros(element, count + 1) }),
            ("empty", Tensor { shape: shape.clone(), data: TensorData::zeros(element, 0) }),
        ];
        for (what, tensor) in cases {
            match no_trap(what, model.infer(&tensor))? {
                Err(e) if e.kind == ErrorKind::InvalidInput => {}
                Err(e) => failures.push(format!("{what}: expected invalid-input, got {e}")),
                Ok(t) => failures.push(format!("{what}: accepted, output shape {:?}", t.shape)),
            }
        }
        // And the right input still works afterwards.
        let ok = Tensor { shape, data: TensorData::zeros(element, count) };
        no_trap("infer", model.infer(&ok))?
            .map_err(|e| TestCaseError::fail(format!("a well-formed input was rejected: {e}")))?;
        Ok(())
    });
    if let Err(e) = outcome {
        failures.push(e.to_string());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---- absurd tensor sizes in the model -------------------------------------------------------

/// Minimal read-only walk over a flatbuffer, enough to find one vector's position.
struct Fb<'a>(&'a [u8]);

impl Fb<'_> {
    fn u16(&self, at: usize) -> Result<u16> {
        let b = self.0.get(at..at + 2).context("offset out of range")?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&self, at: usize) -> Result<u32> {
        let b = self.0.get(at..at + 4).context("offset out of range")?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// Follow a uoffset stored at `at`.
    fn deref(&self, at: usize) -> Result<usize> {
        Ok(at + self.u32(at)? as usize)
    }
    /// Position of field number `slot` of the table at `table`, if present.
    fn field(&self, table: usize, slot: usize) -> Result<Option<usize>> {
        let vtable = (table as i64 - self.u32(table)? as i32 as i64) as usize;
        let vtable_len = self.u16(vtable)? as usize;
        let entry = 4 + 2 * slot;
        if entry + 2 > vtable_len {
            return Ok(None);
        }
        let offset = self.u16(vtable + entry)? as usize;
        Ok((offset != 0).then_some(table + offset))
    }
    /// The table or vector referenced by field `slot` of `table`.
    fn child(&self, table: usize, slot: usize, what: &str) -> Result<usize> {
        let at = self.field(table, slot)?.with_context(|| format!("{what} is absent"))?;
        self.deref(at)
    }
    /// Element `index` of a vector of tables.
    fn table_at(&self, vector: usize, index: usize) -> Result<usize> {
        ensure!(index < self.u32(vector)? as usize, "index {index} out of range");
        self.deref(vector + 4 + 4 * index)
    }
}

/// Byte position of the first element of subgraph 0's input tensor's `shape`, and its rank.
/// Slots from TFLite's schema.fbs: Model.subgraphs = 2; SubGraph.tensors = 0, inputs = 1;
/// Tensor.shape = 0.
fn input_shape_position(model: &[u8]) -> Result<(usize, usize)> {
    let fb = Fb(model);
    let root = fb.deref(0)?;
    let subgraphs = fb.child(root, 2, "Model.subgraphs")?;
    let subgraph = fb.table_at(subgraphs, 0)?;
    let inputs = fb.child(subgraph, 1, "SubGraph.inputs")?;
    ensure!(fb.u32(inputs)? >= 1, "the subgraph has no inputs");
    let input = fb.u32(inputs + 4)? as usize;
    let tensors = fb.child(subgraph, 0, "SubGraph.tensors")?;
    let tensor = fb.table_at(tensors, input)?;
    let shape = fb.child(tensor, 0, "Tensor.shape")?;
    Ok((shape + 4, fb.u32(shape)? as usize))
}

#[test]
fn a_model_declaring_an_absurd_tensor_size_is_too_large() -> Result<()> {
    let (model, original) = small_model();
    let (first, rank) = input_shape_position(original)?;
    ensure!(rank == 4, "{}: input rank {rank}, expected NHWC", model.id);
    let read = |bytes: &[u8], i: usize| i32::from_le_bytes(bytes[first + 4 * i..first + 4 * i + 4].try_into().unwrap());
    let shape: Vec<i32> = (0..rank).map(|i| read(original, i)).collect();
    ensure!(
        shape.iter().map(|&d| d as u32).eq(model.input.shape.iter().copied()),
        "found shape {shape:?} in the file, the manifest says {:?}: the flatbuffer walk is wrong",
        model.input.shape
    );

    let mut patched = original.clone();
    for dim in [1, 2] {
        patched[first + 4 * dim..first + 4 * dim + 4].copy_from_slice(&(1i32 << 20).to_le_bytes());
    }
    match load_bytes(&patched).context("load of the patched model trapped")? {
        Err(e) if e.kind == ErrorKind::TooLarge => Ok(()),
        Err(e) => bail!("expected too-large for an input of 2^40 elements, got {e}"),
        Ok(_) => bail!("a model whose input declares 2^40 elements was accepted"),
    }
}
