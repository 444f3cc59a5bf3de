//! TFLite Support metadata: the `TFLITE_METADATA` flatbuffer (`metadata_schema.fbs`, identifier "M001") and
//! the zip of associated files (label lists) that TFLite Support appends after the model flatbuffer.
//!
//! The metadata tables are verified once, like [`super::schema`], so garbage is an error and never a panic.
//! The archive is read in place with rawzip; only the label file is copied out, and only after its claimed
//! size has been checked.
//!
//! Never stricter than TFLite's C++ reader where that would refuse a file TFLite and the Task Library
//! load: unions are verified as leniently as C++ verifies them (see `union_table!`), and a load takes
//! metadata through [`read_lenient`], which drops metadata it cannot read instead of refusing the model;
//! only the archive limits ([`MAX_ENTRIES`], [`MAX_FILE_SIZE`]) stay errors.

use super::schema::{fb_table, slot, VResult};
use crate::error::{bail, Error, Result};
use flatbuffers::{Follow, ForwardsUOffset, InvalidFlatbuffer, Table, VOffsetT, Vector, Verifiable, Verifier};
use rawzip::{CompressionMethod, ZipVerification};

/// Name of the `Model.metadata` entry whose buffer holds the TFLite Support flatbuffer.
const METADATA_NAME: &str = "TFLITE_METADATA";
const IDENTIFIER: &[u8; 4] = b"M001";
/// Far above any label or vocabulary file a classifier ships, far below what a zip bomb claims.
pub const MAX_FILE_SIZE: u64 = 16 << 20;
/// Models carry a handful of associated files; a directory claiming thousands is garbage or hostile.
pub const MAX_ENTRIES: u64 = 1024;
/// `AssociatedFileType.TENSOR_AXIS_LABELS`: one label per class of an output axis.
const TENSOR_AXIS_LABELS: i8 = 2;

/// What a model's TFLite Support metadata says, with its label file already read from the archive.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Metadata {
    pub name: Option<String>,
    pub description: Option<String>,
    pub version: Option<String>,
    pub author: Option<String>,
    pub license: Option<String>,
    /// NormalizationOptions of the first input tensor (one value, or one per channel)
    pub normalization: Option<Normalization>,
    /// TENSOR_AXIS_LABELS file of the first output tensor, if the model carries one: its name and its lines
    pub label_file: Option<String>,
    pub labels: Option<Vec<String>>,
    /// names of every associated file the metadata mentions (model-level and tensor-level)
    pub associated_files: Vec<String>,
    /// input ImageProperties color space name ("RGB", "GRAYSCALE") if present
    pub input_color_space: Option<String>,
}

/// `(x - mean) / std` per channel; a single value applies to every channel.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Normalization {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

fb_table!(ModelMetadata {
    name @ 0: string,
    description @ 1: string,
    version @ 2: string,
    subgraph_metadata @ 3: tables<SubGraphMetadata>,
    author @ 4: string,
    license @ 5: string,
    associated_files @ 6: tables<AssociatedFile>,
    min_parser_version @ 7: string,
});

fb_table!(SubGraphMetadata {
    name @ 0: string,
    description @ 1: string,
    input_tensor_metadata @ 2: tables<TensorMetadata>,
    output_tensor_metadata @ 3: tables<TensorMetadata>,
    associated_files @ 4: tables<AssociatedFile>,
});

fb_table!(TensorMetadata {
    name @ 0: string,
    description @ 1: string,
    // 2 = dimension_names (never read)
    content @ 3: table<Content>,
    process_units @ 4: tables<ProcessUnit>,
    stats @ 5: table<Stats>,
    associated_files @ 6: tables<AssociatedFile>,
});

fb_table!(AssociatedFile {
    name @ 0: string,
    description @ 1: string,
    file_type @ 2: scalar<i8> = 0,
    locale @ 3: string,
});

fb_table!(ImageProperties {
    color_space @ 0: scalar<i8> = 0,
    default_size @ 1: table<ImageSize>,
});

