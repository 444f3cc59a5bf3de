//! Putting a model bundle into the compiled classifier, and wrapping and composing components: what
//! `bake` and `cargo xtask dist` do after the guest is compiled, with no Rust compiler involved.
//!
//! The bundle goes in as one more active data segment at the end of the module's initial memory,
//! which grows by the pages it needs; the guest's [`LOCATION`](edge_classify::embedded::LOCATION)
//! static is patched with its address and length. That region is safe from the guest's allocator:
//! Rust's wasm32 allocator (dlmalloc) only takes memory that `memory.grow` adds past the current
//! size, never the initial pages beyond `__heap_base`.

use anyhow::{bail, ensure, Context, Result};
use edge_classify::embedded::LOCATION_MARKER;
use wac_graph::types::Package;
use wac_graph::{CompositionGraph, EncodeOptions};
use wasmparser::{Parser, Payload};

const PAGE: u64 = 65536;

/// `module` (the guest's core module, with no bundle yet) with `bundle` baked in.
pub fn bake_core(module: &[u8], bundle: &[u8]) -> Result<Vec<u8>> {
    find_marker(module)?;
    ensure!(module.len() >= 8 && module[..4] == *b"\0asm", "not a core wasm module");
    ensure!(!imports_memory(module)?, "the classifier module imports its memory; the baker needs it to define one");
    let sections = sections(module)?;
    let memory = sections.iter().find(|(id, _)| *id == 5).map(|(_, c)| *c).context("the module has no memory")?;
    let reader = wasmparser::MemorySectionReader::new(wasmparser::BinaryReader::new(memory, 0))?;
    ensure!(reader.count() == 1, "the classifier module defines {} memories, not one", reader.count());
    let mut mem = reader.into_iter().next().expect("one memory")?;
    ensure!(!mem.memory64 && !mem.shared, "the classifier's memory is 64-bit or shared");
    let address = mem.initial * PAGE;
    mem.initial += (bundle.len() as u64).div_ceil(PAGE);
    ensure!(mem.initial * PAGE <= 1 << 32, "a {} MB model does not fit a 32-bit memory", bundle.len() >> 20);
    if let Some(max) = mem.maximum {
        ensure!(max >= mem.initial, "the classifier's memory maximum ({max} pages) leaves no room for the model");
    }
    let (addr32, len32) = (address as u32, u32::try_from(bundle.len()).context("the model is over 4 GB")?);

    let mut memory_section = wasm_encoder::MemorySection::new();
    memory_section.memory(wasm_encoder::MemoryType {
        minimum: mem.initial,
        maximum: mem.maximum,
        memory64: false,
        shared: false,
        page_size_log2: mem.page_size_log2,
    });
    let data = sections.iter().find(|(id, _)| *id == 11).map(|(_, c)| *c).context("the module has no data")?;
    let mut reader = wasmparser::BinaryReader::new(data, 0);
    let segments = reader.read_var_u32()?;
    // The same segments, copied as they are after their count, then ours.
    let mut payload = Vec::with_capacity(data.len() + bundle.len() + 16);
    leb(&mut payload, segments as u64 + 1);
    payload.extend_from_slice(&data[reader.original_position() as usize..]);
    payload.push(0x00); // active, memory 0
    payload.push(0x41); // i32.const
    sleb(&mut payload, addr32 as i32 as i64);
    payload.push(0x0b); // end
    leb(&mut payload, bundle.len() as u64);
    payload.extend_from_slice(bundle);

    let mut out = module[..8].to_vec();
    let mut bundle_at = 0;
    for (id, contents) in sections {
        match id {
            5 => {
                out.push(5);
                let mut bytes = Vec::new();
                wasm_encoder::Encode::encode(&memory_section, &mut bytes);
                out.extend_from_slice(&bytes);
            }
            11 => {
                push_section(&mut out, 11, &payload);
                bundle_at = out.len() - bundle.len();
            }
            12 => {
                let mut count = Vec::new();
                leb(&mut count, segments as u64 + 1);
                push_section(&mut out, 12, &count);
            }
            _ => push_section(&mut out, id, contents),
        }
    }
    // The marker's segment was copied byte for byte: patch it where it now is. Only the module's own
    // bytes are searched, not the model's, which could hold the same bytes by chance.
    let at = find_marker(&out[..bundle_at])? + LOCATION_MARKER.len();
    out[at..at + 4].copy_from_slice(&addr32.to_le_bytes());
    out[at + 4..at + 8].copy_from_slice(&len32.to_le_bytes());
    wasmparser::Validator::new().validate_all(&out).context("the baked module does not validate")?;
    Ok(out)
}

/// The module's sections as (id, contents), in order.
fn sections(module: &[u8]) -> Result<Vec<(u8, &[u8])>> {
    let mut reader = wasmparser::BinaryReader::new(&module[8..], 8);
    let mut out = Vec::new();
    while !reader.eof() {
        let id = reader.read_u8()?;
        let len = reader.read_var_u32()? as usize;
        out.push((id, reader.read_bytes(len)?));
    }
    Ok(out)
}

