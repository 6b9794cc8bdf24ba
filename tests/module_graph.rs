//! The library's modules import one another without circles, so that each layer can be
//! read (and tested) knowing only the ones below it.
//!
//! The graph is computed from the sources: every `use crate::...`, `use super::...`
//! (with its `{...}` groups expanded) and every `crate::a::b` path written in code,
//! resolved to the file of the deepest module it names. Test modules (`#[cfg(test)]
//! mod NAME { ... }`) are left out: a test may reach up. Two graphs must be free of
//! circles:
//! - the files, leaving out a module's edges to its own ancestors and descendants
//!   (a parent's facade and its children's `super::` use are one module's inside);
//! - the top-level modules (`crate::machine`, `crate::grade`, ...): a circle there is a
//!   layer reaching up, such as the VM layer importing the grader's sandbox.
//!
//! `cargo test --test module_graph -- --nocapture` prints the top-level graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

/// The library's modules and their files, found by following `mod NAME;` from lib.rs.
fn modules(src: &Path) -> BTreeMap<Module, PathBuf> {
    let mut out = BTreeMap::new();
    let mut todo = vec![(Vec::<String>::new(), src.join("lib.rs"))];
    while let Some((m, file)) = todo.pop() {
        let text = strip(&std::fs::read_to_string(&file).unwrap());
        // A module in NAME.rs keeps its children in NAME/; mod.rs and lib.rs beside them.
        let dir = if file.ends_with("mod.rs") || file.ends_with("lib.rs") {
            file.parent().unwrap().to_path_buf()
        } else {
            file.with_extension("")
        };
        for line in text.lines() {
            let l = line.trim();
            let l = l.strip_prefix("pub ").unwrap_or(l);
            let l = l.strip_prefix("pub(crate) ").unwrap_or(l);
            if let Some(name) = l.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
                let name = name.trim().to_string();
                let f = if dir.join(format!("{name}.rs")).exists() {
                    dir.join(format!("{name}.rs"))
                } else {
                    dir.join(&name).join("mod.rs")
                };
                assert!(f.exists(), "mod {name} in {}: no file", file.display());
                let mut child = m.clone();
                child.push(name);
                todo.push((child, f));
            }
        }
        out.insert(m, file);
    }
    out
}

