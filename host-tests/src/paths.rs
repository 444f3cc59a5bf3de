//! Where the suite finds the component, the golden files and the shared models and photos.
//!
//! | what | default | override |
//! |---|---|---|
//! | component | `<workspace>/dist/classifier.wasm` | `EDGE_CLASSIFY_COMPONENT` |
//! | golden | `<workspace>/golden` | — |
//! | shared folder | `<workspace>/../shared` | `EDGE_CLASSIFY_SHARED` (same as `golden/generate.sh`) |
//! | models | `<shared>/models` | `EDGE_CLASSIFY_MODELS` |
//! | photos | `<shared>/images` | — |

use std::path::{Path, PathBuf};

use anyhow::{ensure, Result};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host-tests lives inside the workspace").to_owned()
}

fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from)
}

pub fn golden_dir() -> PathBuf {
    workspace_root().join("golden")
}

pub fn shared_dir() -> PathBuf {
    env_path("EDGE_CLASSIFY_SHARED").unwrap_or_else(|| workspace_root().join("..").join("shared"))
}

pub fn models_dir() -> PathBuf {
    env_path("EDGE_CLASSIFY_MODELS").unwrap_or_else(|| shared_dir().join("models"))
}

pub fn images_dir() -> PathBuf {
    shared_dir().join("images")
}

/// `dist/classifier.wasm`, which must exist: the suite never builds it and never skips without it.
pub fn component_path() -> Result<PathBuf> {
    let path =
        env_path("EDGE_CLASSIFY_COMPONENT").unwrap_or_else(|| workspace_root().join("dist").join("classifier.wasm"));
    ensure!(
        path.is_file(),
        "{} does not exist: run `cargo xtask dist` to build it (or `cargo xtask test`, which builds \
         it and then runs the tests)",
        path.display()
    );
    Ok(path)
}
