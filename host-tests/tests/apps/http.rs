//! `dist/classify-http.wasm` behind a real HTTP/1.1 listener, one instance per request, as
//! `wasmtime serve` runs it; requests go over TCP from a plain client.

use std::sync::OnceLock;
use std::time::Duration;

use host_tests::apps::{http_request, HttpResponse, HttpServer, Limits, Upload};

use crate::common::*;
use crate::http_contract::{http_contract, request, Timing};

fn addr() -> std::net::SocketAddr {
    http_server().addr()
}

http_contract!(addr, Timing::Measured);

/// A 12 MP (4000x3000) JPEG of smooth gradients, ~1.4 MB, well under the upload limit: decoded row by
/// row in ~19 MiB of the classifier's memory, but it takes ~0.25 s.
/// The largest progressive JPEG accepted, 4:4:4 (the most coefficients, all held while it decodes):
/// its classify takes ~34.5 MiB of the classifier's memory, more than any baseline JPEG or PNG.
pub fn progressive_444() -> &'static [u8] {
    static JPEG: OnceLock<Vec<u8>> = OnceLock::new();
    JPEG.get_or_init(|| host_tests::budget_images::progressive(2048, 1536, jpeg_encoder::SamplingFactor::R_4_4_4))
}

/// A memory cap above what `GET /`, a golden photo and the 12 MP JPEG need (11.8, 18.7 and 19.3 MiB),
/// below [`progressive_444`]'s 34.5 (see `APP_MEMORY_BYTES`).
pub const SMALL_CAP: usize = 28 << 20;

pub fn twelve_megapixel_jpeg() -> &'static [u8] {
    static JPEG: OnceLock<Vec<u8>> = OnceLock::new();
    JPEG.get_or_init(|| {
        let (w, h) = (4000, 3000);
        let pixels = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, ((x + y) % 256) as u8])
        });
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
            .encode_image(&pixels)
            .expect("encoding the test JPEG");
        jpeg
    })
}

/// A server of its own (the shared one keeps the default limits for the other tests).
fn limited_server(limits: Limits) -> HttpServer {
    let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    HttpServer::start_with(engine(), &dist("classify-http.wasm"), Some(cache), limits)
        .unwrap_or_else(|e| panic!("{e:#}"))
}

/// An `Err` here is a connection the server dropped instead of answering.
fn send(server: &HttpServer, method: &str, path: &str, upload: Upload<'_>) -> HttpResponse {
    http_request(server.addr(), method, path, upload).unwrap_or_else(|e| panic!("{method} {path}: {e:#}"))
}

/// The host's answer for an instance it stopped: a 500 in plain text that names the limit.
fn assert_stopped(r: &HttpResponse, limit: &str) {
    let body = String::from_utf8_lossy(&r.body);
    assert_eq!(r.status, 500, "{body}");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"), "{r:?}");
    assert!(body.contains(limit), "{body:?} does not name the {limit}");
}

#[test]
fn a_request_over_the_memory_cap_is_a_500_and_the_server_goes_on() {
    // Under the default limits the photo is classified: only the cap below makes it fail.
    let big = progressive_444();
    let r = request(addr(), "POST", "/classify", Upload::Sized(big));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    let server = limited_server(Limits { memory_bytes: SMALL_CAP, ..Limits::SERVE });
    let root = send(&server, "GET", "/", Upload::None);
    assert_eq!(root.status, 200, "{root:?}");
    assert_stopped(&send(&server, "POST", "/classify", Upload::Sized(big)), "memory limit");
    let root = send(&server, "GET", "/", Upload::None);
    assert_eq!(root.status, 200, "after the 500: {root:?}");
    let photo = std::fs::read(host_tests::paths::images_dir().join("grace_hopper.bmp")).expect("a golden photo");
    let r = send(&server, "POST", "/classify?top=1", Upload::Sized(&photo));
    assert_eq!(r.status, 200, "a photo that fits, after the 500: {}", String::from_utf8_lossy(&r.body));
}

#[test]
fn a_request_past_its_deadline_is_a_500_and_the_server_goes_on() {
    // At most two epoch ticks (20 ms): decoding and classifying 12 MP takes ~0.25 s.
    let server = limited_server(Limits { deadline: Some(Duration::from_millis(1)), ..Limits::SERVE });
    assert_stopped(&send(&server, "POST", "/classify", Upload::Sized(twelve_megapixel_jpeg())), "deadline");
    server.set_limits(Limits::SERVE);
    let root = send(&server, "GET", "/", Upload::None);
    assert_eq!(root.status, 200, "after the 500: {root:?}");
}
