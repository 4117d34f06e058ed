//! `gloo`: run a Gloo Edge compatible API gateway from a directory of Gloo YAML; validate,
//! translate and serve it over xDS. The command line lives in `gloo_proxy::command`.

use std::process::ExitCode;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    gloo_proxy::command::main(release_memory::start)
}

/// Hands memory the process freed back to the operating system.
///
/// A translation builds and drops a great deal (at 10,000 routes the process peaks some
/// 40 MiB above what it keeps), and glibc's malloc keeps freed chunks in the middle of the
/// heap resident for good. Every two seconds this checks how much lies free and, past
/// 8 MiB, asks glibc to release the free pages (`malloc_trim`): `gloo run` with 10,000 routes
/// then stays resident at its live size instead of its startup peak. Not compiled with the
/// `mimalloc` feature (mimalloc manages its own pages) or off glibc.
#[cfg(all(target_os = "linux", target_env = "gnu", not(feature = "mimalloc")))]
mod release_memory {
    use std::time::Duration;

    /// Free heap worth returning.
    const THRESHOLD: usize = 8 << 20;

    pub fn start() {
        let spawned = std::thread::Builder::new()
            .name("gloo-release-memory".into())
            .spawn(|| loop {
                std::thread::sleep(Duration::from_secs(2));
                if free_bytes() > THRESHOLD {
                    trim();
                }
            });
        if let Err(e) = spawned {
            eprintln!("warning: cannot start the memory release thread: {e}");
        }
    }

    /// Bytes glibc holds free in its arenas.
    fn free_bytes() -> usize {
        // SAFETY: mallinfo2 takes no arguments, only reads the allocator's statistics under
        // its own locks, and returns a plain struct by value.
        let info = unsafe { libc::mallinfo2() };
        info.fordblks
    }

    fn trim() {
        // SAFETY: malloc_trim(0) releases free pages of every arena under the allocator's
        // own locks; it touches no memory the program owns.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu", not(feature = "mimalloc"))))]
mod release_memory {
    /// Nothing to do with this allocator.
    pub fn start() {}
}
