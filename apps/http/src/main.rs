//! `classify-http`: the edge-worker front end, shipped as `dist/classify-http.wasm`, a
//! `wasi:http/proxy` component composed with `dist/classifier.wasm`. Any wasi:http host runs it
//! unchanged (`wasmtime serve`, Spin, wasmCloud, jco).
//!
//! - `POST /classify[?top=N&precision=int8&model=person]`, the image as the body (`model=person`: the
//!   Visual Wake Words detector, built in; default: the embedded ImageNet model): `200` and
//!   `{"model", "precision", "predictions": [{"index", "label", "score"}], "inference_ms"}`.
//! - `GET /`: the embedded model's description.
//! - Errors are JSON `{"error": {"status", "kind", "message"}}`: `400` for a body that is not an
//!   image or a bad query, `413` for a body over [`classify_http::contract::MAX_BODY_BYTES`], `404` for
//!   any other path, `405` for another method.
//!
//! The whole contract is plain Rust (the library's `contract`), unit-tested natively and fuzzed; `app`,
//! which needs wasm32, only does the I/O around it.

#[cfg(target_arch = "wasm32")]
mod app;

// The macro exports `wasi:http/incoming-handler` and supplies the (unused) command `main`.
#[cfg(target_arch = "wasm32")]
#[wstd::http_server]
async fn main(
    request: wstd::http::Request<wstd::http::body::Body>,
) -> Result<wstd::http::Response<wstd::http::body::Body>, wstd::http::Error> {
    app::respond(request).await
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("classify-http: this program runs as a wasi:http component: build it with `cargo xtask dist`");
    std::process::exit(2);
}
