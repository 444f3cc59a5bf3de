#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| (edge_classify_fuzz::by_name("wasi_nn").expect("a target").run)(data));
