//! `cargo xtask fetch-models`: the model files and sample photo the build needs, found locally
//! when possible, downloaded otherwise, and always checked against `models.json`'s sha256.
//!
//! Search order per file (models / images):
//! 1. `$EDGE_CLASSIFY_MODELS` / `$EDGE_CLASSIFY_SHARED/images`,
//! 2. `../shared/models` / `../shared/images` beside the checkout,
//! 3. `<target dir>/fetched/`, where earlier downloads went,
//! 4. the manifest's `url`, downloaded with `curl` into `<target dir>/fetched/`.
//!
//! A file found with the wrong sha256 is an error, not a reason to look further: it means the
//! local copy is not the model the manifest describes, and silently using another would hide it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};
use sha2::{Digest, Sha256};

use crate::Layout;

pub const MANIFEST: &str = "models.json";

struct Entry {
    file: String,
    kind: String,
    sha256: String,
    url: String,
}

/// Where each manifest file was found (or downloaded to), by file name.
pub struct Fetched(BTreeMap<String, PathBuf>);

impl Fetched {
    pub fn path(&self, file: &str) -> Result<&Path> {
        self.0.get(file).map(PathBuf::as_path).with_context(|| format!("{file} is not in {MANIFEST}"))
    }
}

fn read_manifest(root: &Path) -> Result<Vec<Entry>> {
    let path = root.join(MANIFEST);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let files = json["files"].as_array().with_context(|| format!("{} has no \"files\" list", path.display()))?;
    files
        .iter()
        .map(|f| {
            let field = |k: &str| -> Result<String> {
                f[k].as_str().map(str::to_owned).with_context(|| format!("a {MANIFEST} entry has no string {k:?}"))
            };
            Ok(Entry { file: field("file")?, kind: field("kind")?, sha256: field("sha256")?, url: field("url")? })
        })
        .collect()
}

fn env_dir(var: &str) -> Option<PathBuf> {
    std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from)
}

fn sha256_of(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect())
}

/// `$EDGE_CLASSIFY_SHARED`, else `../shared` beside the checkout.
pub fn shared_dir(layout: &Layout) -> PathBuf {
    env_dir("EDGE_CLASSIFY_SHARED").unwrap_or_else(|| layout.workspace_root.join("..").join("shared"))
}

/// Where models are looked for before downloading, in order: `$EDGE_CLASSIFY_MODELS`, the shared
/// folder's `models/`, `../shared/models` beside the checkout.
pub fn model_dirs(layout: &Layout) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = env_dir("EDGE_CLASSIFY_MODELS").into_iter().collect();
    dirs.push(shared_dir(layout).join("models"));
    dirs.push(layout.workspace_root.join("..").join("shared").join("models"));
    dirs.dedup();
    dirs
}

fn candidates(layout: &Layout, entry: &Entry) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if entry.kind == "image" {
        if let Some(s) = env_dir("EDGE_CLASSIFY_SHARED") {
            dirs.push(s.join("images"));
        }
        dirs.push(layout.workspace_root.join("..").join("shared").join("images"));
    } else {
        dirs.extend(model_dirs(layout));
    }
    dirs.push(cache_dir(layout));
    dirs.dedup();
    dirs.into_iter().map(|d| d.join(&entry.file)).collect()
}

fn cache_dir(layout: &Layout) -> PathBuf {
    layout.target_dir.join("fetched")
}

fn checked(path: &Path, entry: &Entry) -> Result<()> {
    let got = sha256_of(path)?;
    ensure!(
        got == entry.sha256,
        "{} has sha256 {got}, but {MANIFEST} says {} for {}: it is not the file the build expects \
         (remove it, or point EDGE_CLASSIFY_MODELS / EDGE_CLASSIFY_SHARED elsewhere)",
        path.display(),
        entry.sha256,
        entry.file
    );
    Ok(())
}

fn download(layout: &Layout, entry: &Entry) -> Result<PathBuf> {
    let dir = cache_dir(layout);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let out = dir.join(&entry.file);
    // Download beside the destination and rename after the check, so an interrupted or wrong
    // download never sits where the next run would trust it.
    let partial = dir.join(format!("{}.partial", entry.file));
    eprintln!("xtask: downloading {} from {}", entry.file, entry.url);
    let status = Command::new("curl")
        .args(["--fail", "--location", "--silent", "--show-error", "--retry", "2", "--output"])
        .arg(&partial)
        .arg(&entry.url)
        .status()
        .context("running curl (is it installed?) to download the models")?;
    if !status.success() {
        let _ = std::fs::remove_file(&partial);
        bail!("downloading {} from {} failed ({status})", entry.file, entry.url);
    }
    if let Err(e) = checked(&partial, entry) {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    std::fs::rename(&partial, &out).with_context(|| format!("moving the download to {}", out.display()))?;
    Ok(out)
}

/// Finds or downloads every file of the manifest; prints where each came from.
pub fn fetch(layout: &Layout) -> Result<Fetched> {
    let mut found = BTreeMap::new();
    for entry in read_manifest(&layout.workspace_root)? {
        let path = match candidates(layout, &entry).into_iter().find(|p| p.is_file()) {
            Some(p) => {
                checked(&p, &entry)?;
                p
            }
            None => download(layout, &entry)?,
        };
        found.insert(entry.file.clone(), path);
    }
    Ok(Fetched(found))
}

pub fn print(fetched: &Fetched, root: &Path) {
    for (file, path) in &fetched.0 {
        println!("  {file}: {}", crate::display_relative(path, root));
    }
}
