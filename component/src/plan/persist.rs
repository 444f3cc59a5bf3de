//! A prepared model as bytes, so that a build can run the loader natively once and a component
//! can embed the result: an instance then holds a model ready to infer without parsing,
//! validating, lowering or copying weights.
//!
//! Layout (all little-endian):
//!
//! ```text
//! MAGIC (8) | structure length u64 | structure (postcard) | zero padding to 8 | weights
//! ```
//!
//! The structure is the [`Plan`] and the model description, serialized with serde; every weight
//! array in it ([`Weights`]) is only an `(offset, length)` into the weights section, where each
//! array starts 8-byte aligned. Restoring from a `'static`, 8-aligned buffer (the component's
//! embedded data) therefore *borrows* every weight array in place; from any other buffer the
//! arrays are copied out.
//!
//! The bytes are trusted only as far as they are checked: a truncated or corrupt buffer is a
//! `malformed-model` error, never a panic, but offsets, slots and shapes are not re-validated
//! against each other the way `load` validates a TFLite file. Only the build writes these bytes.

use std::borrow::Cow;
use std::cell::RefCell;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{bail, Result};
use crate::model::{LoadOptions, Model, Prepared};

/// Format identifier and version: a component never restores bytes written by a different layout.
pub const MAGIC: &[u8; 8] = b"ECPLAN\x00\x06";

const ALIGN: usize = 8;

/// Element types a weight array may have: plain numbers whose in-memory form, on a
/// little-endian target, is their little-endian bytes.
pub trait Pod: Copy + Default + core::fmt::Debug + PartialEq + 'static {
    const SIZE: usize;
    fn write_le(self, out: &mut Vec<u8>);
    fn read_le(bytes: &[u8]) -> Self;
}

macro_rules! pod {
    ($($t:ty),*) => {$(
        impl Pod for $t {
            const SIZE: usize = core::mem::size_of::<$t>();
            fn write_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn read_le(bytes: &[u8]) -> Self {
                <$t>::from_le_bytes(bytes.try_into().expect("caller passes SIZE bytes"))
            }
        }
    )*};
}
pod!(i8, i16, i32, i64, f32);

/// A constant array of a prepared step (filter, bias): owned when built by `load`, borrowed from
/// static data when restored from an embedded prepared model.
#[derive(Clone, PartialEq)]
pub struct Weights<T: Pod>(Cow<'static, [T]>);

impl<T: Pod> From<Vec<T>> for Weights<T> {
    fn from(v: Vec<T>) -> Self {
        Weights(Cow::Owned(v))
    }
}

impl<T: Pod> core::ops::Deref for Weights<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

/// Megabytes of numbers say nothing in a debug print.
impl<T: Pod> core::fmt::Debug for Weights<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let how = if matches!(self.0, Cow::Borrowed(_)) { "static" } else { "owned" };
        write!(f, "Weights<{}>[{}; {how}]", core::any::type_name::<T>(), self.0.len())
    }
}

impl<T: Pod> Weights<T> {
    /// Whether the array lives in static data (restored from an embedded model).
    pub fn is_static(&self) -> bool {
        matches!(self.0, Cow::Borrowed(_))
    }
}

thread_local! {
    /// While [`to_bytes`] runs: the weights section being written.
    static WRITING: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
    /// While [`from_bytes`] runs: the weights section being read, and whether it is `'static`.
    static READING: RefCell<Option<Section>> = const { RefCell::new(None) };
}

#[derive(Clone, Copy)]
enum Section {
    Static(&'static [u8]),
    /// Address and length of a borrowed buffer that outlives the `from_bytes` call reading it.
    Transient(*const u8, usize),
}

impl<T: Pod> Serialize for Weights<T> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let at = WRITING.with_borrow_mut(|w| {
            let w = w.as_mut()?;
            w.resize(w.len().next_multiple_of(ALIGN), 0);
            let at = w.len();
            for &x in self.0.iter() {
                x.write_le(w);
            }
            Some(at)
        });
        match at {
            Some(at) => (at as u64, self.0.len() as u64).serialize(s),
            None => Err(serde::ser::Error::custom("weights are serialized only through plan::persist::to_bytes")),
        }
    }
}

