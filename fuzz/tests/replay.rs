//! Every committed corpus file through its target's body, on stable Rust and without a fuzzer: the
//! crashes fuzzing found stay fixed, and the inputs that reach deep into each parser stay accepted.

use std::path::{Path, PathBuf};

use edge_classify_fuzz::{seeds, TARGETS};

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(name)
}

#[test]
fn every_corpus_file_replays() {
    for target in TARGETS {
        let dir = corpus(target.name);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e} (run `cargo xtask fuzz --seed`)", dir.display()))
            .map(|e| e.expect("listing the corpus").path())
            .collect();
        files.sort();
        assert!(files.len() >= 5, "{}: {} inputs, a corpus too small to mean anything", target.name, files.len());
        for file in &files {
            let bytes = std::fs::read(file).expect("reading a corpus file");
            let outcome = std::panic::catch_unwind(|| (target.run)(&bytes));
            assert!(outcome.is_ok(), "{} panicked on {}", target.name, file.display());
        }
        eprintln!("{}: {} inputs replayed", target.name, files.len());
    }
}

#[test]
fn every_corpus_directory_is_a_target() {
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")).expect("corpus/") {
        let name = entry.expect("listing corpus/").file_name().into_string().expect("utf-8 name");
        assert!(TARGETS.iter().any(|t| t.name == name), "corpus/{name} belongs to no target");
    }
}

/// The seed models are what the corpora grew from: each loads and runs at the precision it was
/// written at, so a seed that silently stopped loading (and fuzzed only the error path) fails here.
#[test]
fn seed_models_load_at_their_precision() {
    use edge_classify::model::{LoadOptions, Model, Precision};
    for (name, bytes) in seeds::models() {
        let model = Model::load(&bytes, &LoadOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        // A uint8 seed computes in int8.
        let named = name.replace("uint8", "int8");
        let want = Precision::ALL.into_iter().find(|p| named.contains(p.name())).expect("named by precision");
        assert_eq!(model.info().precision, want, "{name}");
        (edge_classify_fuzz::by_name("tflite_load").unwrap().run)(&bytes);
    }
}

/// The metadata seeds reach the label file: the shared model's metadata and a zip of its labels on
/// the tiny model, which then loads with three of them.
#[test]
fn metadata_seeds_carry_labels() {
    use edge_classify::model::{LoadOptions, Model};
    let shared = std::env::var_os("EDGE_CLASSIFY_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let path = shared.join("models/mobilenet_v2_1.0_224_quant.tflite");
    let model = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let seeds = seeds::metadata_seeds(&model);
    assert_eq!(seeds.len(), 2);
    for ((name, input), want) in seeds.iter().zip([1001, 3]) {
        let file = edge_classify_fuzz::targets::metadata_file(input);
        let m = edge_classify::tflite::metadata::read(&file).expect("reads").expect("has metadata");
        assert_eq!(m.labels.map(|l| l.len()), Some(want), "{name}");
        if want == 3 {
            let model = Model::load(&file, &LoadOptions::default()).expect("the tiny model with three labels loads");
            assert_eq!(model.info().classes, 3);
        }
    }
}

/// The two quantizer bugs fuzzing found, rebuilt from the seed graph (the crash inputs themselves
/// did not survive the corpus merge): each must be an error, not a file that does not load.
#[test]
fn quantizer_refuses_what_it_could_not_write() {
    use edge_classify::graph::{ConstData, Op, Precision};
    use edge_classify::quantize::{quantize_graph, Calibration, Int16Tail, Options};
    let cal = Calibration { images: vec![seeds::calibration_png().to_vec()], mean: None, std: None };

    let mut huge = seeds::tiny_graph().clone();
    if let Some(ConstData::F32(w)) = &mut huge.tensors[13].data {
        w[0] = f32::INFINITY;
    }
    let e = quantize_graph(&huge, Precision::Int8, &cal, Options::default()).unwrap_err();
    assert!(e.to_string().contains("cannot be quantized"), "{e}");

    // The pure 16x8 tail keeps a quantized SOFTMAX output (the default float tail has none to break).
    let pure = Options { int16_tail: Int16Tail::Int16Softmax, ..Options::default() };
    let mut int16 = quantize_graph(seeds::tiny_graph(), Precision::Int16, &cal, pure).expect("quantizes");
    let softmax = int16.nodes.iter().find(|n| matches!(n.op, Op::Softmax { .. })).expect("a softmax").output;
    int16.tensors[softmax].quant.as_mut().expect("quantized").scales = vec![0.000030636787];
    let e = quantize_graph(&int16, Precision::Int16, &cal, Options::default()).unwrap_err();
    assert!(e.to_string().contains("SOFTMAX output"), "{e}");
}
