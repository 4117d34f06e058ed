//! libmodsecurity's C API, wrapped: the only module of gloo-filters with `unsafe` code.
//!
//! Everything here is a thin, safe wrapper over `modsecurity-sys` (the raw bindings of
//! libmodsecurity 3's `modsecurity.h`, `rules_set.h` and `transaction.h`); nothing outside this
//! module sees a raw pointer. The invariants the wrappers keep:
//!
//! * One `ModSecurity` instance for the process ([`instance`]), created once and never freed,
//!   so every transaction's engine outlives it. Its log callback is set once, at creation.
//! * A [`RuleSet`] owns its `RulesSet` and frees it on drop; rules are only added while it is
//!   uniquely owned (`&mut self`), under a global lock (the rule parser is not reentrant), and
//!   are read-only once it is shared.
//! * A [`Transaction`] owns its `Transaction` (freed on drop, before the `Arc<RuleSet>` it
//!   holds releases the rules) and the message sink its log callback writes to (freed after
//!   the transaction). It is used by one thread at a time (`&mut self`), but may move
//!   between threads between calls.
//! * Strings libmodsecurity allocates for us (`strdup`: rule errors, intervention logs and
//!   URLs) are copied into Rust strings and released with C's `free`, never with Rust's
//!   allocator (which may be mimalloc).
//! * Text from libmodsecurity is read as bytes and converted lossily: rule messages quote
//!   request data, which need not be UTF-8. Nothing here can panic across the C boundary.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, OnceLock};

use modsecurity_sys as sys;

/// Rule messages kept per transaction (CRS matches a handful per request; the cap bounds what
/// a crafted request can make it keep).
const MAX_MESSAGES: usize = 256;
/// Bytes kept of one rule message.
const MAX_MESSAGE_BYTES: usize = 8 * 1024;

/// The process-wide `ModSecurity` engine object.
struct Instance(NonNull<sys::ModSecurity>);

// SAFETY: libmodsecurity's `ModSecurity` object is made to be shared by every thread of a
// server (Envoy's and nginx's connectors share one across workers): after `msc_init`,
// `msc_set_connector_info` and `msc_set_log_cb` (all done in `instance()` before it is
// published), transactions only read it.
unsafe impl Send for Instance {}
// SAFETY: as above; no method mutates it after initialisation.
unsafe impl Sync for Instance {}

static INSTANCE: OnceLock<Option<Instance>> = OnceLock::new();

/// The rule parser (a bison/flex driver) keeps global state: one rule set is parsed at a time.
static PARSER: Mutex<()> = Mutex::new(());

/// The engine, created on first use.
fn instance() -> Result<&'static Instance, String> {
    INSTANCE
        .get_or_init(|| {
            // SAFETY: `msc_init` has no preconditions; it returns a new engine or null.
            let raw = unsafe { sys::msc_init() };
            let engine = NonNull::new(raw)?;
            let connector = CString::new(concat!("gloo-filters v", env!("CARGO_PKG_VERSION")))
                .unwrap_or_default();
            // SAFETY: `engine` is the live engine just created and not yet shared; libmodsecurity
            // copies the connector string. `log_callback` matches `ModSecLogCb` and never
            // unwinds.
            unsafe {
                sys::msc_set_connector_info(engine.as_ptr(), connector.as_ptr());
                sys::msc_set_log_cb(engine.as_ptr(), Some(log_callback));
            }
            Some(Instance(engine))
        })
        .as_ref()
        .ok_or_else(|| "libmodsecurity could not create its engine (msc_init)".to_string())
}

/// Moves the calling thread to Linux's `SCHED_IDLE` class: it runs only when no ordinary
/// thread wants the core, and an ordinary thread that wakes up takes the core from it at once.
/// For the WAF's evaluation threads (`blocking.rs`). Elsewhere than Linux it does nothing.
pub(crate) fn lowest_cpu_priority() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `param` is a valid sched_param that outlives the call; pid 0 is the calling
        // thread; the call changes nothing but that thread's scheduling class.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// How many CPUs a `cpu_set_t` can name.
