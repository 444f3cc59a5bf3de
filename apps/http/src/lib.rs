//! The part of classify-http that is plain Rust: its whole HTTP contract (routes, query, body limit,
//! statuses, error kinds and JSON answers), which the wasi:http component (`main.rs`) only does I/O
//! around, the fuzz targets call directly, and `cargo xtask worker` writes out for the Worker.

pub mod contract;
