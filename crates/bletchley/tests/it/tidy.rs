//! A clone stands alone (issue 28): no test, script, benchmark or the demo reads a path outside
//! the repository, except the caches the test command fills itself (`~/.cache/bletchley`, or
//! `BLETCHLEY_CACHE`). CI has `../shared` beside the clone, so this check is what proves that a
//! user's clone, which has nothing beside it, passes.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// Paths that lie outside a clone. Spelled in pieces so that this file does not match itself.
fn forbidden() -> Vec<String> {
    vec![
        format!("..{}shared", '/'),
        format!("{}work{}", '/', '/'),
        format!("{}root{}", '/', '/'),
        format!("{}home{}", '/', '/'),
    ]
}

/// Ways to name the home directory, spelled in pieces likewise.
fn homes() -> Vec<String> {
    vec![
        format!("${}", "HOME"),
        format!("~{}", '/'),
        format!("home_dir{}", "()"),
    ]
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name == "target" || name == "regressions" || name.starts_with('.') && name != ".ci" {
            continue;
        }
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// The part of a line that is code: a Rust line up to a `//` outside a string, a script line
/// unless it is a comment.
fn code_of(path: &Path, line: &str) -> String {
    let rust = path.extension().is_some_and(|e| e == "rs");
    if !rust {
        let t = line.trim_start();
        return if t.starts_with('#') {
            String::new()
        } else {
            line.to_owned()
        };
    }
    let mut in_str = false;
    let mut prev = ' ';
    let chars: Vec<char> = line.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == '"' && prev != '\\' {
            in_str = !in_str;
        }
        if !in_str && c == '/' && chars.get(i + 1) == Some(&'/') {
            return chars[..i].iter().collect();
        }
        prev = c;
    }
    line.to_owned()
}

#[test]
fn no_test_script_benchmark_or_the_demo_reads_outside_the_repository() {
    let root = repo();
    let mut files = Vec::new();
    walk(&root.join("crates"), &mut files);
    walk(&root.join("scripts"), &mut files);
    walk(&root.join(".ci"), &mut files);
    let checked: Vec<PathBuf> = files
        .into_iter()
        .filter(|p| {
            let s = p.to_string_lossy();
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or_default();
            s.contains("/scripts/")
                || s.contains("/.ci/")
                || (ext == "rs"
                    && (s.contains("/tests/") || s.contains("/src/") || s.contains("/benches/")))
        })
        .collect();
    assert!(checked.len() > 50, "only {} files found", checked.len());
    let bad = forbidden();
    let mut found = Vec::new();
    for f in &checked {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            let code = code_of(f, line);
            for b in &bad {
                if code.contains(b.as_str()) {
                    found.push(format!(
                        "{}:{}: {}",
                        f.strip_prefix(&root).unwrap_or(f).display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
            // The home directory only for the cache the test command fills.
            for home in homes() {
                if let Some(at) = code.find(home.as_str()) {
                    let rest = &code[at..];
                    // The caches the test command fills, and the toolchain's own.
                    if !rest.contains("cache") && !rest.contains(".cargo") {
                        found.push(format!(
                            "{}:{}: the home directory outside the cache: {}",
                            f.strip_prefix(&root).unwrap_or(f).display(),
                            n + 1,
                            line.trim()
                        ));
                    }
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "paths outside the repository (a clone has nothing beside it):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_catches_a_path_outside() {
    // The check itself can fail: a line reading the shared data is caught, its comment is not.
    let f = Path::new("x.rs");
    let line = format!(
        "let d = std::fs::read(\"{}/data/x\"); // {}",
        forbidden()[0],
        forbidden()[0]
    );
    let code = code_of(f, &line);
    assert!(code.contains(&forbidden()[0]));
    assert!(!code_of(f, &format!("// {}", forbidden()[0])).contains(&forbidden()[0]));
    assert!(code_of(Path::new("run"), &format!("# {}", forbidden()[1])).is_empty());
}