#[cfg(target_os = "linux")]
const CPU_SLOTS: usize = libc::CPU_SETSIZE as usize;

/// The CPUs the process may run on (its main thread's affinity mask, which `taskset` and
/// cpusets set), in increasing order; empty when it cannot be read (or elsewhere than Linux).
/// For the evaluation lanes (`blocking.rs`).
pub(crate) fn allowed_cpus() -> Vec<usize> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: an all-zero `cpu_set_t` is a valid (empty) set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        let process = i32::try_from(std::process::id()).unwrap_or(0);
        // SAFETY: `set` is a valid, writable `cpu_set_t` of the size passed; `process` is this
        // process's id (its main thread), or 0 (the calling thread).
        let size = std::mem::size_of::<libc::cpu_set_t>();
        if unsafe { libc::sched_getaffinity(process, size, &mut set) } != 0 {
            return Vec::new();
        }
        // SAFETY: `set` is initialised and every index is below CPU_SETSIZE.
        (0..CPU_SLOTS)
            .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
            .collect()
    }
    #[cfg(not(target_os = "linux"))]
    Vec::new()
}

/// Restricts the calling thread to `cpu`. For the evaluation lanes (`blocking.rs`).
pub(crate) fn pin_to_cpu(cpu: usize) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        if cpu >= CPU_SLOTS {
            return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
        }
        // SAFETY: an all-zero `cpu_set_t` is a valid (empty) set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `cpu` is below CPU_SETSIZE (checked above); `set` is a valid, writable set
        // of the size passed; pid 0 is the calling thread.
        let failed = unsafe {
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0
        };
        if failed {
            return Err(std::io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cpu;
    Ok(())
}

/// The CPU the calling thread is running on (it may move right after); `None` when unknown.
pub(crate) fn current_cpu() -> Option<usize> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: no preconditions; returns the CPU number or -1.
        usize::try_from(unsafe { libc::sched_getcpu() }).ok()
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// Whether the calling thread runs in the `SCHED_IDLE` class.
#[cfg(all(test, target_os = "linux"))]
pub(crate) fn runs_at_lowest_cpu_priority() -> bool {
    // SAFETY: no preconditions; pid 0 is the calling thread.
    unsafe { libc::sched_getscheduler(0) == libc::SCHED_IDLE }
}

/// libmodsecurity's `msc_who_am_i`, e.g. `ModSecurity v3.0.9 (Linux)`.
pub(crate) fn version() -> String {
    match instance() {
        // SAFETY: the engine is live for the whole process; the returned string is owned by
        // the engine and only read here.
        Ok(engine) => unsafe { lossy(sys::msc_who_am_i(engine.0.as_ptr())) }.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Copies a C string (lossily: it may quote request bytes).
///
/// # Safety
/// `ptr` is null or points to a NUL-terminated string valid for the call.
unsafe fn lossy(ptr: *const c_char) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-null and NUL-terminated, per this function's contract.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    Some(String::from_utf8_lossy(bytes).into_owned())
}

/// Copies a C string libmodsecurity allocated for us, then frees it with C's `free`.
///
/// # Safety
/// `ptr` is null or a NUL-terminated string from `malloc`/`strdup` that nothing else frees.
unsafe fn take_c_string(ptr: *mut c_char) -> Option<String> {
    // SAFETY: per this function's contract.
    let text = unsafe { lossy(ptr) };
    if !ptr.is_null() {
        // SAFETY: allocated by libmodsecurity with `strdup` (C's allocator) and owned by us.
        unsafe { libc::free(ptr.cast::<c_void>()) };
    }
    text
}

/// Rule messages of one transaction, written by [`log_callback`].
#[derive(Debug, Default)]
struct Messages {
    lines: Vec<String>,
}

/// libmodsecurity's log callback (`ModSecLogCb`, text log property): `data` is the
/// transaction's `Messages` (or null when its messages are not wanted), `message` the
/// NUL-terminated text of one rule message.
unsafe extern "C" fn log_callback(data: *mut c_void, message: *const c_void) {
    if data.is_null() || message.is_null() {
        return;
    }
    // Nothing below should panic; if it ever did, unwinding into C would abort the process.
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: `data` is the `Messages` owned by the transaction being processed: it was
        // passed to `msc_new_transaction` by `Transaction::new`, lives until after
        // `msc_transaction_cleanup`, and the callback runs synchronously inside a call that
        // holds `&mut Transaction`, so no other reference to it exists meanwhile.
        let messages = unsafe { &mut *data.cast::<Messages>() };
        if messages.lines.len() >= MAX_MESSAGES {
            return;
        }
        // SAFETY: libmodsecurity passes a NUL-terminated string valid during the callback.
        let bytes = unsafe { CStr::from_ptr(message.cast::<c_char>()) }.to_bytes();
        let bytes = &bytes[..bytes.len().min(MAX_MESSAGE_BYTES)];
        messages
            .lines
            .push(String::from_utf8_lossy(bytes).into_owned());
    });
}

