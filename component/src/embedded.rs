//! The model built into a component (`classifier.embedded`): a *bundle* of prepared models, one per
//! precision, plus optionally the TFLite file and labels, placed into the component's memory by
//! `edge-classify bake` (`cli/src/bake.rs`) after the guest is compiled, so a user's model goes in
//! without a Rust toolchain.
//!
//! Bundle layout (little-endian):
//!
//! ```text
//! MAGIC (8) | entries u32 | 0 u32 | entries × (kind u32, 0 u32, offset u64, length u64) | parts
//! ```
//!
//! Each part starts 8-byte aligned, so a prepared model's weights are borrowed in place. Kinds:
//! a prepared model at fp32 / int16 / int8 (`crate::prepared`), the TFLite file (to convert at
//! `embedded()` for a precision not prepared), the labels text, the name it was baked with (`bake
//! --name`; prepared models carry it in their info too).
//!
//! The guest finds its bundle through [`LOCATION`]: a static whose marker the baker searches for in
//! the core module's data and after which it writes the bundle's address and length. A static that
//! the compiler sees as zero would be folded away, so it is read with volatile loads.

use crate::error::{bail, Result};
use crate::graph::Precision;
use crate::model::{LoadOptions, Model};

pub const MAGIC: &[u8; 8] = b"ECBUNDL\x01";
const ALIGN: usize = 8;
const HEADER: usize = 16;
const ENTRY: usize = 24;
/// More parts than any bundle has: a corrupt count is refused before it sizes anything.
const MAX_ENTRIES: usize = 16;

/// What [`LOCATION`] starts with; the baker writes `(address u32, length u32)` right after it.
pub const LOCATION_MARKER: &[u8; 24] = b"edge-classify:embedded:\x01";

#[repr(C, align(8))]
pub struct Location {
    pub marker: [u8; 24],
    pub address: u32,
    pub length: u32,
}

/// Zero length: no model baked in (a plain `cargo build` of the guest).
#[used]
pub static LOCATION: Location = Location { marker: *LOCATION_MARKER, address: 0, length: 0 };

/// The baked bundle of this component, if any.
#[cfg(target_arch = "wasm32")]
pub fn baked() -> Option<&'static [u8]> {
    // SAFETY: plain reads of a static; volatile because the baker rewrites the values after compilation.
    let (address, length) =
        unsafe { (core::ptr::read_volatile(&LOCATION.address), core::ptr::read_volatile(&LOCATION.length)) };
    if length == 0 {
        return None;
    }
    // SAFETY: the baker placed `length` bytes at `address` in an active data segment of this module's
    // memory, above everything the allocator hands out (it only grows memory past the initial size,
    // which the baker raised to cover the bundle); nothing writes there.
    Some(unsafe { core::slice::from_raw_parts(address as usize as *const u8, length as usize) })
}

