//! Composition: each app component imports `edge:classify/classifier`; plugging
//! `dist/classifier.wasm`'s exports into those imports (what `wac plug` does, here through the
//! `wac-graph` library) gives a self-contained component. That the build succeeds is itself the
//! proof that the WIT interface composes into ordinary WASI applications.

use anyhow::{ensure, Context, Result};
use wac_graph::types::Package;
use wac_graph::{CompositionGraph, EncodeOptions};

/// `socket` with every `edge:classify` import satisfied by `classifier`. The result exports what
/// `socket` exports and imports only what neither component provides (WASI, for the apps).
pub fn plug(classifier: &[u8], socket: &[u8], socket_name: &str) -> Result<Vec<u8>> {
    let mut graph = CompositionGraph::new();
    let plug = Package::from_bytes("edge:classifier", None, classifier.to_vec(), graph.types_mut())
        .context("reading the classifier component")?;
    let plug = graph.register_package(plug)?;
    let socket_package = Package::from_bytes(&format!("edge:{socket_name}"), None, socket.to_vec(), graph.types_mut())
        .with_context(|| format!("reading the {socket_name} component"))?;
    let socket = graph.register_package(socket_package)?;
    wac_graph::plug(&mut graph, vec![plug], socket)
        .with_context(|| format!("plugging the classifier into {socket_name}"))?;
    let composed = graph.encode(EncodeOptions::default()).with_context(|| format!("encoding {socket_name}"))?;

    let (imports, _) = crate::top_level_names(&composed)?;
    let leftover: Vec<_> = imports.iter().filter(|i| i.starts_with("edge:classify/")).collect();
    ensure!(leftover.is_empty(), "{socket_name} still imports {leftover:?} after composition");
    Ok(composed)
}
