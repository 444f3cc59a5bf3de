//! The prepared model: everything `load` derives from a file (plan, description, pixel rule, labels),
//! and its bytes, so that a build runs the loader natively once and a component embeds the result: an
//! instance then holds a model ready to infer without parsing, validating, lowering or copying
//! weights. `Model` wraps one with its arenas.
//!
//! Layout (all little-endian):
//!
//! ```text
//! MAGIC (8) | structure length u64 | structure (postcard) | zero padding to 8 | weights
//! ```
//!
//! The structure is the [`Prepared`] value (the plan without its weight arrays) and the weight table:
//! for each array the plan visits ([`crate::plan::VisitWeights`]), absent or its type, offset and
//! length in the weights section, where each array starts 8-byte aligned. Restoring from a `'static`,
//! 8-aligned buffer (the component's embedded data) therefore *borrows* every weight array in place;
//! from any other buffer the arrays are copied out.
//!
//! The bytes are trusted only as far as they are checked: a truncated or corrupt buffer is a
//! `malformed-model` error, never a panic, but offsets, slots and shapes are not re-validated
//! against each other the way `load` validates a TFLite file. Only the build writes these bytes.

use crate::error::{bail, Result};
use crate::input::Pixels;
use crate::plan::{Plan, Pod, VisitWeights, Weights};
use crate::types::ModelInfo;

/// Format identifier and version: a component never restores bytes written by a different layout.
pub const MAGIC: &[u8; 8] = b"ECPLAN\x00\x08";

const ALIGN: usize = 8;

/// Everything `load` derives from a file, none of the caller's options.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Prepared {
    pub info: ModelInfo,
    pub plan: Plan,
    /// Whether the output already is a probability distribution.
    pub softmax_output: bool,
    /// How `classify` feeds pixels (`crate::input`), chosen from the file and its metadata.
    pub pixels: Pixels,
    /// The model's own labels (its metadata's label file), if it carries them.
    pub labels: Option<Vec<String>>,
}

/// One weight array in the section: its [`Pod::TAG`], offset and element count.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
struct Entry {
    tag: u8,
    at: u64,
    len: u64,
}

#[derive(serde::Serialize)]
struct Written<'a> {
    prepared: &'a Prepared,
    weights: &'a [Option<Entry>],
}

#[derive(serde::Deserialize)]
struct Read {
    prepared: Prepared,
    weights: Vec<Option<Entry>>,
}

/// Appends each array to the section and records where.
struct Writer {
    section: Vec<u8>,
    table: Vec<Option<Entry>>,
}

impl VisitWeights for Writer {
    fn visit<T: Pod>(&mut self, weights: &mut Option<Weights<T>>) -> Result<()> {
        let entry = weights.as_ref().map(|w| {
            self.section.resize(self.section.len().next_multiple_of(ALIGN), 0);
            let at = self.section.len();
            for &x in w.iter() {
                x.write_le(&mut self.section);
            }
            Entry { tag: T::TAG, at: at as u64, len: w.len() as u64 }
        });
        self.table.push(entry);
        Ok(())
    }
}

/// Puts each array back from the section: borrowed when the section is static, aligned and in the
/// target's byte order, else copied.
struct Reader<'a> {
    table: std::vec::IntoIter<Option<Entry>>,
    section: &'a [u8],
    is_static: Option<&'static [u8]>,
}

