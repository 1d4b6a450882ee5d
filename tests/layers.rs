//! The shape of the code, checked: plugen-core's modules use only their own
//! layer and the layers below it (io < compute < model < learn < jobs, with
//! `error` and `rng` under all of them), and no module of either crate is
//! part of an import circle (so no editor panel imports the app that draws it).
//!
//! A module's uses are the `crate::…` and `super::…` paths in its code
//! (comments and its `#[cfg(test)] mod tests` left out), each resolved to the
//! longest module path it names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// plugen-core's layers, lowest first. A top-level module must be listed here.
const CORE_LAYERS: &[&[&str]] = &[
    &["error", "rng"],
    &["io"],
    &["compute"],
    &["model"],
    &["learn"],
    &["jobs"],
];

/// Module path (`""` for the crate root, else `a::b`) → its source.
type Sources = BTreeMap<String, String>;

/// Every `.rs` file under `root`, by module path.
fn read_crate(root: &Path) -> Sources {
    let mut out = Sources::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                out.insert(module_path(root, &path), text);
            }
        }
    }
    out
}

/// `a/b.rs` → `a::b`, `a/mod.rs` → `a`, `lib.rs` and `main.rs` → the root.
fn module_path(root: &Path, file: &Path) -> String {
    let rel: PathBuf = file
        .strip_prefix(root)
        .expect("under the root")
        .with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod")) {
        parts.pop();
    }
    if parts.len() == 1 && matches!(parts[0].as_str(), "lib" | "main") {
        parts.clear();
    }
    parts.join("::")
}

/// The code of a file without comments and without its test module.
fn code_of(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]")
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod "))
        {
            break;
        }
        let code = match t.find("//") {
            Some(i) => &t[..i],
            None => t,
        };
        out.push_str(code);
        out.push('\n');
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Reads `a::b::c` (lowercase segments only: types and functions end it is
/// fine, the longest known module is taken later) from the start of `s`;
/// returns the segments and what follows them.
fn read_path(s: &str) -> (Vec<String>, &str) {
    let mut segs = Vec::new();
    let mut rest = s.trim_start();
    loop {
        let end = rest.find(|c: char| !is_ident(c)).unwrap_or(rest.len());
        let seg = &rest[..end];
        if seg.is_empty() {
            break;
        }
        segs.push(seg.to_string());
        match rest[end..].strip_prefix("::") {
            Some(r) if r.trim_start().starts_with(|c: char| is_ident(c)) => rest = r.trim_start(),
            Some(r) => {
                rest = r;
                break;
            }
            None => {
                rest = &rest[end..];
                break;
            }
        }
    }
    (segs, rest)
}

/// The paths named by `prefix::…` at the start of `s`, expanding one level of
/// `{a, b::c, self}` groups.
fn paths_after(prefix: &[String], s: &str) -> Vec<Vec<String>> {
    let (segs, rest) = read_path(s);
    let mut base = prefix.to_vec();
    base.extend(segs);
    let Some(group) = rest.trim_start().strip_prefix('{') else {
        return vec![base];
    };
    let mut depth = 1;
    let mut end = group.len();
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    end = i;
                    break;
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    let inner = &group[..end];
    for (i, c) in inner.char_indices().chain([(inner.len(), ',')]) {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                let item = inner[start..i].trim();
                start = i + 1;
                if item == "self" || item.is_empty() {
                    out.push(base.clone());
                } else {
                    out.extend(paths_after(&base, item));
                }
            }
            _ => {}
        }
    }
    out
}

/// The modules `module`'s code uses, each the longest known module path its
/// `crate::` or `super::` paths name (itself and the root left out).
fn uses_of(module: &str, code: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let here: Vec<String> = if module.is_empty() {
        Vec::new()
    } else {
        module.split("::").map(String::from).collect()
    };
    let mut out = BTreeSet::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < code.len() {
        let starts_word = i == 0 || !is_ident(bytes[i - 1] as char) && bytes[i - 1] != b':';
        let rest = &code[i..];
        let found = if !starts_word {
            None
        } else if let Some(r) = rest.strip_prefix("crate::") {
            Some((Vec::new(), r))
        } else if rest.starts_with("super::") {
            let mut base = here.clone();
            let mut r = rest;
            while let Some(next) = r.strip_prefix("super::") {
                base.pop();
                r = next;
            }
            Some((base, r))
        } else {
            None
        };
        if let Some((base, r)) = found {
            for path in paths_after(&base, r) {
                let target = (1..=path.len())
                    .rev()
                    .map(|n| path[..n].join("::"))
                    .find(|p| known.contains(p));
                if let Some(t) = target
                    && t != module
                {
                    out.insert(t);
                }
            }
        }
        i += rest.chars().next().map_or(1, char::len_utf8);
    }
    out
}

