//! Loopback ports for the servers the workspace's tests start: Envoy, Redis, moto, slapd, the
//! OIDC provider, `gloo` itself.
//!
//! A test asks for a port, then hands it to a process that binds it later. Two things can
//! take the port in between:
//! - another test process asking at the same moment (cargo-nextest runs each test in a process
//!   of its own, several at once): the OS's "bind port 0" hands out a port that is free *now*,
//!   and may hand the same one to the next caller before the first one's server has bound it;
//! - an outgoing connection's source port, which the OS picks from the same ephemeral range
//!   as port 0.
//!
//! [`free_port`] avoids both: it picks below the ephemeral range
//! (`/proc/sys/net/ipv4/ip_local_port_range`), and claims each port it gives with an advisory
//! lock on a file named after it, under the temporary directory, held until the process ends
//! (the OS drops the lock then, however the process ends, so nothing goes stale). A port
//! locked by another process, or one something is listening on, is skipped.
#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions, TryLockError};
use std::hash::{BuildHasher, RandomState};
use std::net::TcpListener;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The lock files of the ports this process was given, kept open (so locked) while it lives.
static CLAIMED: Mutex<Vec<(u16, File)>> = Mutex::new(Vec::new());

/// A port on 127.0.0.1 that nothing listened on when asked, and that no other caller of this
/// function, in this process or in another on this machine, is given while this process lives.
///
/// ```
/// let port = gloo_test_ports::free_port();
/// assert_ne!(port, gloo_test_ports::free_port());
/// std::net::TcpListener::bind(("127.0.0.1", port)).expect("the port is free");
/// ```
///
/// # Panics
///
/// When the lock directory cannot be made, or every candidate port is taken.
pub fn free_port() -> u16 {
    let dir = std::env::temp_dir().join("gloo-test-ports");
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("cannot make the port lock directory {}: {e}", dir.display());
    }
    let range = candidates();
    // A random start, so concurrent processes mostly try different ports first.
    let start = RandomState::new().hash_one(std::process::id()) as u32;
    let mut claimed = CLAIMED.lock().unwrap_or_else(|p| p.into_inner());
    match pick(&dir, range.clone(), start, &mut claimed) {
        Some(port) => port,
        None => panic!("no free port in {range:?}: each is in use or claimed by another test"),
    }
}

/// The first port of `range`, from `start` on (wrapping), that this process was not given
/// before, whose lock file in `dir` it could lock, and that nothing listens on. Each port it
/// locks goes into `claimed`, given or not (one in use is not tried again).
fn pick(dir: &Path, range: Range<u16>, start: u32, claimed: &mut Vec<(u16, File)>) -> Option<u16> {
    let span = u32::from(range.end - range.start);
    for step in 0..span {
        let port = range.start + (start.wrapping_add(step) % span) as u16;
        if claimed.iter().any(|(given, _)| *given == port) {
            continue;
        }
        let Some(lock) = claim(dir.join(port.to_string())) else {
            continue;
        };
        let listening = TcpListener::bind(("127.0.0.1", port)).is_err();
        claimed.push((port, lock));
        if !listening {
            return Some(port);
        }
    }
    None
}

/// The lock on a port's file, unless another process holds it.
fn claim(path: PathBuf) -> Option<File> {
    let file = match OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) => panic!("cannot open the port lock file {}: {e}", path.display()),
    };
    match file.try_lock() {
        Ok(()) => Some(file),
        Err(TryLockError::WouldBlock) => None,
        Err(TryLockError::Error(e)) => panic!("cannot lock {}: {e}", path.display()),
    }
}

/// The ports to pick from: up to 12,000 below the ephemeral range (32768-60999 by default,
/// so 20768-32767), or above it when it starts too low to leave room below.
fn candidates() -> Range<u16> {
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut bounds = s.split_whitespace().map(|n| n.parse::<u16>().ok());
            Some((bounds.next()??, bounds.next()??))
        })
        .unwrap_or((32768, 60999));
    match ephemeral {
        (low, _) if low >= 11024 => low.saturating_sub(12000).max(1024)..low,
        (_, high) if high <= 53535 => high + 1..high.saturating_add(12001),
        // The whole range is ephemeral: the locks still keep test processes apart.
        _ => 20000..32000,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lock directory of the test's own (so its ports are not claimed for the process),
    /// removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("gloo-test-ports-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("scratch lock directory");
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A port the OS just gave and took back, so most likely free.
    fn just_freed() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
        listener.local_addr().expect("local address").port()
    }

    #[test]
    fn ports_are_distinct_free_and_outside_the_ephemeral_range() {
        let range = candidates();
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        for (i, port) in ports.iter().enumerate() {
            assert!(range.contains(port), "{port} outside {range:?}");
            assert!(!ports[..i].contains(port), "{port} given twice");
            TcpListener::bind(("127.0.0.1", *port)).expect("a given port is free");
        }
    }

    #[test]
    fn a_port_something_listens_on_is_skipped_and_not_tried_again() {
        let scratch = Scratch::new("listening");
        let dir = &scratch.0;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
        let port = listener.local_addr().expect("local address").port();
        let mut claimed = Vec::new();
        assert_eq!(pick(dir, port..port + 1, 0, &mut claimed), None);
        assert_eq!(claimed.len(), 1, "the busy port was not kept as tried");
        drop(listener);
        assert_eq!(pick(dir, port..port + 1, 0, &mut claimed), None);
    }

    #[test]
    fn a_port_locked_by_another_holder_is_skipped_until_it_lets_go() {
        let scratch = Scratch::new("locked");
        let dir = &scratch.0;
        let port = just_freed();
        // A lock taken through another open file description conflicts with ours, as
        // another process's does.
        let other = claim(dir.join(port.to_string())).expect("the other holder's lock");
        let mut claimed = Vec::new();
        assert_eq!(pick(dir, port..port + 1, 0, &mut claimed), None);
        assert!(claimed.is_empty());
        drop(other);
        assert_eq!(pick(dir, port..port + 1, 0, &mut claimed), Some(port));
        // Given once, never again by this process.
        assert_eq!(pick(dir, port..port + 1, 0, &mut claimed), None);
    }

    #[test]
    fn the_search_starts_anywhere_and_wraps() {
        let scratch = Scratch::new("wraps");
        let dir = &scratch.0;
        let port = just_freed();
        let mut claimed = Vec::new();
        // A start past the end of a one-port range still lands on it.
        assert_eq!(pick(dir, port..port + 1, 7, &mut claimed), Some(port));
    }
}