impl VisitWeights for Reader<'_> {
    fn visit<T: Pod>(&mut self, weights: &mut Option<Weights<T>>) -> Result<()> {
        let Some(entry) = self.table.next() else { bail!(MalformedModel, "prepared model: weight table too short") };
        let Some(e) = entry else {
            *weights = None;
            return Ok(());
        };
        if e.tag != T::TAG {
            bail!(MalformedModel, "prepared model: weights of type {} where the plan holds {}", e.tag, T::TAG);
        }
        let range = usize::try_from(e.at)
            .ok()
            .zip(usize::try_from(e.len).ok().and_then(|l| l.checked_mul(T::SIZE)))
            .and_then(|(at, n)| Some(at..at.checked_add(n)?))
            .filter(|r| r.end <= self.section.len());
        let Some(range) = range else {
            bail!(MalformedModel, "weights at {} (+{}) lie outside the weights section", e.at, e.len)
        };
        if let (Some(s), true) = (self.is_static, cfg!(target_endian = "little")) {
            let raw: &'static [u8] = &s[range.clone()];
            if (raw.as_ptr() as usize).is_multiple_of(core::mem::align_of::<T>()) {
                // SAFETY: in bounds of a 'static slice, aligned for T, T is a plain number type
                // (every bit pattern valid) and the target's byte order is the stored one.
                let typed: &'static [T] =
                    unsafe { core::slice::from_raw_parts(raw.as_ptr().cast::<T>(), raw.len() / T::SIZE) };
                *weights = Some(typed.into());
                return Ok(());
            }
        }
        *weights = Some(self.section[range].chunks_exact(T::SIZE).map(T::read_le).collect::<Vec<T>>().into());
        Ok(())
    }
}