/// A compiled set of rules (`RulesSet`).
#[derive(Debug)]
pub(crate) struct RuleSet {
    ptr: NonNull<sys::RulesSet>,
}

// SAFETY: a `RulesSet` is only mutated through `&mut self` (while it is being built, under
// PARSER); once built it is read-only and shared by concurrent transactions, which is how
// every libmodsecurity connector uses it.
unsafe impl Send for RuleSet {}
// SAFETY: as above.
unsafe impl Sync for RuleSet {}

impl RuleSet {
    /// An empty rule set.
    pub(crate) fn new() -> Result<Self, String> {
        // The engine must exist before rules are parsed (it initialises the library).
        instance()?;
        // SAFETY: no preconditions; returns a new rule set or null.
        let raw = unsafe { sys::msc_create_rules_set() };
        NonNull::new(raw)
            .map(|ptr| Self { ptr })
            .ok_or_else(|| "libmodsecurity could not create a rule set".to_string())
    }

    /// Parses `rules` (ModSecurity's configuration language) into the set.
    pub(crate) fn add_rules(&mut self, rules: &str) -> Result<(), String> {
        let text = CString::new(rules).map_err(|_| "contains a NUL byte".to_string())?;
        self.load(|set, error| {
            // SAFETY: `set` is this live rule set, `text` a NUL-terminated string that
            // libmodsecurity only reads, `error` a valid out-pointer.
            unsafe { sys::msc_rules_add(set, text.as_ptr(), error) }
        })
    }

    /// Parses the rules of the file at `path` into the set.
    pub(crate) fn add_file(&mut self, path: &Path) -> Result<(), String> {
        let path = path
            .to_str()
            .and_then(|p| CString::new(p).ok())
            .ok_or_else(|| "not a UTF-8 path without NUL bytes".to_string())?;
        self.load(|set, error| {
            // SAFETY: as in `add_rules`, with the path in place of the rules.
            unsafe { sys::msc_rules_add_file(set, path.as_ptr(), error) }
        })
    }

    fn load(
        &mut self,
        add: impl FnOnce(*mut sys::RulesSet, *mut *const c_char) -> c_int,
    ) -> Result<(), String> {
        let _parser = PARSER
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut error: *const c_char = std::ptr::null();
        let added = add(self.ptr.as_ptr(), &mut error);
        // SAFETY: libmodsecurity sets `error` only to a `strdup`ed message we now own.
        let message = unsafe { take_c_string(error.cast_mut()) };
        if added < 0 {
            Err(message.unwrap_or_else(|| "libmodsecurity refused the rules".to_string()))
        } else {
            Ok(())
        }
    }
}

