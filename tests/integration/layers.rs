//! The library's modules stand in floors, each importing only its own floor or below, and no
//! module imports one that imports it back (read from the sources: `crate::<module>` paths).

use std::collections::{BTreeMap, BTreeSet};

use integration_tests::repo_root;

/// Lowest first. A module may use modules on its own floor or below, never above.
const FLOORS: &[&[&str]] = &[
    &["ids", "events", "policy", "aws", "telemetry"],
    &["principal", "protect"],
    &["rules"],
    &["config"],
    &["signals"],
    &["actions"],
    &["playbooks", "permissions"],
    &["trace"],
    &["ledger", "notify"],
    &["responder"],
    &["lambda"],
];

/// Top-level module -> the top-level modules its files name through `crate::`.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = repo_root().join("shared/src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let module = rel.split(['/', '.']).next().unwrap().to_owned();
            if module == "lib" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let deps = graph.entry(module.clone()).or_default();
            for (i, _) in text.match_indices("crate::") {
                let rest = &text[i + "crate::".len()..];
                let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
                    group.split('}').next().unwrap().split(',').collect()
                } else {
                    vec![rest]
                };
                for name in names {
                    let name: String = name
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    let is_module = src.join(format!("{name}.rs")).exists()
                        || src.join(&name).join("mod.rs").exists();
                    if !name.is_empty() && name != module && is_module {
                        deps.insert(name);
                    }
                }
            }
        }
    }
    graph
}

fn floor(module: &str) -> usize {
    FLOORS
        .iter()
        .position(|f| f.contains(&module))
        .unwrap_or_else(|| panic!("module {module} has no floor in tests/integration/layers.rs"))
}

#[test]
fn every_import_points_down_or_sideways() {
    let graph = imports();
    assert!(graph.len() >= 15, "{graph:?}");
    for (module, deps) in &graph {
        for dep in deps {
            assert!(
                floor(dep) <= floor(module),
                "{module} (floor {}) imports {dep} (floor {})",
                floor(module),
                floor(dep)
            );
        }
    }
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let graph = imports();
    // Depth-first search for a cycle, reporting its path.
    fn visit<'g>(
        m: &'g str,
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'g str>,
        done: &mut BTreeSet<&'g str>,
    ) {
        if let Some(start) = path.iter().position(|p| *p == m) {
            panic!("import circle: {} -> {m}", path[start..].join(" -> "));
        }
        if !done.insert(m) {
            return;
        }
        path.push(m);
        for dep in graph.get(m).into_iter().flatten() {
            visit(dep, graph, path, done);
        }
        path.pop();
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        visit(module, &graph, &mut Vec::new(), &mut done);
    }
}
