//! A real OpenLDAP `slapd` for one test: configured from a cn=config LDIF written to a temp
//! dir (mdb back end, the memberof overlay, the `cn=Monitor` database readable by the root
//! DN), started on a free loopback port (plain LDAP, or LDAP over TLS only), killed by PID on
//! drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::redis_server::{free_port, wait_until_listening};

/// The suffix of the test directory.
pub const SUFFIX: &str = "dc=solo,dc=io";
/// The directory's root DN and its password.
pub const ADMIN_DN: &str = "cn=admin,dc=solo,dc=io";
pub const ADMIN_PASSWORD: &str = "solopwd";
/// The only account (besides the root DN) allowed to read `memberOf` of every entry.
pub const READER_DN: &str = "cn=reader,dc=solo,dc=io";
pub const READER_PASSWORD: &str = "readerpwd";

fn env_path(name: &str) -> PathBuf {
    match std::env::var_os(name) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => panic!(
            "{name} is not set: these tests need OpenLDAP's slapd. Install it \
             (DEBIAN_FRONTEND=noninteractive apt-get install -y slapd ldap-utils) and export \
             GLOO_TEST_SLAPD=/usr/sbin/slapd GLOO_TEST_SLAPD_MODULES=/usr/lib/ldap \
             GLOO_TEST_SLAPD_SCHEMA=/etc/ldap/schema, or run scripts/test.sh"
        ),
    }
}

/// One `slapd`; killed (SIGKILL) and reaped on drop, its directory removed.
pub struct Slapd {
    child: Child,
    port: u16,
    scheme: &'static str,
    _dir: tempfile::TempDir,
}

impl Slapd {
    /// Starts an empty directory for [`SUFFIX`] with the memberof overlay. `acl` lines come
    /// first in the database's `olcAccess` (each `to ... by ...`); after them, passwords only
    /// authenticate and bound users read everything else.
    pub fn start(acl: &[&str]) -> Self {
        Self::start_with(acl, None)
    }

    /// Like [`Slapd::start`], listening for LDAP over TLS only (`ldaps://`), with the PEM
    /// certificate and key given.
    #[allow(dead_code)] // each test binary uses part of the helper
    pub fn start_ldaps(acl: &[&str], cert: &Path, key: &Path) -> Self {
        Self::start_with(acl, Some((cert, key)))
    }

    fn start_with(acl: &[&str], tls: Option<(&Path, &Path)>) -> Self {
        let slapd = env_path("GLOO_TEST_SLAPD");
        let modules = env_path("GLOO_TEST_SLAPD_MODULES");
        let schema = env_path("GLOO_TEST_SLAPD_SCHEMA");
        let dir = tempfile::tempdir().expect("tempdir");
        let config_dir = dir.path().join("slapd.d");
        let data_dir = dir.path().join("data");
        std::fs::create_dir_all(&config_dir).expect("mkdir slapd.d");
        std::fs::create_dir_all(&data_dir).expect("mkdir data");
        let mut access: Vec<String> = acl.iter().map(|a| (*a).to_owned()).collect();
        access.push("to attrs=userPassword by anonymous auth by * none".into());
        access.push("to * by users read by anonymous auth".into());
        let access: String = access
            .iter()
            .enumerate()
            .map(|(i, a)| format!("olcAccess: {{{i}}}{a}\n"))
            .collect();
        let tls_config = match tls {
            Some((cert, key)) => format!(
                "olcTLSCertificateFile: {}\nolcTLSCertificateKeyFile: {}\n",
                cert.display(),
                key.display()
            ),
            None => String::new(),
        };
        let ldif = format!(
            "dn: cn=config\nobjectClass: olcGlobal\ncn: config\n{tls_config}\n\
             dn: cn=module{{0}},cn=config\nobjectClass: olcModuleList\ncn: module{{0}}\n\
             olcModulePath: {modules}\nolcModuleLoad: back_mdb\nolcModuleLoad: memberof\n\n\
             dn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n\n\
             include: file://{schema}/core.ldif\n\n\
             include: file://{schema}/cosine.ldif\n\n\
             include: file://{schema}/inetorgperson.ldif\n\n\
             dn: olcDatabase={{-1}}frontend,cn=config\nobjectClass: olcDatabaseConfig\n\
             objectClass: olcFrontendConfig\nolcDatabase: {{-1}}frontend\n\n\
             dn: olcDatabase={{0}}config,cn=config\nobjectClass: olcDatabaseConfig\n\
             olcDatabase: {{0}}config\nolcAccess: {{0}}to * by * none\n\n\
             dn: olcDatabase={{1}}mdb,cn=config\nobjectClass: olcDatabaseConfig\n\
             objectClass: olcMdbConfig\nolcDatabase: {{1}}mdb\nolcSuffix: {SUFFIX}\n\
             olcRootDN: {ADMIN_DN}\nolcRootPW: {ADMIN_PASSWORD}\nolcDbDirectory: {data}\n\
             olcDbMaxSize: 10485760\n{access}\n\
             dn: olcOverlay={{0}}memberof,olcDatabase={{1}}mdb,cn=config\n\
             objectClass: olcOverlayConfig\nobjectClass: olcMemberOf\nolcOverlay: {{0}}memberof\n\
             olcMemberOfGroupOC: groupOfNames\nolcMemberOfMemberAD: member\n\
             olcMemberOfMemberOfAD: memberOf\n\n\
             dn: olcDatabase={{2}}monitor,cn=config\nobjectClass: olcDatabaseConfig\n\
             olcDatabase: {{2}}monitor\n\
             olcAccess: {{0}}to * by dn.exact=\"{ADMIN_DN}\" read by * none\n",
            modules = modules.display(),
            schema = schema.display(),
            data = data_dir.display(),
        );
        let ldif_path = dir.path().join("config.ldif");
        std::fs::write(&ldif_path, ldif).expect("write config.ldif");
        // `slapd -Ta` is slapadd: the cn=config database from the LDIF.
        let output = Command::new(&slapd)
            .arg("-Ta")
            .arg("-n0")
            .arg("-F")
            .arg(&config_dir)
            .arg("-l")
            .arg(&ldif_path)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", slapd.display()));
        assert!(
            output.status.success(),
            "slapadd of the config failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let port = free_port();
        let scheme = if tls.is_some() { "ldaps" } else { "ldap" };
        // `-d 0`: stay in the foreground (so the PID is slapd's), log nothing.
        let mut child = Command::new(&slapd)
            .arg("-h")
            .arg(format!("{scheme}://127.0.0.1:{port}/"))
            .arg("-F")
            .arg(&config_dir)
            .args(["-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", slapd.display()));
        wait_until_listening(&mut child, port, Duration::from_secs(10), "slapd");
        Self {
            child,
            port,
            scheme,
            _dir: dir,
        }
    }

    /// The server's `host:port`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `ldap://127.0.0.1:<port>` (`ldaps://` when it listens for TLS).
    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