fb_table!(ImageSize {
    width @ 0: scalar<u32> = 0,
    height @ 1: scalar<u32> = 0,
});

fb_table!(NormalizationOptions {
    mean @ 0: vec<f32>,
    std @ 1: vec<f32>,
});

fb_table!(Stats {
    max @ 0: vec<f32>,
    min @ 1: vec<f32>,
});

/// A table led by a union (key at id 0, value at id 1) of which we read one variant. Other variants are
/// neither verified nor read, so a newer schema's options do not make a model unreadable.
///
/// Verified as leniently as the C++ reader (TFLite, the Task Library), whose generated
/// `Verify<Union>(verifier, obj, type)` accepts a type without a value (a null `obj` verifies) and any
/// value under type NONE or a type it does not know; MediaPipe Model Maker writes both. flatbuffers'
/// Rust `visit_union` refuses either ("Exactly one of union discriminant and value are present"), so
/// the union is walked by hand here: the key as a `u8` field; the value, when the key is the variant we
/// read, fully, as that table (garbage there is still an error); under any other key only its offset,
/// which C++'s `VerifyOffset` checks too (in the buffer, not zero, pointing into the buffer). An absent
/// value reads as absent.
macro_rules! union_table {
    ($name:ident { $key:literal => $variant:ident as $getter:ident }) => {
        #[derive(Clone, Copy)]
        pub struct $name<'a>(Table<'a>);

        impl<'a> Follow<'a> for $name<'a> {
            type Inner = $name<'a>;
            unsafe fn follow(buf: &'a [u8], loc: usize) -> Self::Inner {
                // SAFETY: forwarded from the caller (a verified buffer and table location).
                $name(unsafe { Table::new(buf, loc) })
            }
        }

        impl Verifiable for $name<'_> {
            fn run_verifier(v: &mut Verifier, pos: usize) -> VResult {
                let mut t = v.visit_table(pos)?.visit_field::<u8>("type", UNION_KEY, false)?;
                // An absent key is NONE (0), the schema's default.
                let key = match t.deref(UNION_KEY)? {
                    Some(at) => t.verifier().get_u8(at)?,
                    None => 0,
                };
                if key == $key {
                    // Absent, the value reads as absent; present, it is verified as the variant.
                    t = t.visit_field::<ForwardsUOffset<$variant>>(stringify!($variant), UNION_VALUE, false)?;
                } else if let Some(at) = t.deref(UNION_VALUE)? {
                    unread_union_value(t.verifier(), at)?;
                }
                t.finish();
                Ok(())
            }
        }

        impl<'a> $name<'a> {
            pub fn $getter(&self) -> Option<$variant<'a>> {
                // SAFETY: verified.
                if unsafe { self.0.get::<u8>(UNION_KEY, Some(0)) } != Some($key) {
                    return None;
                }
                // SAFETY: verified as this variant, because the key matched during verification.
                unsafe { self.0.get::<ForwardsUOffset<$variant<'a>>>(UNION_VALUE, None) }
            }
        }
    };
}

const UNION_KEY: VOffsetT = slot(0);
const UNION_VALUE: VOffsetT = slot(1);

/// What C++'s `VerifyOffset` checks of a union value it does not verify as a table (type NONE, or one it
/// does not know): the offset is in the buffer, aligned, neither zero nor negative as a signed offset,
/// and points into the buffer. Nothing is read through it.
fn unread_union_value(v: &mut Verifier, at: usize) -> VResult {
    let offset = v.get_uoffset(at)?;
    if offset == 0 || offset > i32::MAX as u32 {
        let error_trace = Default::default();
        return Err(InvalidFlatbuffer::RangeOutOfBounds { range: at..at.saturating_add(4), error_trace });
    }
    v.range_in_buffer(at.saturating_add(offset as usize), 1)
}

