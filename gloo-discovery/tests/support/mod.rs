//! Helpers shared by gloo-discovery's integration tests.

#![allow(dead_code)]

pub mod fake_consul;
pub mod moto;

use std::time::Duration;

use tokio::sync::watch;

/// Waits (at most 10 s) until the watched value satisfies `ok`; returns it.
pub async fn wait_for<T: Clone>(
    rx: &mut watch::Receiver<T>,
    what: &str,
    mut ok: impl FnMut(&T) -> bool,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
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
