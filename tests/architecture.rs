//! The dependency rules of `src/lib.rs`, checked on the source: no module imports one that imports
//! it back (directly or round a longer circle), and the layers point one way — `http` imports no
//! store type, only `http` and `app` know axum, the store and the search engine never see a request
//! or a caller, `fhirpath` stands alone, and the two stores never import each other.
//!
//! A module's imports are the `crate::`, `super::` and `self::` paths in its file, outside
//! comments, strings and `#[cfg(test)]` items, each resolved to the longest module it names. A
//! module's file also names its own children without a prefix (declaring them, re-exporting from
//! them): the parent and its children are one unit, and those names are not counted, so a child
//! may use what its parent declares (`super::Cx`). Between any other two modules, imports run
//! one way.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module, as the path of its name segments (`["store", "sqlite", "writer"]`); the crate root is
/// the empty path.
type Module = Vec<String>;

fn module_of(src: &Path, file: &Path) -> Module {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without comments and without the contents of string and character literals.
fn code_only(source: &str) -> String {
    let bytes = source.as_bytes();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1).copied()) {
            (b'/', Some(b'/')) => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            (b'/', Some(b'*')) => {
                let mut depth = 0;
                while i < bytes.len() {
                    if bytes[i..].starts_with(b"/*") {
                        depth += 1;
                        i += 2;
                    } else if bytes[i..].starts_with(b"*/") {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            (b'r', Some(b'"' | b'#')) if i == 0 || !is_ident(bytes[i - 1]) => {
                // A raw string: r"…" or r#"…"#.
                let mut j = i + 1;
                let mut hashes = 0;
                while bytes.get(j) == Some(&b'#') {
                    hashes += 1;
                    j += 1;
                }
                if bytes.get(j) != Some(&b'"') {
                    out.push('r');
                    i += 1;
                    continue;
                }
                let close: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
                j += 1;
                while j < bytes.len() && !bytes[j..].starts_with(&close) {
                    j += 1;
                }
                out.push_str("\"\"");
                i = j + close.len();
            }
            (b'"', _) => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                out.push_str("\"\"");
                i += 1;
            }
            (b'\'', _) if bytes.get(i + 2) == Some(&b'\'') || bytes.get(i + 1) == Some(&b'\\') => {
                // A character literal ('x' or '\n'), not a lifetime.
                i += 1;
                while i < bytes.len() && bytes[i] != b'\'' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                out.push_str("' '");
                i += 1;
            }
            (c, _) => {
                out.push(c as char);
                i += 1;
            }
        }
    }
    out
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `code` without the items marked `#[cfg(test)]` (a test module, a test-only function).
fn without_tests(code: &str) -> String {
    let mut out = String::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        // The item ends at the `;` of `mod x;` or at the brace that closes its body.
        let open = after.find('{');
        let semicolon = after.find(';');
        let end = match (open, semicolon) {
            (Some(o), Some(s)) if s < o => s + 1,
            (Some(o), _) => {
                let mut depth = 0;
                let mut end = after.len();
                for (k, c) in after[o..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = o + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (None, Some(s)) => s + 1,
            (None, None) => after.len(),
        };
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Every path that starts with `crate`, `super` or `self`, with `{…}` groups expanded.
fn paths(code: &str) -> Vec<Vec<String>> {
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts = ["crate::", "super::", "self::"]
            .iter()
            .any(|p| code[i..].starts_with(p))
            && (i == 0 || !is_ident(bytes[i - 1]) && bytes[i - 1] != b':');
        if starts {
            let (mut expanded, end) = path_at(code, i);
            found.append(&mut expanded);
            i = end;
        } else {
            i += 1;
        }
    }
    found
}

/// The paths written at `start` (one, or several through `{…}`), and where they end.
fn path_at(code: &str, start: usize) -> (Vec<Vec<String>>, usize) {
    let bytes = code.as_bytes();
    let mut prefix = Vec::new();
    let mut i = start;
    loop {
        let begin = i;
        while i < bytes.len() && is_ident(bytes[i]) {
            i += 1;
        }
        if i > begin {
            prefix.push(code[begin..i].to_owned());
        }
        if code[i..].starts_with("::") {
            i += 2;
            if bytes.get(i) == Some(&b'{') {
                let mut all = Vec::new();
                i += 1;
                loop {
                    while i < bytes.len() && (bytes[i] as char).is_whitespace() {
                        i += 1;
                    }
                    if bytes.get(i) == Some(&b'}') {
                        return (all, i + 1);
                    }
                    let (inner, end) = path_at(code, i);
                    for tail in inner {
                        let mut full = prefix.clone();
                        full.extend(tail.into_iter().filter(|s| s != "self"));
                        all.push(full);
                    }
                    i = end;
                    while i < bytes.len() && bytes[i] != b',' && bytes[i] != b'}' {
                        i += 1;
                    }
                    if bytes.get(i) == Some(&b',') {
                        i += 1;
                    }
                }
            }
            continue;
        }
        return (vec![prefix], i.max(start + 1));
    }
}

/// The module a path written in `from` names: `crate`, `super` and `self` resolved, then the
/// longest prefix that is a module.
fn resolve(from: &Module, path: &[String], modules: &BTreeSet<Module>) -> Option<Module> {
    let mut full: Module = match path.first().map(String::as_str) {
        Some("crate") => Vec::new(),
        Some("self") => from.clone(),
        Some("super") => from.clone(),
        _ => return None,
    };
    let mut rest = &path[1..];
    if path[0] == "super" {
        full.pop();
        while rest.first().map(String::as_str) == Some("super") {
            full.pop();
            rest = &rest[1..];
        }
    }
    full.extend(rest.iter().cloned());
    (0..=full.len())
        .rev()
        .map(|n| full[..n].to_vec())
        .find(|m| modules.contains(m))
}

struct Graph {
    edges: BTreeMap<Module, BTreeSet<Module>>,
    /// Each module's source, without comments, strings and tests.
    code: BTreeMap<Module, String>,
}

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<Module> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut edges = BTreeMap::new();
    let mut code = BTreeMap::new();
    for file in &files {
        let module = module_of(&src, file);
        let text = without_tests(&code_only(&std::fs::read_to_string(file).unwrap()));
        let targets: BTreeSet<Module> = paths(&text)
            .iter()
            .filter_map(|p| resolve(&module, p, &modules))
            .filter(|target| *target != module)
            .collect();
        edges.insert(module.clone(), targets);
        code.insert(module, text);
    }
    Graph { edges, code }
}

fn name(module: &Module) -> String {
    if module.is_empty() {
        "crate".to_owned()
    } else {
        module.join("::")
    }
}

fn under(module: &Module, top: &str) -> bool {
    module.first().is_some_and(|m| m == top)
}

/// The circles of the graph: its strongly connected components of more than one module.
fn circles(graph: &Graph) -> Vec<Vec<String>> {
    // Kosaraju: finish order on the graph, then components on the reversed graph.
    let nodes: Vec<&Module> = graph.edges.keys().collect();
    let mut visited = BTreeSet::new();
    let mut order = Vec::new();
    for start in &nodes {
        if visited.contains(*start) {
            continue;
        }
        let mut stack = vec![(*start, false)];
        while let Some((node, done)) = stack.pop() {
            if done {
                order.push(node);
                continue;
            }
            if !visited.insert(node) {
                continue;
            }
            stack.push((node, true));
            for next in &graph.edges[node] {
                if !visited.contains(next) {
                    stack.push((next, false));
                }
            }
        }
    }
    let mut reversed: BTreeMap<&Module, Vec<&Module>> = BTreeMap::new();
    for (from, targets) in &graph.edges {
        for to in targets {
            reversed.entry(to).or_default().push(from);
        }
    }
    let mut assigned = BTreeSet::new();
    let mut found = Vec::new();
    for node in order.into_iter().rev() {
        if assigned.contains(node) {
            continue;
        }
        let mut component = Vec::new();
        let mut stack = vec![node];
        assigned.insert(node);
        while let Some(n) = stack.pop() {
            component.push(name(n));
            for prev in reversed.get(n).into_iter().flatten() {
                if assigned.insert(*prev) {
                    stack.push(prev);
                }
            }
        }
        if component.len() > 1 {
            component.sort();
            found.push(component);
        }
    }
    found
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let graph = graph();
    assert!(graph.edges.len() > 100, "the source tree was read");
    assert!(
        graph.edges[&vec!["interactions".to_owned(), "dispatch".to_owned()]]
            .contains(&vec!["interactions".to_owned(), "read".to_owned()]),
        "imports are found"
    );
    assert_eq!(circles(&graph), Vec::<Vec<String>>::new());
}

#[test]
fn the_layers_point_one_way() {
    let graph = graph();
    let mut broken = Vec::new();
    for (module, targets) in &graph.edges {
        for target in targets {
            let rule = if under(module, "http") && under(target, "store") {
                Some("http imports no store type")
            } else if [
                "store", "search", "sql", "model", "fhirpath", "validate", "patch", "xml", "bundle", "auth", "consent",
                "audit",
            ]
            .iter()
            .any(|m| under(module, m))
                && ["interactions", "http", "app", "config", "generate"]
                    .iter()
                    .any(|m| under(target, m))
            {
                Some("the layers below interactions never import it or what is above it")
            } else if (under(module, "store") || under(module, "search")) && under(target, "auth") {
                Some("the store and the search engine never see a caller")
            } else if under(module, "consent") && ["store", "search", "sql", "auth"].iter().any(|m| under(target, m)) {
                Some("consent decides from values: no database, no search engine, no token")
            } else if under(module, "auth") && under(target, "consent") {
                Some("auth never uses consent")
            } else if under(module, "search") && under(target, "store") {
                Some("search is pure: it never imports the store")
            } else if under(module, "fhirpath") && !under(target, "fhirpath") {
                Some("fhirpath imports nothing from the crate")
            } else if module.starts_with(&["store".to_owned(), "sqlite".to_owned()])
                && target.starts_with(&["store".to_owned(), "postgres".to_owned()])
                || module.starts_with(&["store".to_owned(), "postgres".to_owned()])
                    && target.starts_with(&["store".to_owned(), "sqlite".to_owned()])
            {
                Some("the two stores never import each other")
            } else {
                None
            };
            if let Some(rule) = rule {
                broken.push(format!("{} -> {}: {rule}", name(module), name(target)));
            }
        }
    }
    assert_eq!(broken, Vec::<String>::new());
}

#[test]
fn only_http_and_app_know_axum() {
    let graph = graph();
    let knowing: Vec<String> = graph
        .code
        .iter()
        .filter(|(module, code)| {
            !(under(module, "http") || under(module, "app"))
                && ["axum::", "tower::", "use axum", "use tower"]
                    .iter()
                    .any(|p| code.contains(p))
        })
        .map(|(module, _)| name(module))
        .collect();
    assert_eq!(knowing, Vec::<String>::new());
}

#[test]
fn the_reader_of_imports_sees_through_comments_strings_groups_and_tests() {
    let code = code_only(
        "use crate::a::{b, c::{d, e}}; // crate::x::y\nlet s = \"crate::q\"; /* super::z */ self::f::g();\n\
         #[cfg(test)]\nmod tests { use crate::t; }\nuse super::h;",
    );
    let code = without_tests(&code);
    let found: Vec<String> = paths(&code).iter().map(|p| p.join("::")).collect();
    assert_eq!(
        found,
        [
            "crate::a::b",
            "crate::a::c::d",
            "crate::a::c::e",
            "self::f::g",
            "super::h"
        ]
    );
    let modules: BTreeSet<Module> = [vec![], vec!["a".to_owned()], vec!["a".to_owned(), "c".to_owned()]]
        .into_iter()
        .collect();
    let from = vec!["a".to_owned(), "c".to_owned()];
    assert_eq!(
        resolve(&from, &["super".into(), "c".into(), "d".into()], &modules),
        Some(from.clone())
    );
    assert_eq!(resolve(&from, &["crate".into(), "zz".into()], &modules), Some(vec![]));
}
