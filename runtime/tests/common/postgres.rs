//! A real PostgreSQL server for the tests: Debian's `postgresql` binaries, a cluster of its
//! own in a temporary directory, listening on a free port of 127.0.0.1 only, started as the
//! unprivileged `postgres` user when the tests run as root (PostgreSQL refuses root).
//!
//! `initdb` runs once per test binary; each server copies that cluster and stops (`Drop`)
//! with its test. Without PostgreSQL the tests fail and say so: they never pass by skipping.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The superuser `initdb` creates, with trust authentication on 127.0.0.1 (a test cluster).
const SUPERUSER: &str = "sandgate";

pub struct Pg {
    dir: tempfile::TempDir,
    pub port: u16,
}

/// The directory of Debian's PostgreSQL binaries (the newest version installed).
fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort_by_key(|p| p.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()?.parse::<u32>().ok()));
    versions.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): the multi-node tests need a real \
             server. Install Debian's package: apt-get install postgresql (make test does when it can)"
        )
    })
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// Runs a PostgreSQL binary, as `postgres` when we are root.
fn run(program: &str, args: &[&str]) -> std::process::Output {
    let binary = bin_dir().join(program);
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&binary);
        c
    } else {
        Command::new(&binary)
    };
    cmd.args(args).stdin(Stdio::null());
    cmd.output().unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()))
}

fn give_to_postgres(path: &Path) {
    if is_root() {
        let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(path).status().unwrap();
        assert!(status.success(), "chown {} to postgres", path.display());
    }
}

/// One `initdb` per test binary: every server copies it.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<tempfile::TempDir> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let dir = tempfile::Builder::new().prefix("sandgate-pg-template").tempdir().unwrap();
            give_to_postgres(dir.path());
            let data = dir.path().join("data");
            let out = run(
                "initdb",
                &["-D", data.to_str().unwrap(), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync"],
            );
            assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
            dir
        })
        .path()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Pg {
    /// A fresh, empty cluster, started.
    pub fn start() -> Pg {
        let dir = tempfile::Builder::new().prefix("sandgate-pg").tempdir().unwrap();
        let status = Command::new("cp").arg("-a").arg(template().join("data")).arg(dir.path()).status().unwrap();
        assert!(status.success(), "copy the template cluster");
        give_to_postgres(dir.path());
        let pg = Pg { dir, port: free_port() };
        pg.up();
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the server (again), on the same port.
    pub fn up(&self) {
        let options = format!("-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''", self.port);
        let log = self.dir.path().join("log");
        let out = run(
            "pg_ctl",
            &["-D", self.data().to_str().unwrap(), "-l", log.to_str().unwrap(), "-o", &options, "-w", "start"],
        );
        assert!(
            out.status.success(),
            "PostgreSQL did not start: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Stops the server: `fast` closes every connection at once, as a restart does.
    pub fn down(&self) {
        let out = run("pg_ctl", &["-D", self.data().to_str().unwrap(), "-m", "fast", "-w", "stop"]);
        assert!(out.status.success(), "PostgreSQL did not stop: {}", String::from_utf8_lossy(&out.stderr));
    }

    pub fn url(&self) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/postgres", self.port)
    }

    /// A `[store]` section naming this server (tests that need a short resync add their own).
    pub fn toml(&self) -> String {
        format!("[store]\nurl = \"{}\"\n", self.url())
    }

    /// Runs SQL with `psql` (what an operator would do by hand).
    pub fn psql(&self, sql: &str) -> String {
        let out = run("psql", &["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", &self.url(), "-c", sql]);
        assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let _ = run("pg_ctl", &["-D", self.data().to_str().unwrap(), "-m", "immediate", "-w", "stop"]);
    }
}
