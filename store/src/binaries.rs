//! Finding the machine's PostgreSQL server binaries (initdb, pg_ctl, postgres ≥ 14).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cluster::ClusterError;

/// Oldest server major version fapiao runs.
pub const MIN_MAJOR: u32 = 14;
/// Set to a folder to use only the binaries there.
pub const BINDIR_ENV: &str = "FAPIAO_PG_BINDIR";

const NEEDED: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

#[derive(Clone, Debug)]
pub struct ServerBinaries {
    pub bin_dir: PathBuf,
    pub major: u32,
}

impl ServerBinaries {
    pub fn tool(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    /// Look in `$FAPIAO_PG_BINDIR` only if set; otherwise on PATH, then `pg_config --bindir`,
    /// then Debian's `/usr/lib/postgresql/<major>/bin`, newest first.
    pub fn locate() -> Result<ServerBinaries, ClusterError> {
        let candidates: Vec<PathBuf> = match std::env::var_os(BINDIR_ENV) {
            Some(dir) => vec![PathBuf::from(dir)],
            None => path_dirs().into_iter().chain(pg_config_bindir()).chain(debian_bindirs()).collect(),
        };
        let mut too_old = None;
        for dir in candidates {
            if !NEEDED.iter().all(|tool| dir.join(tool).is_file()) {
                continue;
            }
            match server_major(&dir) {
                Some(major) if major >= MIN_MAJOR => return Ok(ServerBinaries { bin_dir: dir, major }),
                Some(major) => too_old = Some(format!("{} is version {major}", dir.display())),
                None => {}
            }
        }
        Err(ClusterError::NoBinaries { too_old })
    }
}

fn path_dirs() -> Vec<PathBuf> {
    std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default()
}

fn pg_config_bindir() -> Option<PathBuf> {
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    out.status.success().then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn debian_bindirs() -> Vec<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.0));
    dirs.into_iter().map(|(_, d)| d).collect()
}

/// `pg_ctl --version` prints e.g. `pg_ctl (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`.
fn server_major(dir: &Path) -> Option<u32> {
    let out = Command::new(dir.join("pg_ctl")).arg("--version").output().ok()?;
    parse_major(&String::from_utf8_lossy(&out.stdout))
}

fn parse_major(version_line: &str) -> Option<u32> {
    let after = version_line.split(')').nth(1)?.trim();
    after.split(['.', ' ']).next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!(parse_major("pg_ctl (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"), Some(15));
        assert_eq!(parse_major("pg_ctl (PostgreSQL) 17devel"), None);
        assert_eq!(parse_major("pg_ctl (PostgreSQL) 16.2"), Some(16));
    }
}
