//! Hosting the apps as the wasmtime CLI does, through the same libraries it is built on:
//!
//! - [`WasiCommand`]: `wasmtime run --dir HOST::GUEST app.wasm ARGS...` (wasmtime-wasi,
//!   `wasi:cli/run`): arguments, preopened directories, stdout/stderr, exit code.
//! - [`HttpServer`]: `wasmtime serve app.wasm` (wasmtime-wasi-http, `wasi:http/proxy`): a real
//!   HTTP/1.1 listener on 127.0.0.1, one fresh instance per request, and [`http_request`], a
//!   plain TCP client, so requests cross a real socket.
//!
//! Both give each instance [`Limits`], as a production host would (`wasmtime run|serve
//! -W max-memory-size=N -W timeout=T`): a linear memory cap and an epoch deadline.
//!
//! Used by the `apps` test binary, the `run-wasi` binary behind `cargo xtask demo`, and the bench.

use std::convert::Infallible;
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::limits::{deadline_ticks, tick_epochs, PeakLimits, EPOCH_TICK};
pub use crate::limits::{LimitHit, Limits};
use crate::wasmtime_rt::{Compiler, WasmtimeRuntime};

/// Largest output the tests keep from a guest's stdout or stderr.
const CAPTURE_BYTES: usize = 1 << 20;

/// Cap of each linear memory of an app instance: the per-request target. The classifier's memory
/// starts at 11.6 MiB (the embedded model bundle) and is the one that grows; measured peaks
/// (2026-12-03, bisecting this cap in `HttpServer`): a golden photo 18.7 MiB (42.9 MiB at
/// `precision=fp32`), a 12 MP JPEG 19.3 (42.9), a 12 MP PNG 18.0 (42.9), both decoded row by row,
/// and the largest progressive JPEG accepted (2048x1536 4:4:4, held whole) 34.5 (48.9). The app's
/// own memory stays under 5 MiB (the 4 MiB upload). 64 MiB serves every request the apps accept,
/// fp32 included, with 15 MiB to spare.
pub const APP_MEMORY_BYTES: usize = 64 << 20;

impl Limits {
    /// One `wasmtime serve` request, instantiation included. The slowest legitimate one measured,
    /// a 12 MP JPEG at fp32, takes 0.3 s here (an inference alone 30-120 ms): 5 s leaves room for
    /// a loaded machine and still ends a runaway request within seconds.
    pub const SERVE: Limits = Limits { memory_bytes: APP_MEMORY_BYTES, deadline: Some(Duration::from_secs(5)) };
    /// One `wasmtime run` of a CLI app. The deadline is for the whole run, which classifies every
    /// image it is given: all the golden photos take under 2 s in one run, so 2 minutes lets a
    /// batch of hundreds of photos finish and still stops a runaway run.
    pub const RUN: Limits = Limits { memory_bytes: APP_MEMORY_BYTES, deadline: Some(Duration::from_secs(120)) };
}

/// An engine configured like the conformance suite's Cranelift runtime, plus epoch interruption
/// for the hosts' deadlines, its epoch ticking. That is what `-W timeout` costs in `wasmtime serve`
/// as well: the epoch checks in the kernels' loops add 20-30% to an inference (see
/// [`Limits::CLASSIFIER`]), paid here as a production host would pay it.
pub fn engine() -> Result<Engine> {
    let mut config = WasmtimeRuntime::config(Compiler::Cranelift)?;
    config.epoch_interruption(true);
    let engine = Engine::new(&config).map_err(anyhow::Error::from)?;
    tick_epochs(&engine);
    Ok(engine)
}

