//! The private PostgreSQL cluster fapiao runs itself when no DATABASE_URL is given.
//!
//! Layout under `$FAPIAO_HOME/pg`: `data/` (PGDATA), `run/` (the unix socket; a short folder
//! under /tmp instead when the home path is too long for a socket), `server.log`, and
//! `cluster.lock`, which every start and stop holds so that two fapiao processes never
//! initialize or start the same cluster at once. No TCP port is opened.
//!
//! `initdb` and `postgres` refuse to run as root; as root the cluster runs as the unprivileged
//! `postgres` user (created by the server package) and its folders are owned by that user
//! (reference/postgres-embedded.md).

use std::fs::{self, File};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::binaries::ServerBinaries;

/// Environment variable naming fapiao's home folder; default `./.fapiao`.
pub const HOME_ENV: &str = "FAPIAO_HOME";
pub const DEFAULT_HOME: &str = ".fapiao";
/// The superuser initdb creates.
pub const SUPERUSER: &str = "postgres";
/// The unprivileged account the server runs as when fapiao runs as root.
pub const SERVER_ACCOUNT: &str = "postgres";
/// A unix socket path is limited to ~107 bytes including `/.s.PGSQL.5432`.
const MAX_SOCKET_DIR_LEN: usize = 90;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres, version {min} or later) were not found \
         on PATH, via `pg_config --bindir`, or in /usr/lib/postgresql/*/bin{detail}. Install the \
         server package (Debian/Ubuntu: `apt-get install postgresql`) or set DATABASE_URL to an \
         existing server.",
        min = crate::binaries::MIN_MAJOR,
        detail = too_old.as_ref().map(|t| format!(" ({t})")).unwrap_or_default()
    )]
    NoBinaries { too_old: Option<String> },
    #[error(
        "fapiao runs as root, and PostgreSQL refuses to; it needs the unprivileged user `{SERVER_ACCOUNT}` \
         (created by the server package: `apt-get install postgresql`)"
    )]
    NoServerAccount,
    #[error("{action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{command} failed ({status}): {detail}")]
    Command { command: String, status: String, detail: String },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ClusterError {
    let path = path.to_path_buf();
    move |source| ClusterError::Io { action, path, source }
}

/// The unprivileged account the server runs as (only when fapiao is root).
#[derive(Clone, Copy, Debug)]
struct ServerAccount {
    uid: u32,
    gid: u32,
}

impl ServerAccount {
    fn for_current_process() -> Result<Option<ServerAccount>, ClusterError> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Ok(None);
        }
        let name = std::ffi::CString::new(SERVER_ACCOUNT).expect("no NUL");
        // SAFETY: getpwnam returns a pointer to static storage or NULL; we copy out at once.
        let entry = unsafe { libc::getpwnam(name.as_ptr()) };
        if entry.is_null() {
            return Err(ClusterError::NoServerAccount);
        }
        // SAFETY: `entry` is not NULL (checked above) and points to getpwnam's passwd record,
        // valid until the next getpw* call; both fields are copied out here.
        let (uid, gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
        Ok(Some(ServerAccount { uid, gid }))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOutcome {
    AlreadyRunning,
    Started { initialized: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    NotRunning,
    Stopped,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub running: bool,
    pub initialized: bool,
    pub pid: Option<u32>,
    pub data_dir: PathBuf,
    pub socket_dir: PathBuf,
    pub log_file: PathBuf,
}

/// A private cluster, located by fapiao's home folder.
#[derive(Debug, Clone)]
pub struct Cluster {
    home: PathBuf,
    data: PathBuf,
    socket_dir: PathBuf,
}

impl Cluster {
    /// The cluster of `$FAPIAO_HOME` (default `./.fapiao`).
    pub fn from_env() -> Result<Cluster, ClusterError> {
        let home =
            std::env::var_os(HOME_ENV).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(DEFAULT_HOME));
        Cluster::at(&home)
    }

    /// The cluster under `fapiao_home/pg`. Creates the home folder so its path can be made absolute.
    pub fn at(fapiao_home: &Path) -> Result<Cluster, ClusterError> {
        fs::create_dir_all(fapiao_home).map_err(io("create", fapiao_home))?;
        let fapiao_home = fapiao_home.canonicalize().map_err(io("resolve", fapiao_home))?;
        let home = fapiao_home.join("pg");
        let mut socket_dir = home.join("run");
        if socket_dir.as_os_str().len() > MAX_SOCKET_DIR_LEN {
            socket_dir =
                PathBuf::from(format!("/tmp/fapiao-{:016x}", fnv1a(home.as_os_str().as_encoded_bytes())));
        }
        Ok(Cluster { data: home.join("data"), home, socket_dir })
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }
    /// The server's log (pg_ctl -l): where to look when the database went away.
    pub fn log_file(&self) -> PathBuf {
        self.home.join("server.log")
    }

    /// The URL of database `db` on this cluster (a unix socket, no password).
    pub fn url(&self, db: &str) -> String {
        // `localhost` is a placeholder the `host` parameter overrides: the connection is the socket.
        format!("postgresql://{SUPERUSER}@localhost/{db}?host={}", encode_path(&self.socket_dir))
    }

    /// Start the cluster, creating it the first time. Safe to call from several processes at once.
    pub fn start(&self) -> Result<StartOutcome, ClusterError> {
        let account = ServerAccount::for_current_process()?;
        let bins = ServerBinaries::locate()?;
        self.prepare_folders(account)?;
        let _lock = self.lock()?;
        if self.is_running(&bins, account)? {
            return Ok(StartOutcome::AlreadyRunning);
        }
        let initialized = self.initialize_once(&bins, account)?;
        self.prepare_socket_dir(account)?;
        // Batch work: room for a million-row move between checkpoints and a working set in memory.
        let options = format!(
            "-k {} -c listen_addresses='' -c unix_socket_permissions=0700 \
             -c shared_buffers=512MB -c max_wal_size=4GB -c checkpoint_timeout=15min",
            shell_quote(&self.socket_dir)
        );
        let log = self.log_file();
        let result = self.run(&bins, account, "pg_ctl", |c| {
            c.arg("start")
                .arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "120", "-o"])
                .arg(&options)
        });
        if let Err(ClusterError::Command { command, status, detail }) = result {
            let tail = fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(8).collect::<Vec<_>>().into_iter().rev().collect();
            return Err(ClusterError::Command {
                command,
                status,
                detail: format!("{detail}\n{}", tail.join("\n")),
            });
        }
        result?;
        tracing::info!(data_dir = %self.data.display(), socket = %self.socket_dir.display(), initialized, "embedded PostgreSQL started");
        Ok(StartOutcome::Started { initialized })
    }

    pub fn stop(&self) -> Result<StopOutcome, ClusterError> {
        if !self.data.join("PG_VERSION").exists() {
            return Ok(StopOutcome::NotRunning);
        }
        let account = ServerAccount::for_current_process()?;
        let bins = ServerBinaries::locate()?;
        let _lock = self.lock()?;
        if !self.is_running(&bins, account)? {
            return Ok(StopOutcome::NotRunning);
        }
        self.run(&bins, account, "pg_ctl", |c| {
            c.arg("stop").arg("-D").arg(&self.data).args(["-m", "fast", "-w", "-t", "120"])
        })?;
        tracing::info!(data_dir = %self.data.display(), "embedded PostgreSQL stopped");
        Ok(StopOutcome::Stopped)
    }

    pub fn status(&self) -> Result<Status, ClusterError> {
        let initialized = self.data.join("PG_VERSION").exists();
        let running = initialized && {
            let account = ServerAccount::for_current_process()?;
            self.is_running(&ServerBinaries::locate()?, account)?
        };
        let pid = running
            .then(|| fs::read_to_string(self.data.join("postmaster.pid")).ok())
            .flatten()
            .and_then(|s| s.lines().next()?.trim().parse().ok());
        Ok(Status {
            running,
            initialized,
            pid,
            data_dir: self.data.clone(),
            socket_dir: self.socket_dir.clone(),
            log_file: self.log_file(),
        })
    }

    fn is_running(
        &self,
        bins: &ServerBinaries,
        account: Option<ServerAccount>,
    ) -> Result<bool, ClusterError> {
        if !self.data.join("PG_VERSION").exists() {
            return Ok(false);
        }
        // pg_ctl status: 0 running, 3 not running, 4 no accessible data directory.
        let out = self.command(bins, account, "pg_ctl").arg("status").arg("-D").arg(&self.data).output();
        let out = out.map_err(io("run pg_ctl status for", &self.data))?;
        match out.status.code() {
            Some(0) => Ok(true),
            Some(3) => Ok(false),
            _ => Err(command_error("pg_ctl status", &out)),
        }
    }

    /// initdb into `data.init`, then rename: a crash mid-initdb never leaves a half-made `data`.
    fn initialize_once(
        &self,
        bins: &ServerBinaries,
        account: Option<ServerAccount>,
    ) -> Result<bool, ClusterError> {
        if self.data.join("PG_VERSION").exists() {
            return Ok(false);
        }
        let staging = self.home.join("data.init");
        if staging.exists() {
            fs::remove_dir_all(&staging).map_err(io("remove", &staging))?;
        }
        if self.data.exists() {
            // A `data` without PG_VERSION is not a cluster we made; refuse to touch it.
            return Err(ClusterError::Io {
                action: "refusing to initialize over",
                path: self.data.clone(),
                source: std::io::Error::other("folder exists but holds no cluster (no PG_VERSION)"),
            });
        }
        self.run(bins, account, "initdb", |c| {
            c.arg("-D").arg(&staging).args(["-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--locale=C"])
        })?;
        fs::rename(&staging, &self.data).map_err(io("rename initialized cluster to", &self.data))?;
        tracing::info!(data_dir = %self.data.display(), major = bins.major, "initialized embedded PostgreSQL cluster");
        Ok(true)
    }

    fn prepare_folders(&self, account: Option<ServerAccount>) -> Result<(), ClusterError> {
        fs::create_dir_all(&self.home).map_err(io("create", &self.home))?;
        if let Some(a) = account {
            chown(&self.home, a)?;
            make_ancestors_traversable(&self.home)?;
        }
        Ok(())
    }

    fn prepare_socket_dir(&self, account: Option<ServerAccount>) -> Result<(), ClusterError> {
        let dir = &self.socket_dir;
        fs::create_dir_all(dir).map_err(io("create", dir))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io("set permissions of", dir))?;
        if let Some(a) = account {
            chown(dir, a)?;
        }
        Ok(())
    }

    /// An exclusive lock on `cluster.lock`, released when the file is dropped.
    fn lock(&self) -> Result<File, ClusterError> {
        let path = self.home.join("cluster.lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io("open", &path))?;
        file.lock().map_err(io("lock", &path))?;
        Ok(file)
    }

    fn command(&self, bins: &ServerBinaries, account: Option<ServerAccount>, tool: &str) -> Command {
        let mut c = Command::new(bins.tool(tool));
        // The server user may not be able to enter the caller's working directory.
        c.current_dir(&self.home);
        if let Some(a) = account {
            c.uid(a.uid).gid(a.gid);
        }
        c
    }

    fn run(
        &self,
        bins: &ServerBinaries,
        account: Option<ServerAccount>,
        tool: &str,
        args: impl FnOnce(&mut Command) -> &mut Command,
    ) -> Result<(), ClusterError> {
        let mut cmd = self.command(bins, account, tool);
        args(&mut cmd);
        let out = cmd.output().map_err(io("run", &bins.tool(tool)))?;
        if out.status.success() { Ok(()) } else { Err(command_error(tool, &out)) }
    }
}

fn command_error(command: &str, out: &Output) -> ClusterError {
    let mut detail = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if detail.is_empty() {
        detail = String::from_utf8_lossy(&out.stdout).trim().to_string();
    }
    ClusterError::Command { command: command.into(), status: out.status.to_string(), detail }
}

fn chown(path: &Path, a: ServerAccount) -> Result<(), ClusterError> {
    std::os::unix::fs::chown(path, Some(a.uid), Some(a.gid)).map_err(io("change owner of", path))
}

/// The server user must be able to walk down to its folder: add the search bit (o+x, which
/// does not allow listing) to ancestors that lack it, e.g. a 0700 temporary folder.
fn make_ancestors_traversable(path: &Path) -> Result<(), ClusterError> {
    for dir in path.ancestors().skip(1) {
        let meta = fs::metadata(dir).map_err(io("inspect", dir))?;
        let mode = meta.mode();
        if mode & 0o001 == 0 {
            tracing::warn!(folder = %dir.display(), "adding o+x so the PostgreSQL server user can reach its data folder");
            fs::set_permissions(dir, fs::Permissions::from_mode((mode | 0o001) & 0o7777))
                .map_err(io("set permissions of", dir))?;
        }
    }
    Ok(())
}

/// Quote for the shell that pg_ctl hands `-o` options to.
fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// Percent-encode a socket path for the `host=` query parameter.
fn encode_path(path: &Path) -> String {
    let mut out = String::new();
    for b in path.as_os_str().as_encoded_bytes() {
        match *b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                out.push(*b as char)
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// A hash that is the same in every build (std's hasher is not guaranteed to be).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100000001b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_homes_get_a_short_socket_folder_named_by_a_stable_hash() {
        let long = std::env::temp_dir().join("fapiao-cluster-test").join("x".repeat(100));
        let c = Cluster::at(&long).unwrap();
        assert!(c.socket_dir().to_string_lossy().starts_with("/tmp/fapiao-"));
        assert_eq!(c.socket_dir(), Cluster::at(&long).unwrap().socket_dir());
        let short = std::env::temp_dir().join("fapiao-cluster-test-short");
        assert!(Cluster::at(&short).unwrap().socket_dir().ends_with("pg/run"));
    }

    #[test]
    fn urls_name_the_socket_folder() {
        let c = Cluster { home: "/h/pg".into(), data: "/h/pg/data".into(), socket_dir: "/h a/pg/run".into() };
        assert_eq!(c.url("fapiao"), "postgresql://postgres@localhost/fapiao?host=/h%20a/pg/run");
        assert_eq!(shell_quote(Path::new("/it's")), r"'/it'\''s'");
    }
}
