//! The part of classify-http that is plain Rust: routes, query parsing, the body limit and error
//! bodies, shared by the wasi:http component (`main.rs`), its native unit tests and the fuzz targets.

pub mod route;
