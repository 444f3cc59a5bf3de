#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| (edge_classify_fuzz::by_name("tflite_load").expect("a target").run)(data));
