//! The fuzz corpus (`fuzz/corpus/<target>/`) replayed through the very functions the
//! fuzzers run (`fuzz/targets.rs`), without libFuzzer: every input a fuzzer found
//! interesting, every seed and every regression input of a fixed finding is checked on
//! each `cargo test`. How to fuzz: SECURITY.md, "Fuzzing".

#[path = "../fuzz/targets.rs"]
mod targets;

use std::path::Path;

#[test]
fn every_corpus_input_holds_its_targets_properties() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut replayed = Vec::new();
    for (name, target) in targets::TARGETS {
        let dir = root.join(name);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
            panic!("corpus {} is missing ({e}): seed it, see SECURITY.md", dir.display())
        });
        let mut files: Vec<_> = entries
            .map(|entry| entry.expect("a readable corpus directory").path())
            .filter(|path| path.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "corpus {} is empty: seed it, see SECURITY.md", dir.display());
        for file in &files {
            let data = std::fs::read(file).expect("a readable corpus file");
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name}: {} breaks the target's properties", file.display());
        }
        replayed.push(format!("{name}: {}", files.len()));
    }
    println!("replayed {}", replayed.join(", "));
}