fn imports_memory(module: &[u8]) -> Result<bool> {
    for payload in Parser::new(0).parse_all(module) {
        if let Payload::ImportSection(s) = payload? {
            for import in s.into_imports() {
                if matches!(import?.ty, wasmparser::TypeRef::Memory(_)) {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

/// Where the guest's location static is: exactly once in the module, with zero address and length.
fn find_marker(module: &[u8]) -> Result<usize> {
    let hits: Vec<usize> = module
        .windows(LOCATION_MARKER.len())
        .enumerate()
        .filter(|(_, w)| *w == LOCATION_MARKER)
        .map(|(i, _)| i)
        .collect();
    match hits[..] {
        [at] => {
            let slot = module.get(at + LOCATION_MARKER.len()..at + LOCATION_MARKER.len() + 8);
            ensure!(slot == Some(&[0u8; 8][..]), "this classifier module already has a model baked in");
            Ok(at)
        }
        [] => bail!("not an edge-classify classifier module (no embedded-model location in its data)"),
        _ => bail!("the classifier module has {} embedded-model locations, not one", hits.len()),
    }
}

fn push_section(out: &mut Vec<u8>, id: u8, payload: &[u8]) {
    out.push(id);
    leb(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

fn leb(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn sleb(out: &mut Vec<u8>, mut v: i64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        let done = (v == 0 && b & 0x40 == 0) || (v == -1 && b & 0x40 != 0);
        out.push(if done { b } else { b | 0x80 });
        if done {
            return;
        }
    }
}

/// A core module with its component-type section (as wit-bindgen leaves it) as a component.
pub fn encode_component(module: &[u8]) -> Result<Vec<u8>> {
    wit_component::ComponentEncoder::default()
        .module(module)
        .context("the module has no usable component-type section (does it export the world through wit-bindgen?)")?
        .validate(true)
        .encode()
        .context("encoding the module as a component")
}

/// `socket` with every `edge:classify` import satisfied by `classifier`. The result exports what
/// `socket` exports and imports only what neither component provides (WASI, for the apps).
pub fn plug(classifier: &[u8], socket: &[u8], socket_name: &str) -> Result<Vec<u8>> {
    compose(classifier, socket, "classifier", socket_name)
}

/// `socket` with its imports of what `plug` exports satisfied by `plug` (wac's `plug`): what
/// `cargo xtask compose` and `wac plug --plug PLUG SOCKET` do. Fails if any import of an interface
/// `plug` exports is left, or if `plug` satisfies none of `socket`'s imports.
pub fn compose(plug: &[u8], socket: &[u8], plug_name: &str, socket_name: &str) -> Result<Vec<u8>> {
    let (_, plugged) = top_level_names(plug).with_context(|| format!("reading the exports of {plug_name}"))?;
    let (wanted, _) = top_level_names(socket).with_context(|| format!("reading the imports of {socket_name}"))?;
    ensure!(
        wanted.iter().any(|i| plugged.contains(i)),
        "{socket_name} imports none of what {plug_name} exports ({})",
        plugged.join(", ")
    );
    let mut graph = CompositionGraph::new();
    let plug_package = Package::from_bytes("edge:plug", None, plug.to_vec(), graph.types_mut())
        .with_context(|| format!("reading the {plug_name} component"))?;
    let plug_id = graph.register_package(plug_package)?;
    let socket_package = Package::from_bytes("edge:socket", None, socket.to_vec(), graph.types_mut())
        .with_context(|| format!("reading the {socket_name} component"))?;
    let socket_id = graph.register_package(socket_package)?;
    wac_graph::plug(&mut graph, vec![plug_id], socket_id)
        .with_context(|| format!("plugging {plug_name} into {socket_name}"))?;
    let composed = graph.encode(EncodeOptions::default()).with_context(|| format!("encoding {socket_name}"))?;

    let (imports, _) = top_level_names(&composed)?;
    let leftover: Vec<_> = imports.iter().filter(|i| plugged.contains(i)).collect();
    ensure!(leftover.is_empty(), "{socket_name} still imports {leftover:?} after composition with {plug_name}");
    Ok(composed)
}

/// The component's own imports and exports (not those of the components nested inside it).
pub fn top_level_names(component: &[u8]) -> Result<(Vec<String>, Vec<String>)> {
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(component) {
        match payload? {
            Payload::Version { .. } => depth += 1,
            Payload::End(_) => depth -= 1,
            Payload::ComponentImportSection(section) if depth == 1 => {
                for import in section {
                    imports.push(import?.name.full_name().into_owned());
                }
            }
            Payload::ComponentExportSection(section) if depth == 1 => {
                for export in section {
                    exports.push(export?.name.full_name().into_owned());
                }
            }
            _ => {}
        }
    }
    Ok((imports, exports))
}
