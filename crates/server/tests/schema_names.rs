//! OpenAPI component names are global: two response or request types with
//! the same name in different modules silently replace each other in the
//! document. No struct name may appear twice in the server.

use std::collections::BTreeMap;
use std::path::Path;

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_two_server_types_share_a_name() {
    let mut files = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut clashes = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for line in text.lines() {
            let Some(rest) = line.trim_start().strip_prefix("pub struct ") else {
                continue;
            };
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let here = f.display().to_string();
            if let Some(first) = seen.insert(name.clone(), here.clone()) {
                clashes.push(format!("{name}: {first} and {here}"));
            }
        }
    }
    assert!(seen.len() > 20, "found only {} types", seen.len());
    assert!(clashes.is_empty(), "{clashes:?}");
}