/// The text without comments, string and char literals, and test modules.
fn strip(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && !b
                .get(i.wrapping_sub(1))
                .is_some_and(|p| p.is_alphanumeric() || *p == '_')
        {
            // A raw string r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' {
            // A char literal ('x', '\n', '\''), or a lifetime ('a) kept as it is.
            if next == Some('\\') {
                let mut j = i + 2;
                while j < b.len() && b[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
                out.push_str("' '");
            } else if b.get(i + 2) == Some(&'\'') {
                i += 3;
                out.push_str("' '");
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    drop_test_modules(&out)
}

/// Removes every `#[cfg(test)]` followed by `mod NAME {...}` (braces matched; the text
/// has no strings or comments left).
fn drop_test_modules(text: &str) -> String {
    let mut s = text.to_string();
    while let Some(at) = s.find("#[cfg(test)]") {
        let rest = &s[at + "#[cfg(test)]".len()..];
        let t = rest.trim_start();
        let t2 = t.strip_prefix("pub ").unwrap_or(t);
        let Some(open) = rest.find('{') else { break };
        let end = if t2.starts_with("mod ") && !rest[..open].contains(';') {
            let mut depth = 0;
            let mut end = rest.len();
            for (k, ch) in rest.char_indices().skip(open) {
                match ch {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = k + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            at + "#[cfg(test)]".len() + end
        } else {
            // A test-only item that is not a module: keep it, drop only the attribute.
            at + "#[cfg(test)]".len()
        };
        s.replace_range(at..end, "");
    }
    s
}

/// Every path a `use` tree names, `{a, b::{c, d}}` expanded.
fn expand(tree: &str) -> Vec<String> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = tree.find('{') else {
        return vec![tree.split(" as ").next().unwrap_or("").to_string()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = vec![];
    let (mut depth, mut start) = (0, 0);
    for (k, ch) in inner.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..k]);
                start = k + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(expand)
        .map(|p| {
            if p == "self" {
                prefix.trim_end_matches("::").to_string()
            } else {
                format!("{prefix}{p}")
            }
        })
        .collect()
}

/// The paths a file names: `use` trees and `crate::`/`super::` paths in code.
fn paths(text: &str) -> Vec<String> {
    let mut out = vec![];
    let mut rest = text;
    // use trees (they may span lines)
    while let Some(at) = rest.find("use ") {
        let before = rest[..at].chars().last();
        rest = &rest[at + 4..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(end) = rest.find(';') {
            let t = rest[..end].trim();
            if t.starts_with("crate::") || t.starts_with("super::") || t.starts_with("self::") {
                out.extend(expand(t));
            }
        }
    }
    // paths in code
    for start in ["crate::", "super::"] {
        let mut rest = text;
        while let Some(at) = rest.find(start) {
            let before = rest[..at].chars().last();
            let tail = &rest[at..];
            let len = tail
                .char_indices()
                .find(|&(k, ch)| {
                    !(ch.is_alphanumeric() || ch == '_' || (ch == ':' && tail[k..].len() > 1))
                })
                .map(|(k, _)| k)
                .unwrap_or(tail.len());
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                out.push(tail[..len].trim_end_matches(':').to_string());
            }
            rest = &rest[at + start.len()..];
        }
    }
    out
}

/// The deepest known module a path names, from the module `from` it is written in.
fn resolve(
    path: &str,
    from: &Module,
    is_mod_rs: bool,
    known: &BTreeMap<Module, PathBuf>,
) -> Option<Module> {
    let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut base: Module = vec![];
    let mut i = 0;
    match segs.first() {
        Some(&"crate") => i = 1,
        Some(&"self") => {
            base = from.clone();
            i = 1
        }
        Some(&"super") => {
            base = from.clone();
            while segs.get(i) == Some(&"super") {
                base.pop();
                i += 1;
            }
        }
        _ => return None,
    }
    let _ = is_mod_rs;
    let mut m = base;
    let mut best = None;
    if known.contains_key(&m) {
        best = Some(m.clone());
    }
    for s in &segs[i..] {
        m.push(s.to_string());
        if known.contains_key(&m) {
            best = Some(m.clone());
        } else {
            break;
        }
    }
    best
}

fn is_prefix(a: &Module, b: &Module) -> bool {
    a.len() <= b.len() && b[..a.len()] == a[..]
}

fn graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let known = modules(&src);
    let mut g: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (m, file) in &known {
        let text = strip(&std::fs::read_to_string(file).unwrap());
        let mod_rs = file.ends_with("mod.rs");
        let e = g.entry(m.clone()).or_default();
        for p in paths(&text) {
            if let Some(to) = resolve(&p, m, mod_rs, &known)
                && to != *m
            {
                e.insert(to);
            }
        }
    }
    g
}

/// A circle in `g`, if there is one (as the modules on it, first repeated at the end).
fn circle(g: &BTreeMap<Module, BTreeSet<Module>>) -> Option<Vec<Module>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        n: &Module,
        g: &BTreeMap<Module, BTreeSet<Module>>,
        mark: &mut BTreeMap<Module, Mark>,
        stack: &mut Vec<Module>,
    ) -> Option<Vec<Module>> {
        mark.insert(n.clone(), Mark::Open);
        stack.push(n.clone());
        for to in g.get(n).into_iter().flatten() {
            match mark.get(to).copied().unwrap_or(Mark::New) {
                Mark::Open => {
                    let at = stack.iter().position(|x| x == to).unwrap();
                    let mut c = stack[at..].to_vec();
                    c.push(to.clone());
                    return Some(c);
                }
                Mark::New => {
                    if let Some(c) = visit(to, g, mark, stack) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        mark.insert(n.clone(), Mark::Done);
        None
    }
    let mut mark = BTreeMap::new();
    for n in g.keys() {
        if mark.get(n).copied().unwrap_or(Mark::New) == Mark::New
            && let Some(c) = visit(n, g, &mut mark, &mut vec![])
        {
            return Some(c);
        }
    }
    None
}

/// Every set of modules that reach one another (strongly connected, more than one).
fn tangles(g: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    let nodes: Vec<&Module> = g.keys().collect();
    let reach = |from: &Module| -> BTreeSet<Module> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(n) = todo.pop() {
            for t in g.get(&n).into_iter().flatten() {
                if seen.insert(t.clone()) {
                    todo.push(t.clone());
                }
            }
        }
        seen
    };
    let r: BTreeMap<&Module, BTreeSet<Module>> = nodes.iter().map(|n| (*n, reach(n))).collect();
    let mut done = BTreeSet::new();
    let mut out = vec![];
    for n in &nodes {
        if done.contains(*n) {
            continue;
        }
        let set: Vec<Module> = nodes
            .iter()
            .filter(|m| r[*n].contains(**m) && r[**m].contains(*n))
            .map(|m| (*m).clone())
            .collect();
        if set.len() > 1 {
            done.extend(set.iter().cloned());
            out.push(set);
        }
    }
    out
}

fn show(c: &[Module]) -> String {
    c.iter()
        .map(|m| format!("crate::{}", m.join("::")))
        .collect::<Vec<_>>()
        .join(" -> ")
}

#[test]
fn the_files_import_one_another_without_circles() {
    let mut g = graph();
    for (from, to) in g.iter_mut() {
        to.retain(|t| !is_prefix(t, from) && !is_prefix(from, t));
    }
    assert!(g.len() > 40, "the module list looks wrong: {:?}", g.keys());
    if let Some(c) = circle(&g) {
        let all: Vec<String> = tangles(&g).iter().map(|t| show(t)).collect();
        panic!(
            "an import circle between files: {}\nevery tangle:\n{}",
            show(&c),
            all.join("\n")
        );
    }
}

#[test]
fn the_layers_import_one_another_without_circles() {
    let mut top: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (from, to) in graph() {
        let Some(f) = from.first() else { continue };
        let e = top.entry(vec![f.clone()]).or_default();
        for t in to {
            if let Some(t) = t.first()
                && t != f
            {
                e.insert(vec![t.clone()]);
            }
        }
    }
    for (m, to) in &top {
        let to: Vec<_> = to.iter().map(|t| t.join("::")).collect();
        println!("{:<10} -> {}", m.join("::"), to.join(", "));
    }
    if let Some(c) = circle(&top) {
        panic!("an import circle between layers: {}", show(&c));
    }
}

/// The graph finder itself: it must see a circle where there is one, and read the
/// forms of `use` the code has.
#[test]
fn the_finder_sees_use_trees_paths_and_circles() {
    let t = strip(
        "use crate::{a::{B, c::D}, e};\n// use crate::commented;\nlet s = \"crate::in_string\";\nfn f() { crate::g::h(); }\n#[cfg(test)]\nmod tests { use crate::up; }\n",
    );
    let p = paths(&t);
    for want in ["crate::a::B", "crate::a::c::D", "crate::e", "crate::g::h"] {
        assert!(p.iter().any(|x| x == want), "{want} not in {p:?}");
    }
    for not in ["commented", "in_string", "up"] {
        assert!(!p.iter().any(|x| x.contains(not)), "{not} in {p:?}");
    }
    let m = |s: &str| vec![s.to_string()];
    let mut g = BTreeMap::new();
    g.insert(m("a"), BTreeSet::from([m("b")]));
    g.insert(m("b"), BTreeSet::from([m("c")]));
    g.insert(m("c"), BTreeSet::from([m("a")]));
    assert_eq!(circle(&g).map(|c| c.len()), Some(4));
    g.insert(m("c"), BTreeSet::new());
    assert_eq!(circle(&g), None);
}

/// The binary parses and dispatches: a refusal (a `bail!`, an `anyhow!` error made up
/// there) is a decision, and decisions live in the library, where its tests and other
/// callers (the grader, examples/) see them too.
#[test]
fn the_binary_makes_no_decision_of_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for f in ["main.rs", "cli.rs", "tour_cmd.rs"] {
        let text = std::fs::read_to_string(src.join(f)).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains("bail!(") || code.contains("anyhow!(") {
                found.push(format!("src/{f}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "refusals made in the binary:\n{}",
        found.join("\n")
    );
}
