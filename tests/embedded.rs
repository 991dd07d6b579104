//! The private cluster: start, stop, status and start-on-demand through the binary, each test
//! with a fresh FAPIAO_HOME (a real initdb and a real server).

mod common;

use std::path::{Path, PathBuf};

use common::{code, embedded_command, fapiao_home, json, stderr, stdout};

/// A fresh FAPIAO_HOME whose cluster is stopped and removed when the test ends.
struct Home(tempfile::TempDir);

impl Home {
    fn new() -> Home {
        // Under /tmp, so the socket path stays short.
        Home(tempfile::Builder::new().prefix("fapiao-home-").tempdir_in("/tmp").unwrap())
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = fapiao_home(self.path(), &["db", "stop"]);
    }
}

fn running(home: &Path) -> bool {
    let out = fapiao_home(home, &["--json", "db", "status"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    json(&out)["status"]["running"].as_bool().unwrap()
}

#[test]
fn start_twice_stop_then_any_command_starts_it_again() {
    let home = Home::new();
    assert!(!running(home.path()));

    let first = fapiao_home(home.path(), &["--json", "db", "start"]);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    assert_eq!(json(&first)["action"], "started");
    assert_eq!(json(&first)["initialized"], true);

    let second = fapiao_home(home.path(), &["--json", "db", "start"]);
    assert_eq!(code(&second), 0, "{}", stderr(&second));
    assert_eq!(json(&second)["action"], "already_running");
    assert!(running(home.path()));

    let stop = fapiao_home(home.path(), &["db", "stop"]);
    assert_eq!(code(&stop), 0, "{}", stderr(&stop));
    assert_eq!(stdout(&stop).trim(), "stopped");
    assert!(!running(home.path()));
    assert_eq!(stdout(&fapiao_home(home.path(), &["db", "stop"])).trim(), "not running");

    // A command that needs the database starts it on demand; data survived the stop.
    let set = fapiao_home(home.path(), &["param", "set", "rim_config", "rim_config_sync_his", "0"]);
    assert_eq!(code(&set), 0, "{}", stderr(&set));
    fapiao_home(home.path(), &["db", "stop"]);
    let get = fapiao_home(home.path(), &["param", "get", "rim_config", "rim_config_sync_his"]);
    assert_eq!(stdout(&get).trim(), "0", "{}", stderr(&get));
    assert!(running(home.path()));

    let url = fapiao_home(home.path(), &["db", "url"]);
    let socket_dir: PathBuf = home.path().canonicalize().unwrap().join("pg/run");
    assert!(stdout(&url).contains(socket_dir.to_str().unwrap()), "{}", stdout(&url));
}

#[test]
fn two_processes_starting_at_once_both_succeed_and_share_one_cluster() {
    let home = Home::new();
    let children: Vec<_> = (0..3)
        .map(|_| {
            embedded_command(home.path(), &["--json", "db", "start"])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    for o in &outputs {
        assert_eq!(code(o), 0, "{}", stderr(o));
    }
    let initialized = outputs.iter().filter(|o| json(o)["initialized"] == true).count();
    let started = outputs.iter().filter(|o| json(o)["action"] == "started").count();
    assert_eq!((initialized, started), (1, 1));
    // And it works: the demo runs on it.
    let demo = fapiao_home(home.path(), &["demo"]);
    assert_eq!(code(&demo), 0, "{}", stderr(&demo));
}

#[test]
fn missing_server_binaries_give_one_clear_error() {
    let home = Home::new();
    let out = embedded_command(home.path(), &["param", "list"])
        .env("FAPIAO_PG_BINDIR", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert!(err.contains("apt-get install postgresql") && err.contains("DATABASE_URL"), "{err}");
}

#[tokio::test]
async fn the_cluster_killed_mid_import_is_reported_once_as_unavailable_and_the_next_command_restarts_it() {
    let home = Home::new();
    let add = fapiao_home(
        home.path(),
        &["enterprise", "add", "--tax-no", "91310000MA1FL2AB09", "--name", "卖方", "--etax-account", "a"],
    );
    assert_eq!(code(&add), 0, "{}", stderr(&add));
    let file = home.path().join("big.xlsx");
    fapiao_pipelines::import::sample::write_xlsx(
        &file,
        "K",
        150_000,
        "91310000MA1FL2AB09",
        "92440300MA5DXY7K3W",
        &[],
    )
    .unwrap();
    let url = stdout(&fapiao_home(home.path(), &["db", "url"])).trim().to_string();
    let watcher = sqlx::PgPool::connect(&url).await.unwrap();
    let child = embedded_command(
        home.path(),
        &["--json", "import", file.to_str().unwrap(), "--kind", "applications"],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    // Once the import is copying, the server dies (SIGKILL to the postmaster).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let busy: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'COPY import_stage%'",
        )
        .fetch_one(&watcher)
        .await
        .unwrap();
        if busy > 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the import never started copying");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let pid_file = home.path().canonicalize().unwrap().join("pg/data/postmaster.pid");
    let pid: i32 = std::fs::read_to_string(pid_file).unwrap().lines().next().unwrap().trim().parse().unwrap();
    // SAFETY: kill(2) on a process id read from the server's own pid file; no memory involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    drop(watcher);

    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let error = &json(&out)["error"];
    assert_eq!(error["code"], "DATABASE_UNAVAILABLE", "{}", stderr(&out));
    let message = error["message"].as_str().unwrap();
    assert!(message.starts_with("数据库不可用") && message.contains("server.log"), "{message}");
    assert_eq!(stderr(&out).matches("数据库不可用").count(), 1, "said once: {}", stderr(&out));

    // The next command starts the cluster again; the interrupted import left nothing behind.
    let history = fapiao_home(home.path(), &["--json", "import", "history"]);
    assert_eq!(code(&history), 0, "{}", stderr(&history));
    assert_eq!(json(&history).as_array().map(Vec::len), Some(0), "{}", stdout(&history));
}
