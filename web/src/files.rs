//! What the background pages share: where uploads and exports go under `$FAPIAO_HOME`, the live
//! progress of a task running in this process, and a file streamed back from disk.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use fapiao_usecases::tasks::{self, Task};

use crate::Console;
use crate::auth::{Perm, Viewer};
use crate::pages::{error_page, internal};

/// The content type of the xlsx reports.
pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// A task's progress fragment, the part htmx polls; once the task has ended, `HX-Refresh` makes
/// htmx load the whole page (its outcome).
pub fn progress_fragment(fragment: impl IntoResponse, task: &Task) -> Response {
    let mut res = fragment.into_response();
    if task.state != "running" {
        res.headers_mut().insert("hx-refresh", HeaderValue::from_static("true"));
    }
    res
}

/// Task `id` of one of `kinds`, if `v` has `perm` and the task lies in their scope; else 403, or
/// 404 saying `missing` (another scope's task is not said to exist).
pub async fn visible_task(
    c: &Console,
    v: &Viewer,
    id: &str,
    perm: Perm,
    kinds: &[&str],
    missing: &str,
) -> Result<Task, Response> {
    v.require(perm)?;
    let missing = || error_page(StatusCode::NOT_FOUND, missing);
    let id: i64 = id.parse().map_err(|_| missing())?;
    match tasks::get(&c.app, id).await {
        Ok(Some(t)) if kinds.contains(&t.kind.as_str()) && t.visible_to(v.scope()) => Ok(t),
        Ok(_) => Err(missing()),
        Err(e) => Err(internal(e)),
    }
}

/// Run task `id` in the background: its live progress starts at `step` and is handed to `run`;
/// it ends with the task (`run` records the outcome; a failure to record it is logged).
pub fn spawn<F, Fut>(console: Arc<Console>, id: i64, step: &str, run: F)
where
    F: FnOnce(Arc<Console>, Arc<Live>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = fapiao_usecases::Result<()>> + Send + 'static,
{
    let live = console.running.start(id);
    live.set_step(step);
    tokio::spawn(async move {
        if let Err(e) = run(console.clone(), live).await {
            tracing::error!(task = id, error = %e, "console task not recorded");
        }
        console.running.end(id);
    });
}

/// `$FAPIAO_HOME/console` (default `.fapiao/console`).
pub fn default_root() -> PathBuf {
    std::env::var_os("FAPIAO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".fapiao"))
        .join("console")
}

/// A folder of its own for one upload or export: unique in this process and across processes
/// sharing the home (time, process id, a counter).
pub fn new_folder(root: &Path, what: &str) -> std::io::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = root.join(what).join(format!("{nanos}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// An uploaded file's name made safe to be a file name here: its last path component, without
/// control characters, at most 120 characters; `upload.xlsx` when nothing is left.
pub fn safe_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last.chars().filter(|c| !c.is_control()).take(120).collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_string();
    if cleaned.is_empty() { "upload.xlsx".into() } else { cleaned }
}

/// How far a task running in this process has come: rows read (imports), the step (both).
#[derive(Default)]
pub struct Live {
    pub rows: AtomicU64,
    pub step: Mutex<String>,
}

impl Live {
    pub fn set_step(&self, step: &str) {
        if let Ok(mut s) = self.step.lock() {
            *s = step.to_string();
        }
    }

    pub fn step(&self) -> String {
        self.step.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// The tasks running in this process, by task id.
#[derive(Default)]
pub struct Running(Mutex<HashMap<i64, Arc<Live>>>);

impl Running {
    pub fn start(&self, id: i64) -> Arc<Live> {
        let live = Arc::new(Live::default());
        if let Ok(mut m) = self.0.lock() {
            m.insert(id, live.clone());
        }
        live
    }

    pub fn get(&self, id: i64) -> Option<Arc<Live>> {
        self.0.lock().ok().and_then(|m| m.get(&id).cloned())
    }

    /// How far task `id` is, if it runs in this process: rows (or items) done and its step;
    /// `(0, "")` otherwise.
    pub fn progress(&self, id: i64) -> (u64, String) {
        self.get(id).map(|l| (l.rows.load(Ordering::Relaxed), l.step())).unwrap_or_default()
    }

    pub fn end(&self, id: i64) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(&id);
        }
    }
}

/// Percent-encode a file name for `filename*=UTF-8''…`.
fn rfc5987(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `path` streamed back as a download named `name` (never read whole into memory).
pub async fn download(path: &Path, name: &str, content_type: &'static str) -> Response {
    let file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(_) => return error_page(StatusCode::NOT_FOUND, "文件不存在或已被清理"),
    };
    let len = file.metadata().await.map(|m| m.len()).ok();
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(len) = len {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    let disposition = format!("attachment; filename=\"download\"; filename*=UTF-8''{}", rfc5987(name));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploaded_names_cannot_leave_their_folder() {
        assert_eq!(safe_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_name("C:\\Users\\li\\开票申请.xlsx"), "开票申请.xlsx");
        assert_eq!(safe_name(".."), "upload.xlsx");
        assert_eq!(safe_name("a\u{0}b.csv"), "ab.csv");
        assert_eq!(safe_name(""), "upload.xlsx");
    }
}