/// Every module's uses.
fn graph(sources: &Sources) -> BTreeMap<String, BTreeSet<String>> {
    let known: BTreeSet<String> = sources.keys().filter(|k| !k.is_empty()).cloned().collect();
    sources
        .iter()
        .filter(|(m, _)| !m.is_empty())
        .map(|(m, text)| (m.clone(), uses_of(m, &code_of(text), &known)))
        .collect()
}

/// One line per use that points up a layer, or per module outside every layer.
fn layer_violations(graph: &BTreeMap<String, BTreeSet<String>>, layers: &[&[&str]]) -> Vec<String> {
    let layer_of = |m: &str| {
        let top = m.split("::").next().unwrap_or_default();
        layers.iter().position(|l| l.contains(&top))
    };
    let mut out = Vec::new();
    for (module, uses) in graph {
        let Some(mine) = layer_of(module) else {
            out.push(format!(
                "{module} is in no layer: add its top-level module to a layer"
            ));
            continue;
        };
        for used in uses {
            if let Some(theirs) = layer_of(used)
                && theirs > mine
            {
                out.push(format!(
                    "{module} (layer {}) uses {used} (layer {}), a higher layer",
                    layers[mine].join("/"),
                    layers[theirs].join("/")
                ));
            }
        }
    }
    out
}

/// The import circles: every strongly connected set of two or more modules.
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Tarjan's algorithm, recursive (the graphs are small).
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        let graph = s.graph;
        for w in graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !graph.contains_key(w) {
                continue;
            }
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut set = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                set.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if set.len() > 1 {
                set.sort();
                s.found.push(set);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.found
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn core_modules_use_only_lower_layers() {
    let g = graph(&read_crate(&repo().join("crates/plugen-core/src")));
    assert!(g.len() > 30, "read the whole crate ({} modules)", g.len());
    let bad = layer_violations(&g, CORE_LAYERS);
    assert!(bad.is_empty(), "layer violations:\n{}", bad.join("\n"));
}

#[test]
fn no_import_circles_in_either_crate() {
    for dir in ["crates/plugen-core/src", "src"] {
        let g = graph(&read_crate(&repo().join(dir)));
        let found = circles(&g);
        assert!(
            found.is_empty(),
            "import circles in {dir}:\n{}",
            found
                .iter()
                .map(|c| c.join(" ↔ "))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[test]
fn editor_panels_do_not_import_the_app() {
    let g = graph(&read_crate(&repo().join("src")));
    let app = "gui::app";
    assert!(g.contains_key(app), "the editor has an app module");
    let users: Vec<&String> = g
        .iter()
        .filter(|(m, uses)| m.starts_with("gui::") && uses.contains(app))
        .map(|(m, _)| m)
        .collect();
    assert!(users.is_empty(), "modules importing gui::app: {users:?}");
    // The app does draw the panels (the check above sees its imports).
    assert!(g[app].contains("gui::controls"), "app uses: {:?}", g[app]);
}

/// The checker itself: it sees an upward use (also through `super::` and a
/// grouped import), a module outside every layer, and a circle, and ignores
/// comments and test modules.
#[test]
fn checker_finds_what_it_should() {
    let sources: Sources = [
        ("", "pub mod io; pub mod jobs;"),
        ("io", "pub mod files;"),
        ("io::files", "use crate::{error::Result, jobs::run};\n"),
        ("jobs", "pub mod run;"),
        ("jobs::run", "// crate::nowhere::x\nuse super::super::io::files::read;\n#[cfg(test)]\nmod tests {\n use crate::extra::X;\n}\n"),
        ("error", ""),
        ("extra", "fn f() -> crate::io::files::Thing { todo!() }"),
    ]
    .into_iter()
    .map(|(m, s)| (m.to_string(), s.to_string()))
    .collect();
    let g = graph(&sources);
    assert_eq!(
        g["io::files"],
        BTreeSet::from(["error".to_string(), "jobs::run".to_string()])
    );
    assert_eq!(g["jobs::run"], BTreeSet::from(["io::files".to_string()]));
    assert_eq!(g["extra"], BTreeSet::from(["io::files".to_string()]));
    let layers: &[&[&str]] = &[&["error"], &["io"], &["jobs"]];
    let bad = layer_violations(&g, layers);
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(
        bad.iter()
            .any(|b| b.starts_with("io::files (layer io) uses jobs::run"))
    );
    assert!(bad.iter().any(|b| b.starts_with("extra is in no layer")));
    assert_eq!(
        circles(&g),
        vec![vec!["io::files".to_string(), "jobs::run".to_string()]]
    );
}
