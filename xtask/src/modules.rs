//! `cargo xtask check`'s import-circle check: within one crate, no module may reach itself through
//! the modules it names. A circle means no file of it can be read (or moved) without the others.
//!
//! Each `.rs` file is a module (`a.rs` and `a/mod.rs` are `a`). A file depends on every module a
//! `crate::`, `super::` or `self::` path in it names (the longest module prefix of the path), in `use`
//! trees and in code alike, except:
//! - its own ancestors: a child using its parent's helpers (`super::bad`) is the parent's namespace
//!   at work, not a dependency between peers;
//! - test code (`#[cfg(test)] mod … { … }` and files declared under `#[cfg(test)]`), which may reach
//!   anywhere.
//!
//! Deliberately textual (comments and strings stripped, no macro expansion): it reads the source as
//! a newcomer does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A module path below the crate root (`[]` is `lib.rs`).
type Module = Vec<String>;

/// Every import circle in the crate whose `lib.rs` is `src/lib.rs` under `crate_dir`, each as
/// its modules in order (`a -> b -> a` is `[a, b]`).
pub fn circles(crate_dir: &Path) -> Result<Vec<Vec<String>>> {
    let src = crate_dir.join("src");
    let mut files = BTreeMap::new();
    collect(&src, &src, &mut files)?;
    let modules: BTreeSet<Module> = files.keys().cloned().collect();
    let test_only = test_modules(&files);
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (module, text) in &files {
        if test_only.iter().any(|t| module.starts_with(t)) {
            continue;
        }
        let deps = edges.entry(module.clone()).or_default();
        for path in paths(&strip_tests(&strip(text))) {
            let Some(target) = resolve(module, &path, &modules) else { continue };
            if !module.starts_with(&target) && !test_only.iter().any(|t| target.starts_with(t)) {
                deps.insert(target);
            }
        }
    }
    Ok(find_circles(&edges).into_iter().map(|c| c.iter().map(name).collect()).collect())
}

pub fn name(m: &Module) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<Module, String>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| dir.display().to_string())? {
        let path = entry?.path();
        if path.is_dir() {
            collect(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel: PathBuf = path.strip_prefix(root)?.with_extension("");
            let mut module: Module = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if matches!(module.last().map(String::as_str), Some("mod" | "lib" | "main")) {
                module.pop();
            }
            out.insert(module, std::fs::read_to_string(&path).with_context(|| path.display().to_string())?);
        }
    }
    Ok(())
}

/// Modules declared `#[cfg(test)] mod name;` in another file.
fn test_modules(files: &BTreeMap<Module, String>) -> Vec<Module> {
    let mut out = Vec::new();
    for (module, text) in files {
        let text = strip(text);
        let mut rest = text.as_str();
        while let Some(i) = rest.find("#[cfg(test)]") {
            rest = &rest[i + "#[cfg(test)]".len()..];
            let decl = rest.trim_start();
            let decl = decl.strip_prefix("pub(crate) ").or_else(|| decl.strip_prefix("pub ")).unwrap_or(decl);
            if let Some(after) = decl.strip_prefix("mod ") {
                let ident: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if after[ident.len()..].trim_start().starts_with(';') {
                    let mut m = module.clone();
                    m.push(ident);
                    out.push(m);
                }
            }
        }
    }
    out
}

/// The text without comments, string and char literals (their insides become spaces).
fn strip(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if b[i] == b'r' && (b[i..].starts_with(b"r\"") || b[i..].starts_with(b"r#")) && !ident_before(b, i) {
            let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
            if b.get(i + 1 + hashes) != Some(&b'"') {
                out.push('r');
                i += 1;
                continue;
            }
            let close: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
            i += 2 + hashes;
            while i < b.len() && !b[i..].starts_with(&close) {
                i += 1;
            }
            i += close.len();
            out.push_str("\"\"");
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && is_char_literal(b, i) {
            i += 1;
            while i < b.len() && b[i] != b'\'' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("' '");
        } else {
            let len = utf8_len(b[i]);
            out.push_str(&text[i..i + len]);
            i += len;
        }
    }
    out
}

