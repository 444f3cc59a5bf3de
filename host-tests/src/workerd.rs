//! `dist/worker/` (the Cloudflare Worker `cargo xtask worker` writes) served by workerd, the open-source
//! Workers runtime, on a free loopback port, as `cargo xtask worker --serve` serves it. The binary is
//! the one npm installs in `apps/worker/node_modules` (pinned by its lock file).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

use crate::paths::workspace_root;

pub fn worker_dir() -> PathBuf {
    workspace_root().join("dist").join("worker")
}

pub fn workerd_binary() -> PathBuf {
    workspace_root().join("apps/worker/node_modules/@cloudflare/workerd-linux-64/bin/workerd")
}

/// A running workerd; killed when dropped.
pub struct Workerd {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    spawned: Instant,
}

impl Workerd {
    /// Starts workerd on `dist/worker/config.capnp` and waits until it accepts connections. Fails
    /// (never skips) when the files or the binary are missing or workerd exits.
    pub fn start() -> Result<Workerd> {
        Workerd::start_in(&worker_dir())
    }

    /// The same for the Worker `cargo xtask worker` wrote to `dir` (the benchmark builds others).
    pub fn start_in(dir: &Path) -> Result<Workerd> {
        let binary = workerd_binary();
        for path in [dir.join("config.capnp"), binary.clone()] {
            ensure!(
                path.is_file(),
                "{} does not exist: run `cargo xtask worker` (which `cargo xtask test` runs first)",
                path.display()
            );
        }
        // A port the OS just handed out and we released: workerd binds it a moment later.
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log = std::env::temp_dir().join(format!("edge-classify-workerd-{port}.log"));
        let file = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let spawned = Instant::now();
        let child = Command::new(&binary)
            .current_dir(dir)
            .args(["serve", "config.capnp", "--socket-addr"])
            .arg(format!("http={addr}"))
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut server = Workerd { child, addr, log, spawned };
        while TcpStream::connect(addr).is_err() {
            if let Some(status) = server.child.try_wait()? {
                bail!("workerd exited ({status}) before listening on {addr}: {}", server.log_text());
            }
            if spawned.elapsed() > Duration::from_secs(60) {
                bail!("workerd did not listen on {addr} within 60 s: {}", server.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// When the process was spawned: cold start is measured from here.
    pub fn spawned(&self) -> Instant {
        self.spawned
    }

    /// What workerd printed so far (its errors, uncaught exceptions in the Worker).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Workerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}
