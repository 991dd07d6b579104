//! Running the `fapiao` binary from tests.

#![allow(dead_code)] // each test file uses its own subset

use std::path::Path;
use std::process::{Command, Output};

/// `fapiao ARGS` against the database at `url`, with no embedded cluster involved.
pub fn fapiao_on(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fapiao"))
        .args(args)
        .env("DATABASE_URL", url)
        .env_remove("FAPIAO_CONFIG")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run fapiao")
}

/// `fapiao ARGS` on the embedded cluster of `home` (DATABASE_URL removed).
pub fn fapiao_home(home: &Path, args: &[&str]) -> Output {
    embedded_command(home, args).output().expect("run fapiao")
}

pub fn embedded_command(home: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fapiao"));
    c.args(args)
        .env("FAPIAO_HOME", home)
        .env_remove("DATABASE_URL")
        .env_remove("FAPIAO_CONFIG")
        .env("RUST_LOG", "warn");
    c
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
pub fn code(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed")
}
pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout(o)))
}