/// Compiles `path`, reusing a compiled artifact from `cache_dir` when this exact component was
/// compiled before by an engine of the same configuration (the apps embed the whole classifier,
/// so each compile takes seconds).
pub fn compile(engine: &Engine, path: &Path, cache_dir: Option<&Path>) -> Result<Component> {
    let bytes = std::fs::read(path).with_context(|| {
        format!("reading {} (build it with `cargo xtask dist`, which `cargo xtask test` runs first)", path.display())
    })?;
    let Some(dir) = cache_dir else {
        return Component::new(engine, &bytes).map_err(anyhow::Error::from);
    };
    let mut engine_hash = std::hash::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut engine_hash);
    let digest: String = Sha256::digest(&bytes).iter().take(16).map(|b| format!("{b:02x}")).collect();
    let cached = dir.join(format!("app-{digest}-{:016x}.cwasm", engine_hash.finish()));
    if cached.is_file() {
        // SAFETY: written by `serialize` below for these bytes and this engine configuration
        // (both in the name), in a directory only this crate writes; wasmtime still checks the
        // header and we recompile if it refuses.
        if let Ok(c) = unsafe { Component::deserialize_file(engine, &cached) } {
            return Ok(c);
        }
    }
    let component = Component::new(engine, &bytes).map_err(anyhow::Error::from)?;
    if let Ok(serialized) = component.serialize() {
        let tmp = cached.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::create_dir_all(dir).is_ok() && std::fs::write(&tmp, serialized).is_ok() {
            let _ = std::fs::rename(&tmp, &cached);
        }
    }
    Ok(component)
}

struct CliState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: PeakLimits,
}

impl WasiView for CliState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// What a command run produced.
#[derive(Debug)]
pub struct Output {
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A `wasi:cli/run` component, compiled once, run any number of times, each run in a fresh
/// instance with [`Limits::RUN`] unless [`WasiCommand::with_limits`] says otherwise.
///
/// The engine must have epoch interruption on, as [`engine`]'s has.
pub struct WasiCommand {
    engine: Engine,
    pre: wasmtime_wasi::p2::bindings::sync::CommandPre<CliState>,
    program: String,
    limits: Limits,
}

impl WasiCommand {
    pub fn new(engine: &Engine, path: &Path, cache_dir: Option<&Path>) -> Result<Self> {
        tick_epochs(engine);
        let component = compile(engine, path, cache_dir).with_context(|| format!("compiling {}", path.display()))?;
        let mut linker = Linker::<CliState>::new(engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(anyhow::Error::from)?;
        let pre = linker.instantiate_pre(&component).map_err(anyhow::Error::from)?;
        let pre = wasmtime_wasi::p2::bindings::sync::CommandPre::new(pre)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("{} is not a wasi:cli command", path.display()))?;
        // argv[0] is the file name, as `wasmtime run` passes it.
        let program = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(WasiCommand { engine: engine.clone(), pre, program, limits: Limits::RUN })
    }

    /// The same compiled command, its runs under other limits.
    pub fn with_limits(&self, limits: Limits) -> WasiCommand {
        WasiCommand { engine: self.engine.clone(), pre: self.pre.clone(), program: self.program.clone(), limits }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn run_with(&self, dirs: &[(PathBuf, String)], args: &[String], stdio: Stdio) -> Result<i32> {
        let mut builder = WasiCtxBuilder::new();
        let mut argv = vec![self.program.clone()];
        argv.extend(args.iter().cloned());
        builder.args(&argv);
        for (host, guest) in dirs {
            // `wasmtime run --dir` grants read and write.
            builder
                .preopened_dir(host, guest, FsPerms::ReadWrite)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("preopening {} as {guest}", host.display()))?;
        }
        match stdio {
            Stdio::Inherit => {
                builder.inherit_stdio();
            }
            Stdio::Capture { stdout, stderr } => {
                builder.stdout(stdout).stderr(stderr);
            }
        }
        let state = CliState {
            wasi: builder.build(),
            table: ResourceTable::new(),
            limits: PeakLimits::new(self.limits.memory_bytes),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        // `wasmtime run -W timeout=T`: one deadline for the whole run, instantiation included.
        store.set_epoch_deadline(deadline_ticks(self.limits.deadline));
        let deadline = self.limits.deadline;
        let command = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| LimitHit::explain(e, &store.data().limits, deadline).context("instantiating the command"))?;
        // Like `wasmtime run`: `run` returning ok is 0, err is 1, and `exit(n)` ends the
        // instance with an I32Exit error carrying n. Any other error is a trap: reported, not
        // turned into an exit code, so a test can never mistake a crash for a clean failure.
        // A trap after a limit was hit carries a `LimitHit`.
        match command.wasi_cli_run().call_run(&mut store) {
            Ok(Ok(())) => Ok(0),
            Ok(Err(())) => Ok(1),
            Err(e) => match e.downcast_ref::<I32Exit>() {
                Some(exit) => Ok(exit.0),
                None => Err(LimitHit::explain(e, &store.data().limits, deadline).context("the command trapped")),
            },
        }
    }