impl<'de, T: Pod> Deserialize<'de> for Weights<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        use serde::de::Error;
        let (at, len) = <(u64, u64)>::deserialize(d)?;
        let section = READING
            .with_borrow(|r| *r)
            .ok_or_else(|| D::Error::custom("weights are restored only through plan::persist::from_bytes"))?;
        let bytes: &[u8] = match section {
            Section::Static(s) => s,
            // SAFETY: `from_bytes` sets this from a slice it borrows for the whole call and
            // clears it before returning; deserialization happens inside that call.
            Section::Transient(ptr, n) => unsafe { core::slice::from_raw_parts(ptr, n) },
        };
        let range = usize::try_from(at)
            .ok()
            .zip(usize::try_from(len).ok().and_then(|l| l.checked_mul(T::SIZE)))
            .and_then(|(at, n)| Some(at..at.checked_add(n)?))
            .filter(|r| r.end <= bytes.len())
            .ok_or_else(|| D::Error::custom(format!("weights at {at} (+{len}) lie outside the weights section")))?;
        let raw = &bytes[range];
        if let (Section::Static(s), true) = (section, cfg!(target_endian = "little")) {
            let raw: &'static [u8] = &s[raw.as_ptr() as usize - s.as_ptr() as usize..][..raw.len()];
            if (raw.as_ptr() as usize).is_multiple_of(core::mem::align_of::<T>()) {
                // SAFETY: in bounds of a 'static slice, aligned for T, T is a plain number type
                // (every bit pattern valid) and the target's byte order is the stored one.
                let typed = unsafe { core::slice::from_raw_parts(raw.as_ptr().cast::<T>(), raw.len() / T::SIZE) };
                return Ok(Weights(Cow::Borrowed(typed)));
            }
        }
        Ok(Weights(Cow::Owned(raw.chunks_exact(T::SIZE).map(T::read_le).collect())))
    }
}

/// Serializes a loaded model (its plan and description, not its options or arenas).
pub fn to_bytes(model: &Model) -> Result<Vec<u8>> {
    WRITING.with_borrow_mut(|w| *w = Some(Vec::new()));
    let structure = postcard::to_allocvec(model.prepared());
    let weights = WRITING.with_borrow_mut(|w| w.take()).unwrap_or_default();
    let structure = match structure {
        Ok(s) => s,
        Err(e) => bail!(MalformedModel, "serializing the prepared model: {e}"),
    };
    let mut out = Vec::with_capacity(16 + structure.len() + ALIGN + weights.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(structure.len() as u64).to_le_bytes());
    out.extend_from_slice(&structure);
    out.resize(out.len().next_multiple_of(ALIGN), 0);
    out.extend_from_slice(&weights);
    Ok(out)
}

/// Restores a model written by [`to_bytes`] from static data (weights borrowed in place when
/// `bytes` is 8-byte aligned), applying `options` as `load` would.
pub fn from_static(bytes: &'static [u8], options: &LoadOptions) -> Result<Model> {
    restore(bytes, options, true)
}

/// Restores a model written by [`to_bytes`], copying its weights.
pub fn from_bytes(bytes: &[u8], options: &LoadOptions) -> Result<Model> {
    restore(bytes, options, false)
}