// ContentProperties: 1 = FeatureProperties, 2 = ImageProperties, 3 = BoundingBoxProperties.
union_table!(Content { 2 => ImageProperties as image_properties });
// ProcessUnitOptions: 1 = NormalizationOptions, then score calibration/thresholding and tokenizers.
union_table!(ProcessUnit { 1 => NormalizationOptions as normalization_options });

/// `Ok(None)` when the model has no TFLITE_METADATA; errors for present-but-broken metadata or archive.
pub fn read(tflite: &[u8]) -> Result<Option<Metadata>> {
    read_model(tflite, &super::read(tflite)?)
}

/// The model's metadata as a load takes it. TFLite runs a model whatever its metadata says, so metadata
/// that cannot be read is not a reason to refuse the model: it is then absent and `.1` says why (the
/// error of [`read`], kind included). Only the file itself not being TFLite, and an archive claiming
/// more than [`MAX_ENTRIES`] entries or a file over [`MAX_FILE_SIZE`] (a zip bomb, `TooLarge`), are
/// still errors.
pub fn read_lenient(tflite: &[u8]) -> Result<(Option<Metadata>, Option<String>)> {
    match read_model(tflite, &super::read(tflite)?) {
        Ok(m) => Ok((m, None)),
        Err(e @ Error::TooLarge(_)) => Err(e),
        Err(e) => Ok((None, Some(e.to_string()))),
    }
}

fn read_model(tflite: &[u8], model: &super::Model<'_>) -> Result<Option<Metadata>> {
    let entry = model.metadata().and_then(|m| m.iter().find(|e| e.name() == Some(METADATA_NAME)));
    let Some(entry) = entry else {
        return Ok(None);
    };
    let root = verify(buffer_bytes(tflite, model, entry.buffer())?)?;

    let subgraph = first(root.subgraph_metadata());
    let input = subgraph.and_then(|s| first(s.input_tensor_metadata()));
    let output = subgraph.and_then(|s| first(s.output_tensor_metadata()));

    let mut associated_files = Vec::new();
    collect_names(root.associated_files(), &mut associated_files)?;
    for s in root.subgraph_metadata().iter().flatten() {
        collect_names(s.associated_files(), &mut associated_files)?;
        let tensors = s.input_tensor_metadata().into_iter().chain(s.output_tensor_metadata()).flatten();
        for t in tensors {
            collect_names(t.associated_files(), &mut associated_files)?;
        }
    }

    // The schema says the first file of a type is the default; others differ by locale.
    let label_file = output
        .and_then(|t| t.associated_files())
        .and_then(|files| files.iter().find(|f| f.file_type() == TENSOR_AXIS_LABELS))
        .and_then(|f| f.name())
        .map(str::to_owned);

    // Only a model whose metadata names files has an archive: looking for one in any other model could
    // mistake a stray end-of-directory signature among the weights for a broken zip.
    let label_bytes = if associated_files.is_empty() { None } else { archive_file(tflite, label_file.as_deref())? };
    let labels = match (&label_file, label_bytes) {
        (Some(name), Some(bytes)) => Some(lines(&bytes, name)?),
        _ => None,
    };

    Ok(Some(Metadata {
        name: root.name().map(str::to_owned),
        description: root.description().map(str::to_owned),
        version: root.version().map(str::to_owned),
        author: root.author().map(str::to_owned),
        license: root.license().map(str::to_owned),
        normalization: input.map(normalization).transpose()?.flatten(),
        label_file,
        labels,
        associated_files,
        input_color_space: input.and_then(color_space),
    }))
}