    /// Runs with stdout and stderr captured. A trap is an error that carries what the guest
    /// wrote to stderr (a Rust guest says there which allocation failed before it aborts).
    pub fn run(&self, dirs: &[(PathBuf, String)], args: &[String]) -> Result<Output> {
        let (stdout, stderr) = (MemoryOutputPipe::new(CAPTURE_BYTES), MemoryOutputPipe::new(CAPTURE_BYTES));
        let text = |p: &MemoryOutputPipe| String::from_utf8_lossy(&p.contents()).into_owned();
        let exit_code = self
            .run_with(dirs, args, Stdio::Capture { stdout: stdout.clone(), stderr: stderr.clone() })
            .map_err(|e| match text(&stderr).trim_end() {
                "" => e,
                said => e.context(format!("the guest's stderr: {said}")),
            })?;
        Ok(Output { exit_code, stdout: text(&stdout), stderr: text(&stderr) })
    }

    /// Runs with this process's stdio, as a terminal user sees it.
    pub fn run_inherited(&self, dirs: &[(PathBuf, String)], args: &[String]) -> Result<i32> {
        self.run_with(dirs, args, Stdio::Inherit)
    }
}

enum Stdio {
    Inherit,
    Capture { stdout: MemoryOutputPipe, stderr: MemoryOutputPipe },
}

struct HttpState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    limits: PeakLimits,
}

impl WasiView for HttpState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HttpState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: Default::default() }
    }
}