impl Prepared {
    /// The bytes the component embeds (the plan, its description and weights; no arenas).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut writer = Writer { section: Vec::new(), table: Vec::new() };
        // Visiting needs the arrays mutably (restoring replaces them); writing only reads a copy.
        self.plan.clone().visit_weights(&mut writer)?;
        let structure = match postcard::to_allocvec(&Written { prepared: self, weights: &writer.table }) {
            Ok(s) => s,
            Err(e) => bail!(MalformedModel, "serializing the prepared model: {e}"),
        };
        let mut out = Vec::with_capacity(16 + structure.len() + ALIGN + writer.section.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(structure.len() as u64).to_le_bytes());
        out.extend_from_slice(&structure);
        out.resize(out.len().next_multiple_of(ALIGN), 0);
        out.extend_from_slice(&writer.section);
        Ok(out)
    }

    /// Restores bytes written by [`Prepared::to_bytes`] from static data: weights borrowed in place
    /// when `bytes` is 8-byte aligned.
    pub fn from_static(bytes: &'static [u8]) -> Result<Prepared> {
        Self::restore(bytes, true)
    }

    /// Restores bytes written by [`Prepared::to_bytes`], copying the weights.
    pub fn from_bytes(bytes: &[u8]) -> Result<Prepared> {
        Self::restore(bytes, false)
    }

    fn restore(bytes: &[u8], is_static: bool) -> Result<Prepared> {
        if bytes.len() < 16 || &bytes[..8] != MAGIC {
            bail!(MalformedModel, "not a prepared edge-classify model (or one from another version of the format)");
        }
        let structure_len = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
        let Some(structure_end) = usize::try_from(structure_len).ok().and_then(|n| n.checked_add(16)) else {
            bail!(MalformedModel, "prepared model structure length {structure_len} is impossible");
        };
        if structure_end > bytes.len() {
            bail!(
                MalformedModel,
                "prepared model truncated: structure needs {structure_end} bytes, {} given",
                bytes.len()
            );
        }
        let weights_at = structure_end.next_multiple_of(ALIGN).min(bytes.len());
        let read = match postcard::from_bytes::<Read>(&bytes[16..structure_end]) {
            Ok(r) => r,
            Err(e) => bail!(MalformedModel, "prepared model structure: {e}"),
        };
        let section = &bytes[weights_at..];
        let is_static = is_static.then(|| {
            // SAFETY: `from_static` received `bytes` as `&'static [u8]`; `section` is a sub-slice.
            unsafe { core::slice::from_raw_parts(section.as_ptr(), section.len()) }
        });
        let mut reader = Reader { table: read.weights.into_iter(), section, is_static };
        let mut p = read.prepared;
        p.plan.visit_weights(&mut reader)?;
        if reader.table.len() != 0 {
            bail!(MalformedModel, "prepared model: {} weight arrays more than the plan holds", reader.table.len());
        }
        // Written by a native build: its kernels are scalar and no SIMD stage is serialized.
        p.plan.bind(crate::kernels::Arch::current());
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LoadOptions, Model};

    fn person() -> Model {
        let path = format!("{}/../../shared/models/person_detect.tflite", env!("CARGO_MANIFEST_DIR"));
        let tflite = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        Model::load(&tflite, &LoadOptions::default()).unwrap()
    }

    #[test]
    fn weights_round_trip_aligned_typed_and_in_order() {
        let mut writer = Writer { section: vec![7], table: Vec::new() };
        let mut a: Option<Weights<i32>> = Some(vec![1, -2, 3].into());
        let mut none: Option<Weights<i8>> = None;
        let mut b: Option<Weights<f32>> = Some(vec![0.5].into());
        writer.visit(&mut a).unwrap();
        writer.visit(&mut none).unwrap();
        writer.visit(&mut b).unwrap();
        assert_eq!(writer.section.len(), 8 + 12 + 4 + 4, "each array starts at the next multiple of 8");
        let section: &'static [u8] = Box::leak(writer.section.into_boxed_slice());
        let table = writer.table.clone();
        let mut reader = Reader { table: table.clone().into_iter(), section, is_static: Some(section) };
        let (mut a2, mut none2, mut b2) =
            (None::<Weights<i32>>, Some(Weights::<i8>::from(vec![1])), None::<Weights<f32>>);
        reader.visit(&mut a2).unwrap();
        reader.visit(&mut none2).unwrap();
        reader.visit(&mut b2).unwrap();
        assert_eq!((a2.as_deref(), none2.is_none(), b2.as_deref()), (Some(&[1, -2, 3][..]), true, Some(&[0.5f32][..])));
        assert!(a2.unwrap().is_static(), "aligned static data is borrowed");
        // A table entry of another type than the plan's is refused, not reinterpreted.
        let mut reader = Reader { table: table.into_iter(), section, is_static: None };
        assert!(reader.visit(&mut None::<Weights<f32>>).is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in
            [&b""[..], b"ECPLAN\x00\x03", b"ECPLAN\x00\x03\xff\xff\xff\xff\xff\xff\xff\xff", b"not a model at all"]
        {
            assert!(Prepared::from_bytes(bad).is_err());
        }
        let mut truncated = MAGIC.to_vec();
        truncated.extend_from_slice(&4u64.to_le_bytes());
        truncated.extend_from_slice(&[1, 2, 3, 4]);
        assert!(Prepared::from_bytes(&truncated).is_err());
        // Weights cut short: the table points past the section.
        let bytes = person().to_prepared_bytes().unwrap();
        assert!(Prepared::from_bytes(&bytes[..bytes.len() - 8]).is_err());
    }

    /// The kernels are not persisted as bound: a restored model binds them again for its own build,
    /// with the same loops (the filter layouts the bytes hold) as the model that was written.
    #[test]
    fn a_restored_model_binds_the_same_kernels() {
        let model = person();
        let restored =
            Model::from_prepared_bytes(&model.to_prepared_bytes().unwrap(), &LoadOptions::default()).unwrap();
        assert_eq!(restored.kernels(None), model.kernels(None));
        let simd = crate::kernels::Arch::Simd128;
        assert_eq!(restored.kernels(Some(simd)), model.kernels(Some(simd)));
        assert!(model.kernels(Some(simd)).iter().any(|k| k.ends_with("/simd128")));
    }

    /// Where the logits are is part of the plan, so a restored model measures fidelity as a loaded one.
    #[test]
    fn a_restored_model_reads_the_same_logits() {
        let mut model = person();
        let bytes = model.to_prepared_bytes().unwrap();
        let mut restored = Model::from_prepared_bytes(&bytes, &LoadOptions::default()).unwrap();
        let n = model.info().input.shape.iter().product::<u32>() as usize;
        let input = model.input_from_real(&(0..n).map(|i| (i % 255) as f32 / 127.5 - 1.0).collect::<Vec<_>>());
        let logits = model.infer_logits(&input).unwrap();
        assert_eq!(logits.len(), 2);
        assert_eq!(restored.infer_logits(&input).unwrap(), logits);
    }
}