fn utf8_len(first: u8) -> usize {
    match first {
        0..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

fn ident_before(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')
}

/// `'x'` or `'\n'` rather than a lifetime `'a`.
fn is_char_literal(b: &[u8], i: usize) -> bool {
    match b.get(i + 1) {
        Some(b'\\') => true,
        Some(_) => {
            let len = utf8_len(b[i + 1]);
            b.get(i + 1 + len) == Some(&b'\'')
        }
        None => false,
    }
}

/// The text without `#[cfg(test)]` items that have a body (`mod tests { … }`, a test-only fn).
fn strip_tests(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..i]);
        rest = &rest[i + "#[cfg(test)]".len()..];
        // The item ends at its first `;` if that comes before any `{`, else at the matching `}`.
        let semi = rest.find(';');
        let open = rest.find('{');
        match (semi, open) {
            (Some(s), Some(o)) if s < o => rest = &rest[s + 1..],
            (_, Some(o)) => {
                let mut depth = 0;
                let mut end = rest.len();
                for (j, c) in rest[o..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = o + j + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                rest = &rest[end..];
            }
            (Some(s), None) => rest = &rest[s + 1..],
            (None, None) => rest = "",
        }
    }
    out.push_str(rest);
    out
}

/// Every path that starts with `crate`, `super` or `self`, with `use` trees expanded.
fn paths(text: &str) -> Vec<Vec<String>> {
    let tokens = tokenize(text);
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i] == "use" {
            let end = tokens[i..].iter().position(|t| t == ";").map_or(tokens.len(), |p| i + p);
            expand(&tokens[i + 1..end], Vec::new(), &mut out);
            i = end;
        } else if matches!(tokens[i].as_str(), "crate" | "super" | "self")
            && tokens.get(i + 1).is_some_and(|t| t == "::")
            && (i == 0 || tokens[i - 1] != "::")
        {
            let mut path = vec![tokens[i].clone()];
            let mut j = i + 1;
            while j + 1 < tokens.len() && tokens[j] == "::" && is_ident(&tokens[j + 1]) {
                path.push(tokens[j + 1].clone());
                j += 2;
            }
            out.push(path);
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

fn is_ident(t: &str) -> bool {
    t.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// Expands a use tree (`a::{b, c::{d, e}}`) into its leaf paths, each prefixed with `prefix`.
fn expand(tree: &[String], prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut path = prefix;
    let mut i = 0;
    while i < tree.len() {
        match tree[i].as_str() {
            "::" | "pub" | "(" | ")" => i += 1,
            "{" => {
                let mut depth = 0;
                let mut start = i + 1;
                for j in i..tree.len() {
                    match tree[j].as_str() {
                        "{" => depth += 1,
                        "}" => {
                            depth -= 1;
                            if depth == 0 {
                                expand(&tree[start..j], path.clone(), out);
                                return;
                            }
                        }
                        "," if depth == 1 => {
                            expand(&tree[start..j], path.clone(), out);
                            start = j + 1;
                        }
                        _ => {}
                    }
                }
                return;
            }
            "," => {
                out.push(std::mem::take(&mut path));
                i += 1;
            }
            "as" => i += 2,
            t if is_ident(t) || t == "*" => {
                path.push(t.to_string());
                i += 1;
            }
            _ => i += 1,
        }
    }
    if !path.is_empty() {
        out.push(path);
    }
}

fn tokenize(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if d.is_alphanumeric() || d == '_' {
                    end = j + d.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(text[i..end].to_string());
        } else if c == ':' && chars.peek().is_some_and(|&(_, d)| d == ':') {
            chars.next();
            out.push("::".into());
        } else if !c.is_whitespace() {
            out.push(c.to_string());
        }
    }
    out
}

/// The module a path names: its longest prefix that is a module, after `crate`/`super`/`self`.
fn resolve(from: &Module, path: &[String], modules: &BTreeSet<Module>) -> Option<Module> {
    let mut base: Module = match path.first()?.as_str() {
        "crate" => Vec::new(),
        // A file module's `self` is itself; `super` of `a/b.rs` is `a`, of `a/b/mod.rs` too.
        "self" => from.clone(),
        "super" => {
            let mut m = from.clone();
            m.pop()?;
            m
        }
        _ => return None,
    };
    let mut rest = &path[1..];
    while rest.first().is_some_and(|s| s == "super") {
        base.pop()?;
        rest = &rest[1..];
    }
    let mut best = base.clone();
    let mut cur = base;
    for seg in rest {
        cur.push(seg.clone());
        if modules.contains(&cur) {
            best = cur.clone();
        } else {
            break;
        }
    }
    Some(best)
}

/// The circles of a directed graph: one per strongly connected component of more than one module,
/// as a shortest cycle through its first module.
fn find_circles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    let nodes: Vec<&Module> = edges.keys().collect();
    let reach = |from: &Module| -> BTreeSet<Module> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(m) = stack.pop() {
            for d in edges.get(&m).into_iter().flatten() {
                if seen.insert(d.clone()) {
                    stack.push(d.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&Module, BTreeSet<Module>> = nodes.iter().map(|&n| (n, reach(n))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for &n in &nodes {
        if done.contains(n) || !reaches[n].contains(n) {
            continue;
        }
        let component: BTreeSet<Module> =
            nodes.iter().filter(|&&m| reaches[n].contains(m) && reaches[m].contains(n)).map(|&m| m.clone()).collect();
        done.extend(component.iter().cloned());
        // Breadth-first from n back to n inside the component: the shortest circle through it.
        let mut prev: BTreeMap<Module, Module> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([n.clone()]);
        'search: while let Some(m) = queue.pop_front() {
            for d in edges.get(&m).into_iter().flatten().filter(|d| component.contains(*d)) {
                if d == n {
                    let mut cycle = vec![m.clone()];
                    let mut at = m.clone();
                    while let Some(p) = prev.get(&at) {
                        cycle.push(p.clone());
                        at = p.clone();
                    }
                    cycle.reverse();
                    out.push(cycle);
                    break 'search;
                }
                if !prev.contains_key(d) && d != n {
                    prev.insert(d.clone(), m.clone());
                    queue.push_back(d.clone());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (path, text) in files {
            let p = dir.join("src").join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
    }

    #[test]
    fn finds_a_circle_and_ignores_parents_tests_comments_and_strings() {
        let dir = std::env::temp_dir().join(format!("xtask-modules-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        write(
            &dir,
            &[
                ("lib.rs", "pub mod a; pub mod b; pub mod c; pub mod d;\npub use a::X;"),
                ("a.rs", "use crate::b::{self, Y};\npub struct X;"),
                ("b.rs", "pub struct Y; fn f() -> crate::c::Z { todo!() }"),
                // c -> a closes a -> b -> c -> a
                ("c.rs", "pub struct Z; use crate::{a::X as _};"),
                // d: only a parent reference, a test, a comment and a string name other modules
                (
                    "d/mod.rs",
                    "mod e; pub fn helper() {}\n// crate::a\nconst S: &str = \"crate::b::Y\";\n#[cfg(test)]\nmod tests { use crate::c::Z; }",
                ),
                ("d/e.rs", "use super::helper; use crate::d::helper as h2; fn g() { let _ = 'x'; }"),
            ],
        );
        let found = circles(&dir).unwrap();
        assert_eq!(found, vec![vec!["a".to_string(), "b".into(), "c".into()]]);
        // Breaking the edge c -> a leaves none.
        write(&dir, &[("c.rs", "pub struct Z;")]);
        assert!(circles(&dir).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The executor itself (issue 30: it had three).
    #[test]
    fn the_component_has_no_import_circle() {
        let component = Path::new(env!("CARGO_MANIFEST_DIR")).join("../component");
        assert_eq!(circles(&component).unwrap(), Vec::<Vec<String>>::new());
    }
}