/// A `wasi:http/proxy` component served on 127.0.0.1 (an ephemeral port) from a background
/// thread, one instance per request as `wasmtime serve` does. Dropping it stops the server.
///
/// Each request's instance gets [`Limits`] ([`Limits::SERVE`] unless started with others). One
/// that runs into them, or traps for any other reason before it answered, is answered `500`
/// with a short plain-text body, as `wasmtime serve` does, and the server goes on serving.
///
/// The engine must have epoch interruption on, as [`engine`]'s has.
pub struct HttpServer {
    addr: SocketAddr,
    limits: Arc<Mutex<Limits>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl HttpServer {
    pub fn start(engine: &Engine, path: &Path, cache_dir: Option<&Path>) -> Result<Self> {
        Self::start_with(engine, path, cache_dir, Limits::SERVE)
    }

    /// [`HttpServer::start`] with other limits for its requests' instances.
    pub fn start_with(engine: &Engine, path: &Path, cache_dir: Option<&Path>, limits: Limits) -> Result<Self> {
        tick_epochs(engine);
        let component = compile(engine, path, cache_dir).with_context(|| format!("compiling {}", path.display()))?;
        let mut linker = Linker::<HttpState>::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(anyhow::Error::from)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(anyhow::Error::from)?;
        let pre = linker.instantiate_pre(&component).map_err(anyhow::Error::from)?;
        let pre = ProxyPre::new(pre)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("{} is not a wasi:http/proxy component", path.display()))?;
        let pre = Arc::new(pre);

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("starting the tokio runtime")?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .context("binding 127.0.0.1 for the HTTP server")?;
        let addr = listener.local_addr()?;
        let limits = Arc::new(Mutex::new(limits));
        let shared_limits = limits.clone();
        runtime.spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { continue };
                let pre = pre.clone();
                let limits = shared_limits.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let pre = pre.clone();
                        let limits = *limits.lock().unwrap_or_else(PoisonError::into_inner);
                        async move { Ok::<_, Infallible>(handle(&pre, limits, req).await) }
                    });
                    // A connection error (the client hung up) ends only that connection.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(wasmtime_wasi_http::io::TokioIo::new(client), service)
                        .await;
                });
            }
        });
        Ok(HttpServer { addr, limits, runtime: Some(runtime) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn limits(&self) -> Limits {
        *self.limits.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Limits for the requests that arrive from now on (one in progress keeps its own).
    pub fn set_limits(&self, limits: Limits) {
        *self.limits.lock().unwrap_or_else(PoisonError::into_inner) = limits;
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// One request in a fresh instance. Whatever goes wrong before the guest answered becomes a 500
/// here, as in `wasmtime serve`: an `Err` from a hyper service would drop the connection, and the
/// client would see no answer at all.
async fn handle(
    pre: &ProxyPre<HttpState>,
    limits: Limits,
    req: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<HyperOutgoingBody> {
    match run_instance(pre, limits, req).await {
        Ok(response) => response,
        Err(e) => {
            // The server's log gets the whole story (trap, backtrace); the client a short line.
            eprintln!("http host: answered 500: {e:#}");
            let text = match e.downcast_ref::<LimitHit>() {
                Some(LimitHit::Memory { .. }) => {
                    "500 internal server error: the request's instance exceeded its memory limit\n"
                }
                Some(LimitHit::Deadline(_)) => {
                    "500 internal server error: the request's instance exceeded its deadline\n"
                }
                None => "500 internal server error: the component failed before it answered\n",
            };
            internal_error(text)
        }
    }
}

async fn run_instance(
    pre: &ProxyPre<HttpState>,
    limits: Limits,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<HyperOutgoingBody>> {
    let state = HttpState {
        // `wasmtime serve -S cli`: the guest's stdout/stderr go to the server's.
        wasi: WasiCtx::builder().inherit_stdout().inherit_stderr().build(),
        http: WasiHttpCtx::new(),
        table: ResourceTable::new(),
        limits: PeakLimits::new(limits.memory_bytes),
    };
    let mut store = Store::new(pre.engine(), state);
    store.limiter(|state| &mut state.limits);
    // `wasmtime serve -W timeout=T`: the deadline covers the whole request, instantiation
    // included; an epoch check in guest code that runs past it traps.
    store.set_epoch_deadline(deadline_ticks(limits.deadline));
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let req = store.data_mut().http().new_incoming_request(Scheme::Http, req).map_err(anyhow::Error::from)?;
    let out = store.data_mut().http().new_response_outparam(sender).map_err(anyhow::Error::from)?;
    let pre = pre.clone();
    let task = tokio::spawn(async move {
        let result = async {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out).await
        }
        .await;
        result.map_err(|e| LimitHit::explain(e, &store.data().limits, limits.deadline))
    });
    // A guest waiting on I/O (a slow upload) runs no code, so no epoch check can stop it: the
    // deadline is enforced here too, one tick after the epoch one, which fires first when the
    // guest is computing.
    let answer = match limits.deadline {
        Some(d) => match tokio::time::timeout(d + EPOCH_TICK, receiver).await {
            Ok(answer) => answer,
            Err(_) => {
                task.abort();
                return Err(anyhow::Error::new(LimitHit::Deadline(d)).context("the component had not answered"));
            }
        },
        None => receiver.await,
    };
    match answer {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(code)) => bail!("the component answered with error code {code:?}"),
        // The outparam was dropped unset: the task says why (a trap, most likely).
        Err(_) => match task.await {
            Ok(Ok(())) => bail!("the component never set a response"),
            Ok(Err(e)) => Err(e.context("the instance failed before it answered")),
            Err(e) => Err(anyhow::Error::from(e)),
        },
    }
}

fn internal_error(text: &'static str) -> hyper::Response<HyperOutgoingBody> {
    let body = OneChunk(Some(hyper::body::Bytes::from_static(text.as_bytes())));
    let mut response = hyper::Response::new(HyperOutgoingBody::new(body));
    *response.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
    let plain = hyper::header::HeaderValue::from_static("text/plain; charset=utf-8");
    response.headers_mut().insert(hyper::header::CONTENT_TYPE, plain);
    response
}

/// A body of one chunk (this crate depends on hyper, not on http-body-util's `Full`).
struct OneChunk(Option<hyper::body::Bytes>);

impl hyper::body::Body for OneChunk {
    type Data = hyper::body::Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Poll::Ready(self.0.take().map(|b| Ok(hyper::body::Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.0.as_ref().map_or(0, |b| b.len() as u64))
    }
}

/// An HTTP answer as a client sees it.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!("status {} body is not JSON: {:?}", self.status, String::from_utf8_lossy(&self.body))
        })
    }
}

/// How a request body is sent.
pub enum Upload<'a> {
    None,
    /// With `Content-Length`.
    Sized(&'a [u8]),
    /// With `Content-Length` and `Expect: 100-continue`: the body goes out only if the server asks
    /// for it, as curl does for large uploads.
    SizedExpectContinue(&'a [u8]),
    /// `Transfer-Encoding: chunked`, so the server cannot know the size in advance.
    Chunked(&'a [u8]),
}

/// One HTTP/1.1 request over a fresh TCP connection (`Connection: close`).
pub fn http_request(addr: SocketAddr, method: &str, path: &str, upload: Upload<'_>) -> Result<HttpResponse> {
    let mut stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    match &upload {
        Upload::None => {}
        Upload::Sized(b) => head += &format!("Content-Length: {}\r\n", b.len()),
        Upload::SizedExpectContinue(b) => head += &format!("Content-Length: {}\r\nExpect: 100-continue\r\n", b.len()),
        Upload::Chunked(_) => head += "Transfer-Encoding: chunked\r\n",
    }
    head += "\r\n";
    stream.write_all(head.as_bytes())?;
    let sent = match upload {
        Upload::None => Ok(()),
        Upload::Sized(b) => stream.write_all(b),
        Upload::Chunked(b) => (|| {
            for chunk in b.chunks(64 << 10) {
                stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())?;
                stream.write_all(chunk)?;
                stream.write_all(b"\r\n")?;
            }
            stream.write_all(b"0\r\n\r\n")
        })(),
        Upload::SizedExpectContinue(b) => {
            let first = read_response(&mut stream)?;
            if first.status != 100 {
                return Ok(first);
            }
            stream.write_all(b)
        }
    };
    // A server may answer before it read the whole upload (an error, a dead instance) and close
    // the connection, which fails the rest of the upload: its answer is still there to read, as
    // curl reads it.
    match (sent, read_response(&mut stream)) {
        (_, Ok(response)) => Ok(response),
        (Err(sending), Err(reading)) => Err(reading.context(format!("sending the body failed too: {sending}"))),
        (Ok(()), Err(reading)) => Err(reading),
    }
}

/// Reads one response: status line, headers, then a body delimited by `Content-Length`,
/// chunked encoding, or the end of the connection.
fn read_response(stream: &mut TcpStream) -> Result<HttpResponse> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            bail!("the connection closed inside the response head ({:?})", String::from_utf8_lossy(&head));
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).context("response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned())).collect();
    let response = HttpResponse { status, headers, body: Vec::new() };
    if status == 100 {
        return Ok(response);
    }
    let mut body = Vec::new();
    if let Some(len) = response.header("content-length") {
        let len: usize = len.parse().context("bad Content-Length")?;
        body.resize(len, 0);
        stream.read_exact(&mut body)?;
    } else if response.header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        body = dechunk(&raw)?;
    } else {
        stream.read_to_end(&mut body)?;
    }
    Ok(HttpResponse { body, ..response })
}

fn dechunk(mut raw: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n").context("chunk size line not terminated")?;
        let size_text = std::str::from_utf8(&raw[..line_end])?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .with_context(|| format!("bad chunk size {size_text:?}"))?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(raw.get(..size).context("truncated chunk")?);
        raw = raw.get(size + 2..).context("truncated chunk")?;
    }
}
