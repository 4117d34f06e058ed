//! Shared by the tests: waiting helpers, the fake Consul (feature `consul`) and the fake API server (feature `kubernetes`).
#![allow(dead_code)]

#[cfg(feature = "consul")]
pub mod fake_consul;
pub mod moto;
pub mod scripted;

#[cfg(feature = "kubernetes")]
pub mod fake_apiserver;

use std::time::Duration;

use tokio::sync::watch;

/// Waits (30 s at most: CI machines are busy) until the newest value of `rx` satisfies `ok`;
/// returns it.
pub async fn wait_for<T: Clone>(
    rx: &mut watch::Receiver<T>,
    what: &str,
    mut ok: impl FnMut(&T) -> bool,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let current = rx.borrow_and_update().clone();
        if ok(&current) {
            return current;
        }
        tokio::select! {
            changed = rx.changed() => assert!(changed.is_ok(), "channel closed waiting for {what}"),
            _ = tokio::time::sleep_until(deadline) => panic!("timed out waiting for {what}"),
        }
    }
}

/// The path of a real client binary or interpreter the tests need, from its `GLOO_TEST_*`
/// variable (scripts/test.sh sets them); fails naming the variable when it is missing.
pub fn required_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => {
            panic!("{name} is not set: run scripts/test.sh, which installs the client and sets it")
        }
    }
}