impl Drop for RuleSet {
    fn drop(&mut self) {
        let _parser = PARSER
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // SAFETY: the set is ours and unused: every transaction holds an `Arc<RuleSet>`, so
        // none is alive when the last reference drops it.
        unsafe { sys::msc_rules_cleanup(self.ptr.as_ptr()) };
    }
}

/// A disruptive action a rule took (`ModSecurityIntervention`), copied out of libmodsecurity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RawIntervention {
    pub(crate) status: i32,
    pub(crate) url: Option<String>,
    pub(crate) log: Option<String>,
}

/// One HTTP exchange under inspection (`Transaction`).
#[derive(Debug)]
pub(crate) struct Transaction {
    ptr: NonNull<sys::Transaction>,
    /// Where the log callback writes this transaction's rule messages (`Box::into_raw`,
    /// freed in `drop`); `None` when they are not wanted.
    messages: Option<NonNull<Messages>>,
    /// Keeps the rules alive for as long as the transaction.
    _rules: Arc<RuleSet>,
}

// SAFETY: a transaction is used through `&mut self` only, so by one thread at a time; it keeps
// no thread-affine state, and a connector may process successive phases on different
// threads. The message sink is owned by the transaction and moves with it.
unsafe impl Send for Transaction {}

impl Transaction {
    /// Starts a transaction on `rules`; with `keep_messages`, its rule messages are collected
    /// (for the audit log).
    pub(crate) fn new(rules: Arc<RuleSet>, keep_messages: bool) -> Result<Self, String> {
        let engine = instance()?;
        let messages = keep_messages.then(|| NonNull::from(Box::leak(Box::<Messages>::default())));
        let data = messages.map_or(std::ptr::null_mut(), |m| m.as_ptr().cast::<c_void>());
        // SAFETY: the engine lives for the process, the rules for as long as this transaction
        // (it holds the `Arc`); `data` is null or the sink this transaction frees only after
        // `msc_transaction_cleanup`.
        let raw = unsafe { sys::msc_new_transaction(engine.0.as_ptr(), rules.ptr.as_ptr(), data) };
        match NonNull::new(raw) {
            Some(ptr) => Ok(Self {
                ptr,
                messages,
                _rules: rules,
            }),
            None => {
                if let Some(m) = messages {
                    // SAFETY: leaked just above and never handed out (no transaction).
                    drop(unsafe { Box::from_raw(m.as_ptr()) });
                }
                Err("libmodsecurity could not start a transaction".to_string())
            }
        }
    }

    fn raw(&mut self) -> *mut sys::Transaction {
        self.ptr.as_ptr()
    }

    /// The connection's addresses (`msc_process_connection`).
    pub(crate) fn process_connection(
        &mut self,
        client: &str,
        client_port: u16,
        server: &str,
        server_port: u16,
    ) {
        let (Ok(client), Ok(server)) = (CString::new(client), CString::new(server)) else {
            return;
        };
        // SAFETY: live transaction; the strings are NUL-terminated and copied by the callee.
        unsafe {
            sys::msc_process_connection(
                self.raw(),
                client.as_ptr(),
                c_int::from(client_port),
                server.as_ptr(),
                c_int::from(server_port),
            )
        };
    }

    /// The request line (`msc_process_uri`): `version` is `1.1`, `2.0`, ...
    pub(crate) fn process_uri(&mut self, uri: &str, method: &str, version: &str) {
        let (Ok(uri), Ok(method), Ok(version)) = (
            CString::new(uri),
            CString::new(method),
            CString::new(version),
        ) else {
            return;
        };
        // SAFETY: live transaction; NUL-terminated strings copied by the callee.
        unsafe {
            sys::msc_process_uri(self.raw(), uri.as_ptr(), method.as_ptr(), version.as_ptr())
        };
    }

    /// One request header (any bytes).
    pub(crate) fn add_request_header(&mut self, name: &[u8], value: &[u8]) {
        // SAFETY: live transaction; pointer/length pairs of live slices, copied by the callee.
        unsafe {
            sys::msc_add_n_request_header(
                self.raw(),
                name.as_ptr(),
                name.len(),
                value.as_ptr(),
                value.len(),
            )
        };
    }