fn restore(bytes: &[u8], options: &LoadOptions, is_static: bool) -> Result<Model> {
    if bytes.len() < 16 || &bytes[..8] != MAGIC {
        bail!(MalformedModel, "not a prepared edge-classify model (or one from another version of the format)");
    }
    let structure_len = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    let Some(structure_end) = usize::try_from(structure_len).ok().and_then(|n| n.checked_add(16)) else {
        bail!(MalformedModel, "prepared model structure length {structure_len} is impossible");
    };
    if structure_end > bytes.len() {
        bail!(MalformedModel, "prepared model truncated: structure needs {structure_end} bytes, {} given", bytes.len());
    }
    let weights_at = structure_end.next_multiple_of(ALIGN).min(bytes.len());
    let weights = &bytes[weights_at..];
    let section = if is_static {
        // SAFETY: `from_static` received `bytes` as `&'static [u8]`; `weights` is a sub-slice.
        Section::Static(unsafe { core::slice::from_raw_parts(weights.as_ptr(), weights.len()) })
    } else {
        Section::Transient(weights.as_ptr(), weights.len())
    };
    READING.with_borrow_mut(|r| *r = Some(section));
    let prepared = postcard::from_bytes::<Prepared>(&bytes[16..structure_end]);
    READING.with_borrow_mut(|r| *r = None);
    match prepared {
        Ok(mut p) => {
            // Written by a native build: its kernels are scalar and no SIMD stage is serialized.
            p.plan.bind(crate::kernels::Arch::current());
            Model::from_prepared(p, options)
        }
        Err(e) => bail!(MalformedModel, "prepared model structure: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_round_trip_aligned_and_in_order() {
        let w: Weights<i32> = vec![1, -2, 3].into();
        WRITING.with_borrow_mut(|x| *x = Some(vec![7]));
        let s = postcard::to_allocvec(&w).unwrap();
        let section = WRITING.with_borrow_mut(|x| x.take()).unwrap();
        assert_eq!(section.len(), 8 + 12, "array starts at the next multiple of 8");
        let leaked: &'static [u8] = Box::leak(section.into_boxed_slice());
        READING.with_borrow_mut(|r| *r = Some(Section::Static(leaked)));
        let back: Weights<i32> = postcard::from_bytes(&s).unwrap();
        READING.with_borrow_mut(|r| *r = None);
        assert_eq!(&*back, &[1, -2, 3]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in
            [&b""[..], b"ECPLAN\x00\x03", b"ECPLAN\x00\x03\xff\xff\xff\xff\xff\xff\xff\xff", b"not a model at all"]
        {
            assert!(from_bytes(bad, &LoadOptions::default()).is_err());
        }
        let mut truncated = MAGIC.to_vec();
        truncated.extend_from_slice(&4u64.to_le_bytes());
        truncated.extend_from_slice(&[1, 2, 3, 4]);
        assert!(from_bytes(&truncated, &LoadOptions::default()).is_err());
    }

    /// The kernels are not persisted as bound: a restored model binds them again for its own build,
    /// with the same loops (the filter layouts the bytes hold) as the model that was written.
    #[test]
    fn a_restored_model_binds_the_same_kernels() {
        let path = format!("{}/../../shared/models/person_detect.tflite", env!("CARGO_MANIFEST_DIR"));
        let tflite = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let model = Model::load(&tflite, &LoadOptions::default()).unwrap();
        let restored = from_bytes(&to_bytes(&model).unwrap(), &LoadOptions::default()).unwrap();
        assert_eq!(restored.kernels(None), model.kernels(None));
        let simd = crate::kernels::Arch::Simd128;
        assert_eq!(restored.kernels(Some(simd)), model.kernels(Some(simd)));
        assert!(model.kernels(Some(simd)).iter().any(|k| k.ends_with("/simd128")));
    }

    /// Where the logits are is part of the plan, so a restored model measures fidelity as a loaded one.
    #[test]
    fn a_restored_model_reads_the_same_logits() {
        let path = format!("{}/../../shared/models/person_detect.tflite", env!("CARGO_MANIFEST_DIR"));
        let tflite = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut model = Model::load(&tflite, &LoadOptions::default()).unwrap();
        let mut restored = from_bytes(&to_bytes(&model).unwrap(), &LoadOptions::default()).unwrap();
        let n = model.info().input.shape.iter().product::<u32>() as usize;
        let input = model.input_from_real(&(0..n).map(|i| (i % 255) as f32 / 127.5 - 1.0).collect::<Vec<_>>());
        let logits = model.infer_logits(&input).unwrap();
        assert_eq!(logits.len(), 2);
        assert_eq!(restored.infer_logits(&input).unwrap(), logits);
    }
}
