//! The `gloo` command (`gloo_proxy::command::main`), built in this package so that the
//! deployment pattern tests under `tests/` can start it: cargo gives a package's tests only that
//! package's binaries. Users run gloo-proxy's own `gloo` binary, as each pattern's README shows.

use std::process::ExitCode;

fn main() -> ExitCode {
    gloo_proxy::command::main(|| {})
}
