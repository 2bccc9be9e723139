//! The shape of the source tree, checked: no import cycle between top-level modules, no source
//! file over 800 lines, storage-engine types only in their backend, Pingora types only in the
//! edge (`proxy/`, `server.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 800;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Each file under `src/` with its path relative to `src/` and its text.
fn sources() -> Vec<(String, String)> {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(&root)
                .map(|r| r.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default();
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            (rel, text)
        })
        .collect()
}

/// The top-level module a file under `src/` belongs to (`api/mod.rs` → `api`).
fn module_of(rel: &str) -> String {
    let first = rel.split('/').next().unwrap_or(rel);
    first.trim_end_matches(".rs").to_string()
}

/// The text without comments and string literals: a module named in a doc comment or a log
/// filter is not a dependency. (Line by line; a `//` inside a string ends the line early,
/// which only ever drops text.)
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let line = line.find("//").map_or(line, |i| &line[..i]);
        let mut in_string = false;
        let mut escaped = false;
        for c in line.chars() {
            match (in_string, c) {
                (true, _) if escaped => escaped = false,
                (true, '\\') => escaped = true,
                (_, '"') => in_string = !in_string,
                (false, c) => out.push(c),
                (true, _) => {}
            }
        }
        out.push('\n');
    }
    out
}

/// The identifier `text` starts with (after spaces), if any.
fn leading_name(text: &str) -> Option<String> {
    let name: String = text
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// Top-level modules named after `crate::` in `code`, including `use crate::{a, b::c}`.
fn crate_references(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let Some(group) = rest.strip_prefix('{') else {
            out.extend(leading_name(rest));
            continue;
        };
        // Only the first segment of each item in the group, at the group's top level.
        let mut depth = 0;
        let mut item = String::new();
        for c in group.chars() {
            match c {
                '{' => depth += 1,
                '}' | ',' if depth == 0 => {
                    out.extend(leading_name(&item));
                    item.clear();
                    if c == '}' {
                        break;
                    }
                    continue;
                }
                '}' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                item.push(c);
            }
        }
    }
    out
}

/// Which top-level modules each one uses (tests included: a test may not close a cycle
/// either).
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in sources() {
        let module = module_of(&rel);
        if module == "main" || module == "lib" || module == "layout" {
            continue;
        }
        let refs = crate_references(&code_only(&text));
        let entry = graph.entry(module.clone()).or_default();
        entry.extend(refs.into_iter().filter(|r| *r != module));
    }
    graph
}

/// A cycle in `graph`, if there is one, as the modules along it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = path.iter().position(|n| n == node).unwrap_or(0);
                let mut cycle = path[start..].to_vec();
                cycle.push(node.to_string());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_string(), Mark::Open);
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, marks, path) {
                return Some(c);
            }
        }
        path.pop();
        marks.insert(node.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if let Some(c) = visit(node, graph, &mut marks, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

#[test]
fn references_are_read_from_paths_and_groups() {
    let code = "use crate::a::X;\nuse crate::{b, c::{D, E}, f::G};\nlet x = crate::h::y();";
    let got: Vec<String> = crate_references(code).into_iter().collect();
    assert_eq!(got, ["a", "b", "c", "f", "h"]);
    assert!(crate_references(&code_only("// see crate::z")).is_empty());
}

#[test]
fn a_cycle_is_found_and_its_absence_too() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    assert_eq!(
        find_cycle(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])),
        None
    );
    assert_eq!(
        find_cycle(&graph(&[("a", "b"), ("b", "c"), ("c", "a")])),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let graph = module_graph();
    assert!(
        graph.contains_key("api") && graph.contains_key("store"),
        "{graph:?}"
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle: {}", cycle.join(" → "));
    }
}

#[test]
fn no_source_file_is_over_the_limit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches", "examples", "fuzz/fuzz_targets"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 50, "{files:?}");
    let long: Vec<String> = files
        .iter()
        .filter_map(|p| {
            let lines = std::fs::read_to_string(p).ok()?.lines().count();
            (lines > MAX_LINES).then(|| format!("{}: {lines} lines", p.display()))
        })
        .collect();
    assert!(long.is_empty(), "over {MAX_LINES} lines: {long:?}");
}

/// Whether `code` names the crate `name` (`name::…` not inside a longer path such as
/// `store::redb::…`).
fn names_crate(code: &str, name: &str) -> bool {
    let needle = format!("{name}::");
    code.match_indices(&needle).any(|(i, _)| {
        let before = code[..i].chars().next_back();
        !matches!(before, Some(c) if c == ':' || c == '_' || c == '"' || c.is_alphanumeric())
    })
}

#[test]
fn crate_names_are_told_from_module_paths() {
    assert!(names_crate("use redb::Database;", "redb"));
    assert!(names_crate("x: pingora_core::Error", "pingora_core"));
    assert!(!names_crate("use crate::store::redb::RedbStore;", "redb"));
    assert!(!names_crate(
        "\"pingora_core::connectors=off\"",
        "pingora_core"
    ));
}

#[test]
fn engine_types_stay_in_their_layer() {
    let pingora = [
        "pingora",
        "pingora_core",
        "pingora_proxy",
        "pingora_http",
        "pingora_error",
    ];
    for (rel, text) in sources() {
        let code = code_only(&text);
        if !rel.starts_with("store/redb/") && rel != "layout.rs" {
            assert!(!names_crate(&code, "redb"), "{rel} names redb types");
        }
        let edge = rel.starts_with("proxy/") || rel == "server.rs" || rel == "layout.rs";
        if !edge {
            for name in pingora {
                assert!(
                    !names_crate(&code, name),
                    "{rel} names Pingora types ({name})"
                );
            }
        }
    }
}
