//! The ground floor stays the ground floor: `runtime`, `task`, `time` and
//! `trace` never name the layers built on them (`sync`, `net`, `fault`),
//! which reach the runtime only through its extension point
//! (`src/runtime/ext.rs`). Doc comments may still link to them.

use std::path::{Path, PathBuf};

const GROUND: &[&str] = &["runtime", "task", "time", "trace"];
const ABOVE: &[&str] = &["sync", "net", "fault"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The code of a line: `None` for a comment line, else the part before a
/// trailing `//` comment.
fn code(line: &str) -> Option<&str> {
    let t = line.trim_start();
    if t.starts_with("//") {
        return None;
    }
    Some(match t.find("//") {
        Some(i) => &t[..i],
        None => t,
    })
}

/// Every way a ground-floor line can name a layer above it: a path
/// (`crate::net::HostId`) or a group import (`use crate::{net, ..}`).
fn names_a_layer_above(code: &str) -> Option<&'static str> {
    for layer in ABOVE {
        for sep in ["::", ";", ",", " ", ")", "}"] {
            if code.contains(&format!("crate::{layer}{sep}"))
                || code.ends_with(&format!("crate::{layer}"))
            {
                return Some(layer);
            }
        }
        if let Some(i) = code.find("crate::{") {
            let group = &code[i..];
            let words = group
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .collect::<Vec<_>>();
            if words.contains(layer) {
                return Some(layer);
            }
        }
    }
    None
}

#[test]
fn the_runtime_task_time_and_trace_modules_never_name_sync_net_or_fault() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offences = Vec::new();
    let mut scanned = 0;
    for module in GROUND {
        let mut files = Vec::new();
        rust_files(&src.join(module), &mut files);
        let single = src.join(format!("{module}.rs"));
        if single.exists() {
            files.push(single);
        }
        for file in files {
            scanned += 1;
            let text = std::fs::read_to_string(&file).expect("a readable source file");
            for (n, line) in text.lines().enumerate() {
                let Some(code) = code(line) else { continue };
                if let Some(layer) = names_a_layer_above(code) {
                    offences.push(format!(
                        "{}:{}: names `crate::{layer}`: {}",
                        file.strip_prefix(&src).unwrap_or(&file).display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        scanned > 10,
        "found only {scanned} source files under {}",
        src.display()
    );
    assert!(
        offences.is_empty(),
        "the ground floor (src/{{{}}}) must not name the layers built on it ({}): give the \
         layer a hook or a per-run slot in src/runtime/ext.rs instead.\n{}",
        GROUND.join(","),
        ABOVE.join(", "),
        offences.join("\n")
    );
}

#[test]
fn the_check_sees_paths_and_group_imports_but_not_comments() {
    assert_eq!(names_a_layer_above("use crate::net::HostId;"), Some("net"));
    assert_eq!(
        names_a_layer_above("crate::sync::deadlock::stalled(self)"),
        Some("sync")
    );
    assert_eq!(
        names_a_layer_above("use crate::{fault, time};"),
        Some("fault")
    );
    assert_eq!(
        names_a_layer_above("use crate::{time::Instant, trace};"),
        None
    );
    assert_eq!(names_a_layer_above("use crate::network_like::X;"), None);
    assert_eq!(code("    /// see [`net`](crate::net::Host)"), None);
    assert_eq!(code("let x = 1; // crate::net"), Some("let x = 1; "));
}
