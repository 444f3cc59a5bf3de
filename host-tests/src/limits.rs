//! What one store of the suite's hosts may use, as a production host would cap it: linear memory,
//! what instantiation creates, and wall-clock time by epoch interruption (one ticker thread for the
//! process). Shared by the classifier runtime (`wasmtime_rt`) and the app hosts (`apps`).

use std::sync::{Mutex, Once, PoisonError};
use std::time::Duration;

use wasmtime::{Engine, EngineWeak, StoreLimits, StoreLimitsBuilder, Trap};

/// Linear memory a single model instance may grow to. MobileNetV2 at 224x224 in fp32 needs
/// ~14 MB of weights plus a few MB of activations; this leaves ample room while making a runaway
/// allocation fail inside the guest instead of exhausting the host.
pub const MEMORY_LIMIT_BYTES: usize = 1 << 30;

/// What one store may use. Memory is per linear memory (each core module of a component has its
/// own); the deadline is wall-clock time from when the host arms it, enforced by epoch
/// interruption (see [`tick_epochs`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest size any one linear memory may grow to. Growth past it fails (`memory.grow`
    /// returns -1, as `wasmtime run -W max-memory-size=N` does); a Rust guest then aborts.
    pub memory_bytes: usize,
    /// `None`: no deadline.
    pub deadline: Option<Duration>,
}

impl Limits {
    /// The classifier's instances in the conformance suite, the runtime matrix and the bench: no
    /// deadline. A deadline needs epoch interruption, whose checks in every loop of the kernels
    /// cost 20-30% of an inference on Cranelift (int8 31.6 -> 38.3 ms, fp32 35.0 -> 45.8 ms for
    /// MobileNetV2 with SIMD here), which would skew the bench; and Pulley, an interpreter, takes
    /// ~15 s for one fp32 inference, so any deadline would have to be minutes anyway.
    pub const CLASSIFIER: Limits = Limits { memory_bytes: MEMORY_LIMIT_BYTES, deadline: None };
}

/// Caps on what instantiation may create, for every store of the suite (wasmtime's defaults are
/// 10 000 core instances, tables and memories, and unbounded table elements). Measured:
/// `classifier.wasm` creates 3 core instances, 2 tables, 1 memory; a composed app (the app, the
/// classifier, the WASI adapter and its shims) 7 instances, 4 tables, 2 memories. About 4x that
/// leaves room for another composition while refusing a component that instantiates without bound.
const MAX_INSTANCES: usize = 32;
const MAX_TABLES: usize = 16;
const MAX_MEMORIES: usize = 8;
/// Largest table, in elements: tables hold the function references of indirect calls, which our
/// guests never grow.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Period of the epoch ticker: deadlines are counted in its ticks, so one fires at most this
/// late. Each tick costs an atomic increment per live engine.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Advances `engine`'s epoch every [`EPOCH_TICK`], for as long as the engine lives, from one
/// background thread shared by every engine. Calling it again for the same engine changes nothing
/// (two tickers would make its deadlines come twice as fast).
pub fn tick_epochs(engine: &Engine) {
    static ENGINES: Mutex<Vec<EngineWeak>> = Mutex::new(Vec::new());
    static TICKER: Once = Once::new();
    {
        let mut engines = ENGINES.lock().unwrap_or_else(PoisonError::into_inner);
        if !engines.iter().filter_map(EngineWeak::upgrade).any(|e| Engine::same(&e, engine)) {
            engines.push(engine.weak());
        }
    }
    TICKER.call_once(|| {
        std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(|| loop {
                std::thread::sleep(EPOCH_TICK);
                ENGINES.lock().unwrap_or_else(PoisonError::into_inner).retain(|weak| match weak.upgrade() {
                    Some(engine) => {
                        engine.increment_epoch();
                        true
                    }
                    None => false,
                });
            })
            .expect("spawning the epoch ticker thread");
    });
}

/// Epoch ticks that take at least `deadline`: the store may be armed just before a tick, hence one
/// more than the deadline is long. `None` is a deadline never reached (with epoch interruption on,
/// a store must have one: its initial deadline is 0, already past).
pub(crate) fn deadline_ticks(deadline: Option<Duration>) -> u64 {
    match deadline {
        // Far beyond any run, without overflowing `current epoch + ticks` inside wasmtime.
        None => u64::MAX / 4,
        Some(d) => {
            let ticks = d.as_nanos().div_ceil(EPOCH_TICK.as_nanos());
            u64::try_from(ticks).map_or(u64::MAX / 4, |t| t.min(u64::MAX / 4)) + 1
        }
    }
}

/// A host limit that ended a guest call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitHit {
    /// A linear memory was refused growth to `asked` bytes (the guest then trapped).
    Memory { asked: usize, limit: usize },
    /// The epoch deadline passed.
    Deadline(Duration),
}

impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            LimitHit::Memory { asked, limit } => write!(
                f,
                "memory limit exceeded: a linear memory asked to grow to {:.1} MiB, over the {:.1} MiB cap",
                asked as f64 / (1 << 20) as f64,
                limit as f64 / (1 << 20) as f64
            ),
            LimitHit::Deadline(d) => write!(f, "deadline exceeded: the instance ran past its {d:?} deadline"),
        }
    }
}

impl std::error::Error for LimitHit {}

impl LimitHit {
    /// Which limit, if any, made `error` (from a call into the store `limits` belongs to) happen.
    fn of(error: &wasmtime::Error, limits: &PeakLimits, deadline: Option<Duration>) -> Option<LimitHit> {
        if let (Some(Trap::Interrupt), Some(d)) = (error.downcast_ref::<Trap>(), deadline) {
            return Some(LimitHit::Deadline(d));
        }
        limits.refused.map(|asked| LimitHit::Memory { asked, limit: limits.memory_bytes })
    }

    /// `error`, from a call into the store `limits` belongs to, with the limit it ran into as its
    /// context, so a host can `downcast_ref::<LimitHit>()` to answer accordingly.
    pub(crate) fn explain(error: wasmtime::Error, limits: &PeakLimits, deadline: Option<Duration>) -> anyhow::Error {
        let hit = LimitHit::of(&error, limits, deadline);
        let error = anyhow::Error::from(error);
        match hit {
            Some(hit) => error.context(hit),
            None => error,
        }
    }
}

/// [`StoreLimits`] that also remember the largest linear memory the instance asked for (the
/// benchmark's peak-memory column; linear memory never shrinks) and the first growth they refused,
/// so a host can tell a memory limit from a guest bug when the guest then traps.
pub(crate) struct PeakLimits {
    limits: StoreLimits,
    memory_bytes: usize,
    pub(crate) peak: usize,
    refused: Option<usize>,
}

impl PeakLimits {
    pub(crate) fn new(memory_bytes: usize) -> Self {
        let limits = StoreLimitsBuilder::new()
            .memory_size(memory_bytes)
            .instances(MAX_INSTANCES)
            .tables(MAX_TABLES)
            .memories(MAX_MEMORIES)
            .table_elements(MAX_TABLE_ELEMENTS)
            .build();
        PeakLimits { limits, memory_bytes, peak: 0, refused: None }
    }
}

impl wasmtime::ResourceLimiter for PeakLimits {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if allowed {
            self.peak = self.peak.max(desired);
        } else if self.refused.is_none() {
            self.refused = Some(desired);
        }
        Ok(allowed)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}
