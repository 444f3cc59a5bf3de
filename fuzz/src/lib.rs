//! One function per fuzz target: bytes in, a panic only for a real bug. Each states the property it
//! checks beyond "no panic, no trap": loaded models run, quantized models load, decoded images have
//! the requested size, the HTTP path answers every body with a client error or a prediction.
//!
//! The same functions run three ways: under libFuzzer (`libfuzzer/`, `cargo xtask fuzz`), over the
//! committed corpora on stable Rust (`tests/replay.rs`, part of `cargo xtask test`), and by anyone
//! reproducing a crash file with `cargo xtask fuzz --replay FILE`.

pub mod seeds;
pub mod targets;

pub use targets::{by_name, Target, TARGETS};
