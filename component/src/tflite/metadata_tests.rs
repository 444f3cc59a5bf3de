use super::*;
use crate::tflite::write;

const MODELS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/models/");
const QUANT: &str = "mobilenet_v2_1.0_224_quant.tflite";
const PTQ: &str = "mobilenet_v2_1.0_224_ptq_int8.tflite";

fn model(name: &str) -> Vec<u8> {
    let path = format!("{MODELS}{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn offset_in(file: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - file.as_ptr() as usize
}

/// Where the TFLITE_METADATA flatbuffer lies in `file`.
fn metadata_range(file: &[u8]) -> std::ops::Range<usize> {
    let model = crate::tflite::read(file).unwrap();
    let entry = model.metadata().unwrap().iter().find(|e| e.name() == Some(METADATA_NAME)).unwrap();
    let data = buffer_bytes(file, &model, entry.buffer()).unwrap();
    let start = offset_in(file, data);
    start..start + data.len()
}

/// (end of central directory record, central directory, first local header) offsets.
fn zip_layout(file: &[u8]) -> (usize, usize, usize) {
    let eocd = file.windows(4).rposition(|w| w == b"PK\x05\x06").unwrap();
    let cd = u32_at(file, eocd + 16) as usize;
    assert_eq!(&file[cd..cd + 4], b"PK\x01\x02");
    (eocd, cd, u32_at(file, cd + 42) as usize)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn malformed(r: Result<Option<Metadata>>) -> String {
    match r {
        Err(Error::MalformedModel(m)) => m,
        other => panic!("expected MalformedModel, got {other:?}"),
    }
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn imagenet_models_carry_their_metadata() {
    let text = std::fs::read_to_string(format!("{MODELS}imagenet_labels.txt")).unwrap();
    let expected: Vec<String> = text.trim_end_matches('\n').lines().map(str::to_owned).collect();
    assert_eq!(expected.len(), 1001);
    for name in [QUANT, PTQ] {
        let m = read(&model(name)).unwrap().unwrap_or_else(|| panic!("{name} has metadata"));
        assert_eq!(m.name.as_deref(), Some("ImageClassifier"), "{name}");
        let description = "Identify the most prominent object in the image from a known set of categories.";
        assert_eq!(m.description.as_deref(), Some(description), "{name}");
        // Neither model states a version, author or license.
        assert_eq!((m.version.as_deref(), m.author.as_deref(), m.license.as_deref()), (None, None, None));
        assert_eq!(m.normalization, Some(Normalization { mean: vec![127.5], std: vec![127.5] }), "{name}");
        assert_eq!(m.label_file.as_deref(), Some("imagenet_labels.txt"), "{name}");
        assert_eq!(m.labels.as_ref(), Some(&expected), "{name}");
        assert_eq!(m.associated_files, ["imagenet_labels.txt"], "{name}");
        assert_eq!(m.input_color_space.as_deref(), Some("RGB"), "{name}");
    }
}

#[test]
fn field_slots_match_the_schema() {
    // Fields `Metadata` does not expose, read to check the slot numbers against the real files.
    let file = model(QUANT);
    let root = verify(&file[metadata_range(&file)]).unwrap();
    assert_eq!(root.min_parser_version(), Some("1.0.0"));
    let sg = first(root.subgraph_metadata()).unwrap();
    let input = first(sg.input_tensor_metadata()).unwrap();
    let output = first(sg.output_tensor_metadata()).unwrap();
    assert_eq!((input.name(), output.name()), (Some("image"), Some("probability")));
    assert_eq!(input.description(), Some("Input image to be classified."));
    let size = input.content().unwrap().image_properties().unwrap().default_size();
    assert!(size.is_none_or(|s| (s.width(), s.height()) == (224, 224)));
    let labels = first(output.associated_files()).unwrap();
    assert_eq!(labels.description(), Some("Labels for categories that the model can recognize."));
    assert_eq!((labels.file_type(), labels.locale()), (TENSOR_AXIS_LABELS, None));
}

#[test]
fn models_without_support_metadata_give_none() {
    for name in [
        "person_detect.tflite",
        "person_detect_qdimfix.tflite",
        "dog_breeds_mobilenet_v2_160_float.tflite",
        "dog_breeds_mobilenet_v2_160_int8.tflite",
        "dog_breeds_mobilenet_v2_160_int16x8.tflite",
    ] {
        assert_eq!(read(&model(name)), Ok(None), "{name}");
    }
    assert!(read(b"").is_err());
    assert!(read(b"not a flatbuffer at all").is_err());
}

/// A model is named by its metadata, else by the caller (`LoadOptions::name`), else not at all (""):
/// never by the file's description, which converters fill with their own text ("TOCO Converted.").
#[test]
fn a_model_is_named_by_its_metadata_or_its_caller_never_its_converter() {
    use crate::model::{LoadOptions, Model};
    for name in [
        "person_detect.tflite",
        "dog_breeds_mobilenet_v2_160_int8.tflite",
        "dog_breeds_mobilenet_v2_160_int16x8.tflite",
    ] {
        let bytes = model(name);
        let description = crate::tflite::read(&bytes).unwrap().description().map(str::to_owned);
        let unnamed = Model::load(&bytes, &LoadOptions::default()).unwrap();
        assert_eq!(unnamed.info().name, "", "{name} (description {description:?})");
        for p in crate::graph::Precision::ALL {
            let options = LoadOptions { precision: Some(p), name: Some("caller's".into()), ..LoadOptions::default() };
            assert_eq!(Model::load(&bytes, &options).unwrap().info().name, "caller's", "{name} at {p:?}");
        }
    }
    // The converter's string is there to be ignored.
    for name in ["person_detect.tflite", "mobilenet_v3_small_224_1.0_uint8.tflite"] {
        assert_eq!(crate::tflite::read(&model(name)).unwrap().description(), Some("TOCO Converted."), "{name}");
    }
    // A metadata name wins over the caller's.
    let options = LoadOptions { name: Some("caller's".into()), ..LoadOptions::default() };
    let named = Model::load(&model(PTQ), &options).unwrap();
    let meta = read(&model(PTQ)).unwrap().and_then(|m| m.name).expect("the PTQ file's metadata names it");
    assert_eq!(named.info().name, meta);
    assert_ne!(meta, "TOCO Converted.");
}

#[test]
fn truncated_metadata_buffer_is_an_error() {
    let file = model(QUANT);
    let range = metadata_range(&file);
    let len = range.len();
    for cut in [0, 3, 4, 8, 12, 16, 64, len / 2, len - 32] {
        let mut bytes = file.clone();
        // The vector's length prefix: the TFLite flatbuffer still verifies, the metadata it holds is cut.
        put_u32(&mut bytes, range.start - 4, cut as u32);
        let err = malformed(read(&bytes));
        assert!(err.contains(METADATA_NAME), "cut {cut}: {err}");
    }
}

#[test]
fn garbage_metadata_is_an_error() {
    let file = model(QUANT);
    let range = metadata_range(&file);
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for keep_identifier in [false, true] {
        let mut bytes = file.clone();
        for b in &mut bytes[range.clone()] {
            *b = rng.next() as u8;
        }
        if keep_identifier {
            bytes[range.start + 4..range.start + 8].copy_from_slice(IDENTIFIER);
        }
        let err = malformed(read(&bytes));
        assert!(err.contains(METADATA_NAME), "{err}");
    }
}

#[test]
fn broken_normalization_is_an_error() {
    let file = model(QUANT);
    let range = metadata_range(&file);
    let root = verify(&file[range.clone()]).unwrap();
    let input = first(first(root.subgraph_metadata()).unwrap().input_tensor_metadata()).unwrap();
    let opts = input.process_units().unwrap().iter().find_map(|u| u.normalization_options()).unwrap();
    let std_at = offset_in(&file, opts.std().unwrap().bytes());
    for bad in [0.0f32, f32::NAN, f32::INFINITY] {
        let mut bytes = file.clone();
        bytes[std_at..std_at + 4].copy_from_slice(&bad.to_le_bytes());
        assert!(malformed(read(&bytes)).contains("std"), "{bad}");
    }
    let mut bytes = file.clone();
    put_u32(&mut bytes, std_at - 4, 0);
    assert!(malformed(read(&bytes)).contains("0 stds"));
}

#[test]
fn truncated_archive_is_an_error() {
    let file = model(QUANT);
    let (eocd, cd, local) = zip_layout(&file);
    for cut in [local, local + 10, local + 100, cd - 1, cd, cd + 20, eocd, eocd + 10, file.len() - 1] {
        let err = malformed(read(&file[..cut]));
        // Once the end record is gone there is no archive at all, so the missing file is what is named.
        if cut < eocd {
            assert!(err.contains("imagenet_labels.txt"), "cut {cut}: {err}");
        }
    }
}

#[test]
fn corrupt_central_directory_is_an_error() {
    let file = model(QUANT);
    let (eocd, cd, local) = zip_layout(&file);

    let mut bytes = file.clone();
    bytes[cd..cd + 4].copy_from_slice(b"XXXX");
    malformed(read(&bytes));

    // A renamed entry leaves the label file missing.
    let mut bytes = file.clone();
    bytes[cd + 46] ^= 0x20;
    assert!(malformed(read(&bytes)).contains("\"imagenet_labels.txt\" named by the metadata is not"));

    // A name length running past the directory.
    let mut bytes = file.clone();
    bytes[cd + 28..cd + 30].copy_from_slice(&0xFFFFu16.to_le_bytes());
    malformed(read(&bytes));

    // A local header offset pointing at the flatbuffer.
    let mut bytes = file.clone();
    put_u32(&mut bytes, cd + 42, 0);
    malformed(read(&bytes));

    // A directory offset past the end record, and one that misses the directory: rawzip then takes the
    // difference for data before the archive, which shifts the local header offsets off their headers.
    for wrong in [0x7FFF_FFFF, cd as u32 - 8] {
        let mut bytes = file.clone();
        put_u32(&mut bytes, eocd + 16, wrong);
        malformed(read(&bytes));
    }

    // A flipped byte of the stored label text fails the CRC.
    let mut bytes = file.clone();
    let data = local + 30 + (u32_at(&file, local + 26) & 0xFFFF) as usize + (u32_at(&file, local + 26) >> 16) as usize;
    bytes[data + 5] ^= 1;
    assert!(malformed(read(&bytes)).contains("is corrupt"));

    let mut bytes = file.clone();
    bytes[eocd + 8..eocd + 12].copy_from_slice(&[0xD0, 0x07, 0xD0, 0x07]);
    assert!(matches!(read(&bytes), Err(Error::TooLarge(_))));
}

#[test]
fn entry_claiming_a_huge_size_is_refused() {
    let file = model(QUANT);
    let (_, cd, _) = zip_layout(&file);
    for (field, claim) in [(24, 0xFFFF_FFF0u32), (24, 16 << 20 | 1), (20, 0xFFFF_FFF0), (20, 10), (24, 0xFFFF_FFFF)] {
        let mut bytes = file.clone();
        put_u32(&mut bytes, cd + field, claim);
        match (field, read(&bytes)) {
            (24, Err(Error::TooLarge(m))) => assert!(m.contains("imagenet_labels.txt"), "{m}"),
            // A compressed size past the end of the file.
            (20, Err(Error::MalformedModel(_))) => {}
            (_, other) => panic!("field {field} = {claim:#x}: {other:?}"),
        }
    }
}

#[test]
fn random_byte_flips_never_panic() {
    for name in [QUANT, PTQ] {
        let mut bytes = model(name);
        let range = metadata_range(&bytes);
        let (_, _, local) = zip_layout(&bytes);
        let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
        let (mut ok, mut err) = (0, 0);
        for i in 0..2000 {
            // Half the flips anywhere, half where metadata and archive live: the weights are most of the file.
            let at = match i % 2 {
                0 => rng.below(bytes.len()),
                _ if rng.next().is_multiple_of(2) => range.start + rng.below(range.len()),
                _ => local + rng.below(bytes.len() - local),
            };
            let old = bytes[at];
            bytes[at] ^= 1 | rng.next() as u8;
            match read(&bytes) {
                Ok(_) => ok += 1,
                Err(_) => err += 1,
            }
            bytes[at] = old;
        }
        assert!(ok > 0 && err > 0, "{name}: {ok} ok, {err} errors");
    }
}

/// `prefix` followed by a one-entry zip whose offsets count from the start of the file, as TFLite Support
/// writes them.
fn with_archive(prefix: &[u8], name: &str, method: u16, data: &[u8], size: u32, crc: u32) -> Vec<u8> {
    let mut out = prefix.to_vec();
    let local = out.len() as u32;
    let common = |out: &mut Vec<u8>| {
        for v in [method, 0, 0] {
            out.extend(v.to_le_bytes());
        }
        for v in [crc, data.len() as u32, size] {
            out.extend(v.to_le_bytes());
        }
        out.extend((name.len() as u16).to_le_bytes());
        out.extend(0u16.to_le_bytes());
    };
    out.extend(b"PK\x03\x04\x14\x00\x00\x00");
    common(&mut out);
    out.extend(name.as_bytes());
    out.extend(data);
    let cd = out.len() as u32;
    out.extend(b"PK\x01\x02\x14\x00\x14\x00\x00\x00");
    common(&mut out);
    out.extend([0; 10]);
    out.extend(local.to_le_bytes());
    out.extend(name.as_bytes());
    let cd_size = out.len() as u32 - cd;
    out.extend(b"PK\x05\x06\x00\x00\x00\x00\x01\x00\x01\x00");
    out.extend(cd_size.to_le_bytes());
    out.extend(cd.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

#[test]
fn deflated_and_unsupported_entries() {
    let file = model(QUANT);
    let (_, _, local) = zip_layout(&file);
    let text = std::fs::read(format!("{MODELS}imagenet_labels.txt")).unwrap();
    let (size, crc) = (text.len() as u32, rawzip::crc32(&text));
    let deflated = miniz_oxide::deflate::compress_to_vec(&text, 6);
    assert!(deflated.len() < text.len() / 2);
    let expected = read(&file).unwrap().unwrap();

    let bytes = with_archive(&file[..local], "imagenet_labels.txt", 8, &deflated, size, crc);
    assert_eq!(read(&bytes).unwrap().unwrap(), expected);

    // Claiming less than the stream inflates to must stop the inflater at the claim.
    let bytes = with_archive(&file[..local], "imagenet_labels.txt", 8, &deflated, size / 2, crc);
    assert!(malformed(read(&bytes)).contains("does not inflate"));
    let bytes = with_archive(&file[..local], "imagenet_labels.txt", 8, &deflated[..100], size, crc);
    malformed(read(&bytes));

    // bzip2
    let bytes = with_archive(&file[..local], "imagenet_labels.txt", 12, &deflated, size, crc);
    assert!(matches!(read(&bytes), Err(Error::UnsupportedModel(m)) if m.contains("imagenet_labels.txt")));

    let bytes = with_archive(&file[..local], "imagenet_labels.txt", 0, b"a\r\nb\n\n", 6, rawzip::crc32(b"a\r\nb\n\n"));
    assert_eq!(read(&bytes).unwrap().unwrap().labels, Some(vec!["a".to_owned(), "b".to_owned()]));
    let bytes = with_archive(&file[..local], "imagenet_labels.txt", 0, b"\xFF\xFE", 2, rawzip::crc32(b"\xFF\xFE"));
    assert!(malformed(read(&bytes)).contains("not UTF-8"));
}

// ---- unions as the C++ reader takes them, and metadata that never blocks a load ----

const PERSON: &str = "person_detect.tflite";

/// How a test writes a union: its type (`None`: the field absent) and whether its value is present.
#[derive(Clone, Copy)]
struct U(Option<u8>, bool);

/// A TFLite Support metadata flatbuffer: one subgraph whose input tensor has a `Content` union holding an
/// RGB ImageProperties and one ProcessUnit per `units` item holding NormalizationOptions (mean, std),
/// each union written as its `U` says; the output tensor names `labels` as its TENSOR_AXIS_LABELS file.
fn build_metadata(content: U, units: &[(U, f32, f32)], labels: Option<&str>) -> Vec<u8> {
    use flatbuffers::{FlatBufferBuilder, TableFinishedWIPOffset, WIPOffset};
    type Off = WIPOffset<TableFinishedWIPOffset>;
    let mut b = FlatBufferBuilder::new();
    let union = |b: &mut FlatBufferBuilder, U(key, present): U, value: Off| {
        let t = b.start_table();
        if let Some(k) = key {
            b.push_slot_always::<u8>(UNION_KEY, k);
        }
        if present {
            b.push_slot_always(UNION_VALUE, value);
        }
        b.end_table(t)
    };
    let t = b.start_table();
    b.push_slot_always::<i8>(slot(0), 1); // ColorSpaceType RGB
    let image = b.end_table(t);
    let content = union(&mut b, content, image);
    let mut process_units = Vec::new();
    for &(u, mean, std) in units {
        let (mean, std) = (b.create_vector(&[mean]), b.create_vector(&[std]));
        let t = b.start_table();
        b.push_slot_always(slot(0), mean);
        b.push_slot_always(slot(1), std);
        let options = b.end_table(t);
        process_units.push(union(&mut b, u, options));
    }
    let process_units = b.create_vector(&process_units);
    let files = labels.map(|name| {
        let name = b.create_string(name);
        let t = b.start_table();
        b.push_slot_always(slot(0), name);
        b.push_slot_always::<i8>(slot(2), TENSOR_AXIS_LABELS);
        let file = b.end_table(t);
        b.create_vector(&[file])
    });
    let t = b.start_table();
    b.push_slot_always(slot(3), content);
    b.push_slot_always(slot(4), process_units);
    let input = b.end_table(t);
    let t = b.start_table();
    if let Some(files) = files {
        b.push_slot_always(slot(6), files);
    }
    let output = b.end_table(t);
    let (inputs, outputs) = (b.create_vector(&[input]), b.create_vector(&[output]));
    let t = b.start_table();
    b.push_slot_always(slot(2), inputs);
    b.push_slot_always(slot(3), outputs);
    let subgraph = b.end_table(t);
    let subgraphs = b.create_vector(&[subgraph]);
    let name = b.create_string("lenient");
    let t = b.start_table();
    b.push_slot_always(slot(0), name);
    b.push_slot_always(slot(3), subgraphs);
    let root = b.end_table(t);
    b.finish(root, Some("M001"));
    b.finished_data().to_vec()
}

/// The person detector (int8 input, two classes) carrying `meta` as its TFLITE_METADATA, with `labels`
/// as `labels.txt` in the archive after it when given.
fn person_with(meta: &[u8], labels: Option<&[u8]>) -> Vec<u8> {
    let graph = crate::graph::lower(&model(PERSON)).unwrap();
    let mut file = write::write_with_metadata(&graph, "test", &[(METADATA_NAME, meta)]).unwrap();
    if let Some(labels) = labels {
        file.extend(write::associated_file_zip(file.len(), "labels.txt", labels));
    }
    file
}

const PERSON_LABELS: &[u8] = b"notperson\nperson\n";

fn norm(mean: f32, std: f32) -> Option<Normalization> {
    Some(Normalization { mean: vec![mean], std: vec![std] })
}

/// A prepared model's labels and pixel rule, as `load` left them (through the prepared bytes, which also
/// carry `metadata_error`).
fn loaded(file: &[u8]) -> (crate::model::ModelInfo, Option<Vec<String>>, crate::input::Pixels) {
    let options = crate::model::LoadOptions::default();
    let m = crate::model::Model::load(file, &options).unwrap();
    let owned = crate::model::Model::load_owned(file.to_vec(), &options).unwrap();
    assert_eq!(m.info(), owned.info());
    let p = crate::prepared::Prepared::from_bytes(&m.to_prepared_bytes().unwrap()).unwrap();
    assert_eq!(&p.info, m.info());
    assert_eq!(&p.pixels, m.pixels());
    (p.info, p.labels, p.pixels)
}

#[test]
fn consistent_unions_read_as_before() {
    let meta = build_metadata(U(Some(2), true), &[(U(Some(1), true), 0.5, 2.0)], Some("labels.txt"));
    let m = read(&person_with(&meta, Some(PERSON_LABELS))).unwrap().unwrap();
    assert_eq!(m.name.as_deref(), Some("lenient"));
    assert_eq!(m.input_color_space.as_deref(), Some("RGB"));
    assert_eq!(m.normalization, norm(0.5, 2.0));
    assert_eq!(m.labels, Some(vec!["notperson".to_owned(), "person".to_owned()]));
    let (info, labels, pixels) = loaded(&person_with(&meta, Some(PERSON_LABELS)));
    assert_eq!((info.name.as_str(), info.metadata_error), ("lenient", None));
    assert_eq!(labels, m.labels);
    assert_eq!(pixels, crate::input::Pixels::Normalize { mean: vec![0.5], std: vec![2.0] });
}

/// C++'s `Verify<Union>` takes a null value as verified: a type without a value reads as absent, and the
/// rest of the metadata as it is.
#[test]
fn union_type_without_value_reads_as_absent() {
    let units = [(U(Some(1), false), 9.0, 9.0), (U(Some(1), true), 0.5, 2.0)];
    let meta = build_metadata(U(Some(2), false), &units, Some("labels.txt"));
    let file = person_with(&meta, Some(PERSON_LABELS));
    let m = read(&file).unwrap().unwrap();
    assert_eq!(m.input_color_space, None);
    assert_eq!(m.normalization, norm(0.5, 2.0), "the unit without a value is skipped");
    assert_eq!(m.labels, Some(vec!["notperson".to_owned(), "person".to_owned()]));
    let (info, labels, pixels) = loaded(&file);
    assert_eq!(info.metadata_error, None);
    assert_eq!(labels, m.labels);
    assert_eq!(pixels, crate::input::Pixels::Normalize { mean: vec![0.5], std: vec![2.0] });

    // The only unit has no value: no normalization, the float default at load.
    let meta = build_metadata(U(Some(2), false), &[(U(Some(1), false), 9.0, 9.0)], None);
    let file = person_with(&meta, None);
    assert_eq!(read(&file).unwrap().unwrap().normalization, None);
    let (info, labels, pixels) = loaded(&file);
    assert_eq!((info.metadata_error, labels), (None, None));
    assert_eq!(pixels, crate::input::Pixels::Normalize { mean: vec![127.5], std: vec![127.5] });
}

/// C++'s `Verify<Union>` accepts any value under type NONE (absent or written as 0) or a type it does not
/// know: it reads as absent.
#[test]
fn union_value_without_type_reads_as_absent() {
    for (content, none) in
        [(U(None, true), U(Some(0), true)), (U(Some(0), true), U(None, true)), (U(Some(200), true), U(Some(77), true))]
    {
        let units = [(none, 9.0, 9.0), (U(Some(1), true), 0.5, 2.0), (U(None, true), 8.0, 8.0)];
        let file = person_with(&build_metadata(content, &units, Some("labels.txt")), Some(PERSON_LABELS));
        let m = read(&file).unwrap().unwrap();
        assert_eq!(m.input_color_space, None);
        assert_eq!(m.normalization, norm(0.5, 2.0));
        assert_eq!(m.labels.as_ref().map(Vec::len), Some(2));
        let (info, labels, _) = loaded(&file);
        assert_eq!((info.metadata_error, labels), (None, m.labels));
    }
}

/// The offsets of the `UNION_VALUE` field of `meta`'s first input's content and first process unit.
fn union_value_offsets(meta: &[u8]) -> (usize, usize) {
    let root = verify(meta).unwrap();
    let input = first(first(root.subgraph_metadata()).unwrap().input_tensor_metadata()).unwrap();
    let at = |t: Table<'_>| t.loc() + t.vtable().get(UNION_VALUE) as usize;
    (at(input.content().unwrap().0), at(input.process_units().unwrap().get(0).0))
}

/// Lenient about which union member is present, not about what a present value holds: the variant we
/// read is verified fully, and any other value's offset as C++'s `VerifyOffset` checks it.
#[test]
fn union_values_are_still_verified() {
    // The real model's ImageProperties and NormalizationOptions, pointed outside the buffer.
    let file = model(QUANT);
    let range = metadata_range(&file);
    let (content, unit) = union_value_offsets(&file[range.clone()]);
    for at in [content, unit] {
        for bad in [0xFFFF_FF00u32, 0x7FFF_FFF0, 1] {
            let mut bytes = file.clone();
            put_u32(&mut bytes, range.start + at, bad);
            let err = malformed(read(&bytes));
            assert!(err.contains(METADATA_NAME) && !err.contains('\n'), "{bad:#x}: {err}");
        }
    }
    // A value under NONE or an unknown type: its offset still has to point into the buffer.
    for none in [U(None, true), U(Some(0), true), U(Some(200), true)] {
        let meta = build_metadata(none, &[(none, 9.0, 9.0)], None);
        let (content, unit) = union_value_offsets(&meta);
        for at in [content, unit] {
            for bad in [0u32, 0x8000_0000, meta.len() as u32] {
                let mut meta = meta.clone();
                put_u32(&mut meta, at, bad);
                let err = malformed(read(&person_with(&meta, None)));
                assert!(err.contains("verification failed"), "{bad:#x}: {err}");
            }
        }
    }
}

/// Metadata that cannot be read does not refuse the model: it loads as TFLite runs it, without labels or
/// normalization, and says why.
#[test]
fn unreadable_metadata_loads_without_it() {
    let good = build_metadata(U(Some(2), true), &[(U(Some(1), true), 0.5, 2.0)], Some("labels.txt"));
    let mut rng = XorShift(0x1234_5678_9ABC_DEF1);
    let mut garbage: Vec<u8> = (0..good.len()).map(|_| rng.next() as u8).collect();
    garbage[4..8].copy_from_slice(IDENTIFIER);
    let mut no_std = good.clone();
    let root = verify(&good).unwrap();
    let input = first(first(root.subgraph_metadata()).unwrap().input_tensor_metadata()).unwrap();
    let opts = input.process_units().unwrap().get(0).normalization_options().unwrap();
    let std_at = offset_in(&good, opts.std().unwrap().bytes());
    no_std[std_at..std_at + 4].copy_from_slice(&0f32.to_le_bytes());
    let cases = [
        ("garbage", garbage, Some(PERSON_LABELS), "verification failed"),
        ("not M001", b"\x08\0\0\0XXXX\0\0\0\0".to_vec(), Some(PERSON_LABELS), "M001"),
        ("std 0", no_std, Some(PERSON_LABELS), "std 0"),
        ("no archive", good.clone(), None, "no associated-file archive"),
        ("not UTF-8", good.clone(), Some(&b"\xFF\xFE\n"[..]), "not UTF-8"),
    ];
    for (what, meta, labels, reason) in cases {
        let file = person_with(&meta, labels);
        assert!(read(&file).is_err(), "{what}");
        let (info, labels, pixels) = loaded(&file);
        let e = info.metadata_error.unwrap_or_else(|| panic!("{what}: no metadata_error"));
        assert!(e.starts_with("malformed model: ") && e.contains(reason) && !e.contains('\n'), "{what}: {e}");
        assert_eq!(labels, None, "{what}");
        assert_eq!(pixels, crate::input::Pixels::Normalize { mean: vec![127.5], std: vec![127.5] }, "{what}");
        // The graph's own name, not the metadata's.
        assert_ne!(info.name, "lenient", "{what}");
        assert_eq!(read_lenient(&file).unwrap(), (None, Some(e)), "{what}");
    }
    // A corrupt label archive too: the stored label text no longer matches its CRC.
    let mut file = person_with(&good, Some(PERSON_LABELS));
    let at = file.windows(9).rposition(|w| w == b"notperson").unwrap();
    file[at] ^= 1;
    let (info, labels, _) = loaded(&file);
    assert!(info.metadata_error.is_some_and(|e| e.contains("is corrupt")));
    assert_eq!(labels, None);
    // Not a TFLite file at all is still an error, of the file rather than of its metadata.
    assert!(read_lenient(b"not a flatbuffer at all").is_err());
    let load = crate::model::Model::load(b"not a flatbuffer at all", &Default::default());
    assert!(matches!(load, Err(Error::MalformedModel(m)) if !m.contains(METADATA_NAME)));
}

/// Bombs in the label archive stay `too-large`: the metadata's limits refuse the model, not only its
/// metadata.
#[test]
fn label_archive_bombs_still_refuse_the_model() {
    let meta = build_metadata(U(Some(2), true), &[(U(Some(1), true), 0.5, 2.0)], Some("labels.txt"));
    let base = person_with(&meta, None);
    let crc = rawzip::crc32(PERSON_LABELS);
    let n = PERSON_LABELS.len() as u32;
    let claims_too_much = with_archive(&base, "labels.txt", 8, PERSON_LABELS, MAX_FILE_SIZE as u32 + 1, crc);
    let mut too_many_entries = with_archive(&base, "labels.txt", 0, PERSON_LABELS, n, crc);
    let (eocd, _, _) = zip_layout(&too_many_entries);
    too_many_entries[eocd + 8..eocd + 12].copy_from_slice(&[0xD0, 0x07, 0xD0, 0x07]);
    for (what, file) in [("claims too much", claims_too_much), ("too many entries", too_many_entries)] {
        assert!(matches!(read(&file), Err(Error::TooLarge(_))), "{what}");
        assert!(matches!(read_lenient(&file), Err(Error::TooLarge(_))), "{what}");
        let options = crate::model::LoadOptions::default();
        let load = crate::model::Model::load(&file, &options);
        assert!(matches!(load, Err(Error::TooLarge(ref m)) if m.contains("associated")), "{what}: {load:?}");
        let load = crate::model::Model::load_owned(file, &options);
        assert!(matches!(load, Err(Error::TooLarge(_))), "{what}: {load:?}");
    }
    // The same archive within the limits loads with its labels.
    let (info, labels, _) = loaded(&with_archive(&base, "labels.txt", 0, PERSON_LABELS, n, crc));
    assert_eq!((info.metadata_error, labels.map(|l| l.len())), (None, Some(2)));
}