/// The bytes of `Model.buffers[index]`: inline data, or the (offset, size) that models over 2 GiB use to
/// point past the flatbuffer.
fn buffer_bytes<'a>(tflite: &'a [u8], model: &super::Model<'a>, index: u32) -> Result<&'a [u8]> {
    let buffers = model.buffers();
    let Some(buffer) = buffers.filter(|b| (index as usize) < b.len()).map(|b| b.get(index as usize)) else {
        bail!(MalformedModel, "{METADATA_NAME} points at buffer {index}, which does not exist");
    };
    if let Some(data) = buffer.data().filter(|d| !d.is_empty()) {
        return Ok(data.bytes());
    }
    // Offset 1 is the converter's placeholder for "not yet placed", never real data.
    let range = usize::try_from(buffer.offset())
        .ok()
        .filter(|&o| o > 1)
        .zip(usize::try_from(buffer.size()).ok())
        .and_then(|(o, n)| Some(o..o.checked_add(n)?));
    match range.and_then(|r| tflite.get(r)) {
        Some(bytes) if !bytes.is_empty() => Ok(bytes),
        _ => bail!(MalformedModel, "{METADATA_NAME} buffer {index} is empty or lies outside the file"),
    }
}

fn verify(buf: &[u8]) -> Result<ModelMetadata<'_>> {
    if buf.get(4..8) != Some(IDENTIFIER) {
        bail!(MalformedModel, "{METADATA_NAME} is not TFLite Support metadata (file identifier is not \"M001\")");
    }
    let opts = flatbuffers::VerifierOptions {
        max_depth: 16,
        max_tables: 10_000,
        max_apparent_size: 1 << 28,
        ignore_missing_null_terminator: false,
    };
    flatbuffers::root_with_opts::<ModelMetadata>(&opts, buf).map_err(|e| {
        // flatbuffers' message is a line and a trace line per level: one line here.
        let e = e.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
        Error::MalformedModel(format!("{METADATA_NAME} verification failed: {e}"))
    })
}

fn first<'a, T: Follow<'a> + 'a>(v: Option<Vector<'a, ForwardsUOffset<T>>>) -> Option<T::Inner> {
    v.filter(|v| !v.is_empty()).map(|v| v.get(0))
}

fn collect_names(files: Option<Vector<'_, ForwardsUOffset<AssociatedFile<'_>>>>, out: &mut Vec<String>) -> Result<()> {
    for f in files.iter().flatten() {
        // A nameless file cannot be found in the archive, so whatever it was meant for is unusable.
        let Some(name) = f.name() else {
            bail!(MalformedModel, "{METADATA_NAME} lists an associated file without a name");
        };
        if !out.iter().any(|n| n == name) {
            out.push(name.to_owned());
        }
    }
    Ok(())
}

fn normalization(input: TensorMetadata<'_>) -> Result<Option<Normalization>> {
    let units = input.process_units();
    let Some(opts) = units.iter().flatten().find_map(|u| u.normalization_options()) else {
        return Ok(None);
    };
    let mean: Vec<f32> = opts.mean().iter().flatten().collect();
    let std: Vec<f32> = opts.std().iter().flatten().collect();
    if mean.is_empty() || std.is_empty() {
        bail!(MalformedModel, "input NormalizationOptions has {} means and {} stds", mean.len(), std.len());
    }
    if mean.len() != std.len() && mean.len() != 1 && std.len() != 1 {
        bail!(MalformedModel, "input NormalizationOptions has {} means but {} stds", mean.len(), std.len());
    }
    if let Some(m) = mean.iter().find(|m| !m.is_finite()) {
        bail!(MalformedModel, "input NormalizationOptions mean {m} is not finite");
    }
    // Normalizing divides by std.
    if let Some(s) = std.iter().find(|s| !s.is_finite() || **s == 0.0) {
        bail!(MalformedModel, "input NormalizationOptions std {s} is zero or not finite");
    }
    Ok(Some(Normalization { mean, std }))
}

fn color_space(input: TensorMetadata<'_>) -> Option<String> {
    let props = input.content()?.image_properties()?;
    match props.color_space() {
        // UNKNOWN says nothing, like an absent field.
        0 => None,
        1 => Some("RGB".to_owned()),
        2 => Some("GRAYSCALE".to_owned()),
        // A newer schema's color space: named, so a caller comparing with "RGB" does not take it for RGB.
        v => Some(format!("ColorSpaceType {v}")),
    }
}