/// The model of a baked bundle at `options.precision` (none: the first prepared one): restored in
/// place when prepared at that precision (weights borrowed from `bytes`), else loaded and converted
/// from the bundle's TFLite file. Labels: the caller's, else those it was baked with, else the model's own.
pub fn restore(bytes: &'static [u8], options: &LoadOptions) -> Result<Model> {
    let bundle = Bundle::parse(bytes)?;
    let prepared = bundle.prepared();
    let want = options.precision.or(prepared.first().copied());
    if let Some(p) = want.filter(|p| prepared.contains(p)) {
        // A prepared model carries the labels it was baked with.
        let part = bundle.part(Kind::Prepared(p)).expect("listed as prepared");
        return Model::from_static_prepared(part, options);
    }
    match bundle.part(Kind::Tflite) {
        Some(tflite) => {
            let mut options = options.clone();
            if options.labels.is_none() {
                options.labels = bundle.part(Kind::Labels).map(|l| String::from_utf8_lossy(l).into_owned());
            }
            if options.name.is_none() {
                options.name = bundle.part(Kind::Name).map(|n| String::from_utf8_lossy(n).into_owned());
            }
            Model::load(tflite, &options)
        }
        None => bail!(
            UnsupportedModel,
            "the embedded model is baked at {prepared:?} only, not {}; bake it with that precision too",
            want.map(|p| format!("{p:?}")).unwrap_or_else(|| "any precision".into())
        ),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Prepared(Precision),
    Tflite,
    Labels,
    Name,
}

impl Kind {
    fn code(self) -> u32 {
        match self {
            Kind::Prepared(Precision::Fp32) => 1,
            Kind::Prepared(Precision::Int16) => 2,
            Kind::Prepared(Precision::Int8) => 3,
            Kind::Tflite => 4,
            Kind::Labels => 5,
            Kind::Name => 6,
        }
    }
    fn from_code(c: u32) -> Option<Kind> {
        Some(match c {
            1 => Kind::Prepared(Precision::Fp32),
            2 => Kind::Prepared(Precision::Int16),
            3 => Kind::Prepared(Precision::Int8),
            4 => Kind::Tflite,
            5 => Kind::Labels,
            6 => Kind::Name,
            _ => return None,
        })
    }
}

/// A parsed bundle: its parts in stored order (the first prepared one is the default precision).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle<'a> {
    pub parts: Vec<(Kind, &'a [u8])>,
}

impl<'a> Bundle<'a> {
    pub fn part(&self, kind: Kind) -> Option<&'a [u8]> {
        self.parts.iter().find(|(k, _)| *k == kind).map(|(_, b)| *b)
    }

    /// Precisions with a prepared model, in stored order.
    pub fn prepared(&self) -> Vec<Precision> {
        self.parts
            .iter()
            .filter_map(|(k, _)| match k {
                Kind::Prepared(p) => Some(*p),
                _ => None,
            })
            .collect()
    }

    pub fn parse(bytes: &'a [u8]) -> Result<Bundle<'a>> {
        if bytes.len() < HEADER || &bytes[..8] != MAGIC {
            bail!(MalformedModel, "not an edge-classify model bundle (or one from another version)");
        }
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let n = u32_at(8) as usize;
        if n > MAX_ENTRIES || HEADER + n * ENTRY > bytes.len() {
            bail!(MalformedModel, "model bundle claims {n} parts in {} bytes", bytes.len());
        }
        let mut parts = Vec::with_capacity(n);
        for i in 0..n {
            let at = HEADER + i * ENTRY;
            let Some(kind) = Kind::from_code(u32_at(at)) else {
                bail!(MalformedModel, "model bundle part {i} has unknown kind {}", u32_at(at));
            };
            let (offset, len) = (u64_at(at + 8), u64_at(at + 16));
            let range = usize::try_from(offset)
                .ok()
                .zip(usize::try_from(len).ok())
                .and_then(|(o, l)| Some(o..o.checked_add(l)?))
                .filter(|r| r.end <= bytes.len());
            let Some(range) = range else {
                bail!(
                    MalformedModel,
                    "model bundle part {i} ({offset} + {len}) lies outside its {} bytes",
                    bytes.len()
                );
            };
            parts.push((kind, &bytes[range]));
        }
        Ok(Bundle { parts })
    }

    /// The bundle as bytes; every part 8-byte aligned relative to the start (which the baker places
    /// on a page boundary).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.parts.len() as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        let mut at = HEADER + self.parts.len() * ENTRY;
        for (kind, bytes) in &self.parts {
            at = at.next_multiple_of(ALIGN);
            out.extend_from_slice(&kind.code().to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&(at as u64).to_le_bytes());
            out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            at += bytes.len();
        }
        for (_, bytes) in &self.parts {
            out.resize(out.len().next_multiple_of(ALIGN), 0);
            out.extend_from_slice(bytes);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_bundle_round_trips_aligned() {
        let (a, b, c) = (vec![1u8; 13], vec![2u8; 8], b"cat\ndog".to_vec());
        let bundle = Bundle {
            parts: vec![(Kind::Prepared(Precision::Int8), &a[..]), (Kind::Tflite, &b[..]), (Kind::Labels, &c[..])],
        };
        let bytes = bundle.to_bytes();
        let back = Bundle::parse(&bytes).unwrap();
        assert_eq!(back, bundle);
        assert_eq!(back.prepared(), vec![Precision::Int8]);
        for (_, part) in &back.parts {
            assert_eq!((part.as_ptr() as usize - bytes.as_ptr() as usize) % ALIGN, 0);
        }
    }

    /// A bundle restored from its TFLite file (no prepared model at the asked precision) keeps the
    /// name it was baked with; a prepared one carries it in its info.
    #[test]
    fn embedded_bundle_keeps_its_baked_name() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/models/person_detect.tflite");
        let tflite: &'static [u8] = Box::leak(std::fs::read(path).unwrap().into_boxed_slice());
        let named = LoadOptions { name: Some("doorbell".into()), ..LoadOptions::default() };
        let prepared = Model::load(tflite, &named).unwrap().to_prepared_bytes().unwrap();
        let parts =
            vec![(Kind::Prepared(Precision::Int8), &prepared[..]), (Kind::Tflite, tflite), (Kind::Name, b"doorbell")];
        let bytes: &'static [u8] = Box::leak(Bundle { parts }.to_bytes().into_boxed_slice());
        for p in [None, Some(Precision::Int8), Some(Precision::Fp32), Some(Precision::Int16)] {
            let m = restore(bytes, &LoadOptions { precision: p, ..LoadOptions::default() }).unwrap();
            assert_eq!(m.info().name, "doorbell", "{p:?}");
        }
        let unnamed = Bundle { parts: vec![(Kind::Tflite, tflite)] }.to_bytes();
        let unnamed: &'static [u8] = Box::leak(unnamed.into_boxed_slice());
        assert_eq!(restore(unnamed, &LoadOptions::default()).unwrap().info().name, "");
    }

    #[test]
    fn embedded_bundle_garbage_is_an_error() {
        let a = [7u8; 40];
        let good = Bundle { parts: vec![(Kind::Prepared(Precision::Fp32), &a[..])] }.to_bytes();
        assert!(Bundle::parse(&good[..good.len() - 1]).is_err());
        assert!(Bundle::parse(&good[..10]).is_err());
        assert!(Bundle::parse(b"ECBUNDL\x01\xff\xff\xff\xff\0\0\0\0").is_err());
        let mut bad_kind = good.clone();
        bad_kind[16] = 9;
        assert!(Bundle::parse(&bad_kind).is_err());
        let mut bad_len = good;
        bad_len[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(Bundle::parse(&bad_len).is_err());
    }
}
