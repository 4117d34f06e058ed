//! Feeds arbitrary bytes, decoded as UTF-8 (lossily), to `gloo_core::load::parse_str` with
//! `Format::Json`. The loader must never panic; beyond that this checks the contracts its docs
//! state: error positions are 1-based, origins are 1-based and name the file, and the results
//! can be formatted.
#![no_main]

use gloo_core::load::{parse_str, Format};
use libfuzzer_sys::fuzz_target;

const FILE: &str = "fuzz.json";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parsed = parse_str(&text, FILE, Format::Json);
    for err in &parsed.errors {
        assert_eq!(&*err.file, FILE, "error names the wrong file: {err:?}");
        assert!(err.line >= 1, "error line is not 1-based: {err:?}");
        assert!(err.column >= 1, "error column is not 1-based: {err:?}");
        let shown = err.to_string();
        assert!(shown.starts_with(FILE), "Display does not start with the file: {shown:?}");
    }
    for loaded in &parsed.resources {
        assert_eq!(&*loaded.origin.file, FILE, "origin names the wrong file: {loaded:?}");
        assert!(loaded.origin.line >= 1, "origin line is not 1-based: {loaded:?}");
        let _ = loaded.resource.kind();
        let _ = loaded.resource.metadata().namespace();
    }
    // Formatting everything that came back must not panic either.
    let _ = format!("{parsed:?}");
});