fn zip_error(e: rawzip::Error) -> Error {
    Error::MalformedModel(format!("associated-file archive: {e}"))
}

/// Walks the central directory of the zip appended to `tflite` (bounded to [`MAX_ENTRIES`]) and returns the
/// contents of the entry named `wanted`. `Ok(None)` only when nothing is wanted and there is no archive.
fn archive_file(tflite: &[u8], wanted: Option<&str>) -> Result<Option<Vec<u8>>> {
    let zip = match rawzip::ZipArchive::from_slice(tflite) {
        Ok(zip) => zip,
        Err(e) if matches!(e.kind(), rawzip::ErrorKind::MissingEndOfCentralDirectory) => match wanted {
            Some(name) => {
                bail!(MalformedModel, "the metadata names {name:?}, but the model has no associated-file archive")
            }
            None => return Ok(None),
        },
        Err(e) => return Err(zip_error(e)),
    };
    if zip.entries_hint() > MAX_ENTRIES {
        bail!(TooLarge, "associated-file archive claims {} entries, more than {MAX_ENTRIES}", zip.entries_hint());
    }
    let mut found = None;
    let mut entries = zip.entries();
    let mut count = 0u64;
    while let Some(entry) = entries.next_entry().map_err(zip_error)? {
        count += 1;
        // The count in the end record is only a claim; the directory itself may hold more.
        if count > MAX_ENTRIES {
            bail!(TooLarge, "associated-file archive holds more than {MAX_ENTRIES} entries");
        }
        if let Some(name) = wanted.filter(|w| entry.file_path().as_ref() == w.as_bytes()) {
            // Two readers could pick different duplicates; refuse the ambiguity.
            if found.is_some() {
                bail!(MalformedModel, "associated-file archive holds {name:?} twice");
            }
            found = Some(entry);
        }
    }
    let Some(name) = wanted else {
        return Ok(None);
    };
    let Some(entry) = found else {
        bail!(MalformedModel, "associated file {name:?} named by the metadata is not in the model's archive");
    };

    let size = entry.uncompressed_size_hint();
    if size > MAX_FILE_SIZE {
        bail!(TooLarge, "associated file {name:?} claims {size} bytes, more than the {MAX_FILE_SIZE} allowed");
    }
    if entry.flags().is_encrypted() {
        bail!(UnsupportedModel, "associated file {name:?} is encrypted");
    }
    let local = zip.get_entry(entry.wayfinder()).map_err(zip_error)?;
    let data = local.data();
    let bytes = match entry.compression_method() {
        // Checked before copying, so a stored entry is as bounded as an inflated one.
        CompressionMethod::STORE if data.len() as u64 != size => {
            bail!(MalformedModel, "stored associated file {name:?} has {} bytes but claims {size}", data.len())
        }
        CompressionMethod::STORE => data.to_vec(),
        CompressionMethod::DEFLATE => miniz_oxide::inflate::decompress_to_vec_with_limit(data, size as usize)
            .map_err(|e| Error::MalformedModel(format!("associated file {name:?} does not inflate: {e}")))?,
        m => bail!(UnsupportedModel, "associated file {name:?} uses zip compression {m}"),
    };
    let actual = ZipVerification { crc: rawzip::crc32(&bytes), uncompressed_size: bytes.len() as u64 };
    local
        .claim_verifier()
        .valid(actual)
        .map_err(|e| Error::MalformedModel(format!("associated file {name:?} is corrupt: {e}")))?;
    Ok(Some(bytes))
}

/// Lines without their ending, as `model::parse_labels` reads a label file given by the caller.
fn lines(bytes: &[u8], name: &str) -> Result<Vec<String>> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Error::MalformedModel(format!("label file {name:?} is not UTF-8: {e}")))?;
    Ok(text.trim_end_matches(['\n', '\r']).lines().map(|l| l.trim_end_matches('\r').to_owned()).collect())
}

#[cfg(test)]
#[path = "metadata_tests.rs"]
mod tests;
