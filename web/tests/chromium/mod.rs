//! Headless Chromium over WebDriver for the browser tests (Debian's chromium and chromium-driver;
//! as root Chromium needs the flags below and a fresh profile — see the env notes): chromedriver
//! on a free loopback port, a session on a desktop window or a phone's viewport, screenshots
//! under `target/`. Without chromedriver a test is skipped, unless FAPIAO_REQUIRE_BROWSER is set
//! (`.ci/run` installs the packages and sets it).

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::json;

pub const DRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// Whether the browser is here; without it the test is skipped, unless it is required.
pub fn available() -> bool {
    if std::path::Path::new(DRIVER).exists() {
        return true;
    }
    assert!(
        std::env::var("FAPIAO_REQUIRE_BROWSER").is_err(),
        "{DRIVER} missing (apt-get install chromium chromium-driver)"
    );
    eprintln!("skipped: {DRIVER} missing (apt-get install chromium chromium-driver)");
    false
}

/// chromedriver on a free loopback port, killed (by its own handle) when dropped.
pub struct Driver {
    child: Child,
    pub url: String,
    profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn start() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(DRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen on {port}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Driver { child, url: format!("http://127.0.0.1:{port}"), profile: tempfile::tempdir().unwrap() }
}

/// What the page is shown on.
pub enum Screen {
    /// A 1400 × 900 window.
    Desktop,
    /// A 360 × 740 phone (mobile emulation: the viewport, not only the window).
    Phone,
}

pub async fn browser(driver: &Driver, screen: Screen) -> Client {
    let mut args = vec![
        "--headless".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--no-first-run".into(),
        "--disable-quic".into(),
        "--disable-dev-shm-usage".into(),
        format!("--user-data-dir={}", driver.profile.path().display()),
    ];
    let mut options = json!({ "binary": CHROMIUM });
    match screen {
        Screen::Desktop => args.push("--window-size=1400,900".into()),
        Screen::Phone => {
            options["mobileEmulation"] =
                json!({ "deviceMetrics": { "width": 360, "height": 740, "pixelRatio": 2.0 } })
        }
    }
    options["args"] = json!(args);
    let serde_json::Value::Object(caps) = json!({ "browserName": "chrome", "goog:chromeOptions": options })
    else {
        unreachable!()
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("WebDriver session")
}

/// Where a screenshot goes: `target/NAME` (not committed; look at it).
pub fn shot(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target").join(name)
}
