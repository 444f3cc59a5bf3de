use super::*;

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
