//! Translate a directory of Gloo YAML with gloo-core and print what each proxy would be served.
//!
//! `cargo run -p gloo-examples --example translate_directory -- examples/quickstart`

use gloo_core::source::{ConfigSource, DirectorySource};
use gloo_core::translate::Translator;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "examples/quickstart".to_string());
    let source = DirectorySource::load(&dir)?;
    let translation = Translator::new().translate(&source.subscribe().borrow());
    print!("{}", translation.reports.to_text());
    for (proxy, resources) in &translation.proxies {
        println!(
            "proxy {proxy}: {} listeners, {} route configs, {} clusters, {} endpoint sets",
            resources.listeners.len(),
            resources.routes.len(),
            resources.clusters.len(),
            resources.endpoints.len()
        );
        for (name, route) in &resources.routes {
            println!("  {name} (version {})", route.version);
        }
    }
    Ok(())
}