    /// Runs phase 1 (request headers).
    pub(crate) fn process_request_headers(&mut self) {
        // SAFETY: live transaction; the log callback may run (see `log_callback`).
        unsafe { sys::msc_process_request_headers(self.raw()) };
    }

    /// Appends request body bytes.
    pub(crate) fn append_request_body(&mut self, body: &[u8]) {
        // SAFETY: live transaction; a live slice, copied by the callee.
        unsafe { sys::msc_append_request_body(self.raw(), body.as_ptr(), body.len()) };
    }

    /// Runs phase 2 (request body).
    pub(crate) fn process_request_body(&mut self) {
        // SAFETY: live transaction.
        unsafe { sys::msc_process_request_body(self.raw()) };
    }

    /// One response header (any bytes).
    pub(crate) fn add_response_header(&mut self, name: &[u8], value: &[u8]) {
        // SAFETY: as in `add_request_header`.
        unsafe {
            sys::msc_add_n_response_header(
                self.raw(),
                name.as_ptr(),
                name.len(),
                value.as_ptr(),
                value.len(),
            )
        };
    }

    /// Runs phase 3 (response headers) for a response with `status`; `protocol` is e.g.
    /// `HTTP/1.1`.
    pub(crate) fn process_response_headers(&mut self, status: u16, protocol: &str) {
        let Ok(protocol) = CString::new(protocol) else {
            return;
        };
        // SAFETY: live transaction; a NUL-terminated string copied by the callee.
        unsafe {
            sys::msc_process_response_headers(self.raw(), c_int::from(status), protocol.as_ptr())
        };
    }

    /// Appends response body bytes.
    pub(crate) fn append_response_body(&mut self, body: &[u8]) {
        // SAFETY: live transaction; a live slice, copied by the callee.
        unsafe { sys::msc_append_response_body(self.raw(), body.as_ptr(), body.len()) };
    }

    /// Runs phase 4 (response body).
    pub(crate) fn process_response_body(&mut self) {
        // SAFETY: live transaction.
        unsafe { sys::msc_process_response_body(self.raw()) };
    }

    /// The pending disruptive action, if a rule took one (libmodsecurity reports it once).
    pub(crate) fn intervention(&mut self) -> Option<RawIntervention> {
        let mut it = sys::ModSecurityIntervention {
            status: 200,
            pause: 0,
            url: std::ptr::null_mut(),
            log: std::ptr::null_mut(),
            disruptive: 0,
        };
        // SAFETY: live transaction; `it` is a valid, initialised out-parameter.
        let disruptive = unsafe { sys::msc_intervention(self.raw(), &mut it) };
        // SAFETY: `url` and `log` are null or `strdup`ed for us by `msc_intervention`.
        let url = unsafe { take_c_string(it.url) };
        // SAFETY: as above.
        let log = unsafe { take_c_string(it.log) };
        (disruptive != 0 || it.disruptive != 0).then_some(RawIntervention {
            status: it.status,
            url,
            log,
        })
    }

    /// The rule messages logged so far (empty when they are not kept).
    pub(crate) fn take_messages(&mut self) -> Vec<String> {
        match self.messages {
            // SAFETY: the sink is ours; the callback only writes to it during calls that hold
            // `&mut self`, and this call holds it too.
            Some(m) => std::mem::take(&mut unsafe { &mut *m.as_ptr() }.lines),
            None => Vec::new(),
        }
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        // SAFETY: the transaction is ours and used by nothing else; after this call
        // libmodsecurity no longer refers to it or to its log callback data.
        unsafe { sys::msc_transaction_cleanup(self.ptr.as_ptr()) };
        if let Some(m) = self.messages.take() {
            // SAFETY: from `Box::leak` in `new`; nothing refers to it any more.
            drop(unsafe { Box::from_raw(m.as_ptr()) });
        }
    }
}
