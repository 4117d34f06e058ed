//! Feeds arbitrary text through the loader and then the whole translation (validation,
//! delegation, Envoy resources, JSON printing): none of it may panic.
#![no_main]

use gloo_core::load::{parse_str, Format};
use gloo_core::source::SourceSnapshot;
use gloo_core::translate::Translator;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parsed = parse_str(&text, "fuzz.yaml", Format::Yaml);
    let snapshot = SourceSnapshot {
        resources: parsed.resources,
        errors: parsed.errors,
        generation: 1,
    };
    let mut translator = Translator::new();
    let translation = translator.translate(&snapshot);
    for resources in translation.proxies.values() {
        let _ = resources.to_json();
    }
    // A second pass exercises the incremental caches and last-known-good.
    let _ = translator.translate(&snapshot);
});
