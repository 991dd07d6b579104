//! The console in headless Chromium over WebDriver (Debian's chromium and chromium-driver,
//! started here): login wrong then right, pause with a reason and resume, run now in /runs, a
//! cross-site form POST refused, logout; an auditor sees no pause button and a forged POST is
//! refused. Writes a screenshot of the dashboard to target/console-dashboard.png.
//!
//! Without /usr/bin/chromedriver the test says so and passes, unless FAPIAO_REQUIRE_BROWSER=1
//! (`.ci/run` installs the packages and sets it).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{PASSWORD, world};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const DRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// chromedriver on a free loopback port, killed (by its own handle) when dropped.
struct Driver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn start_driver() -> Driver {
    let port = free_port();
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
    Driver { child, url: format!("http://127.0.0.1:{port}"), _profile: tempfile::tempdir().unwrap() }
}

async fn browser(driver: &Driver) -> Client {
    let profile = driver._profile.path().display().to_string();
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                "--disable-dev-shm-usage", "--window-size=1400,900", format!("--user-data-dir={profile}"),
            ]
        }
    });
    let serde_json::Value::Object(caps) = caps else { unreachable!() };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("WebDriver session")
}

async fn login(b: &Client, base: &str, name: &str, password: &str) {
    b.goto(&format!("{base}/login")).await.unwrap();
    b.find(Locator::Css("#username")).await.unwrap().send_keys(name).await.unwrap();
    b.find(Locator::Css("#password")).await.unwrap().send_keys(password).await.unwrap();
    b.find(Locator::Css("#login")).await.unwrap().click().await.unwrap();
}

async fn path(b: &Client) -> String {
    let url = b.current_url().await.unwrap();
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

async fn text(b: &Client, css: &str) -> String {
    b.wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A click that submits a form returns before the next page is there: wait for it.
async fn wait_path(b: &Client, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = path(b).await;
        if now == expected {
            return;
        }
        assert!(Instant::now() < deadline, "at {now}, expected {expected}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait until the element `css` (on the page now, or the next one) contains `needle`.
async fn wait_text(b: &Client, css: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found = match b.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if found.contains(needle) {
            return found;
        }
        assert!(Instant::now() < deadline, "{css} never contained {needle}: {found:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A page of another site: a form that posts to the console (the session cookie goes along:
/// 127.0.0.1 on another port is the same site, another origin).
async fn evil_site(console: &str) -> String {
    let page = format!(
        r#"<!DOCTYPE html><html><body><form method="post" action="{console}/jobs/fetch/pause">
           <input name="reason" value="hacked"><button id="go" type="submit">领奖</button></form></body></html>"#
    );
    let app =
        axum::Router::new().route("/", axum::routing::get(move || async move { axum::response::Html(page) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_chromium() {
    if !std::path::Path::new(DRIVER).exists() {
        assert!(
            std::env::var("FAPIAO_REQUIRE_BROWSER").is_err(),
            "{DRIVER} missing (apt-get install chromium chromium-driver)"
        );
        eprintln!("skipped: {DRIVER} missing (apt-get install chromium chromium-driver)");
        return;
    }
    let w = world().await;
    w.runs("fetch", 12).await;
    w.runs("deal-task", 5).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let server = tokio::spawn(fapiao_web::serve(listener, w.console.clone(), stop.clone()));
    let driver = start_driver().await;
    let b = browser(&driver).await;

    // Login: a wrong password, then the right one.
    login(&b, &base, "ops", "not-the-password").await;
    assert_eq!(text(&b, "#login-error").await, "用户名或密码错误");
    assert_eq!(path(&b).await, "/login");
    login(&b, &base, "ops", PASSWORD).await;
    wait_path(&b, "/").await;
    assert_eq!(text(&b, "#me").await, "ops");
    assert!(text(&b, "main").await.contains("待开发票"));

    // Pause fetch with a reason: paused, the reason shown; resume.
    b.goto(&format!("{base}/jobs")).await.unwrap();
    let row = b.find(Locator::Css("#job-fetch")).await.unwrap();
    row.find(Locator::Css("input[name=reason]")).await.unwrap().send_keys("核对税局接口").await.unwrap();
    row.find(Locator::Css("button.pause")).await.unwrap().click().await.unwrap();
    let status = wait_text(&b, "#job-fetch td.status", "已暂停").await;
    assert!(status.contains("核对税局接口"), "{status}");
    assert_eq!(path(&b).await, "/jobs");
    // The dashboard lists it with the reason; take its picture.
    b.goto(&format!("{base}/")).await.unwrap();
    assert!(text(&b, "#paused-jobs").await.contains("核对税局接口"));
    let png = b.screenshot().await.unwrap();
    let shot = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/console-dashboard.png");
    std::fs::write(&shot, png).unwrap();
    b.goto(&format!("{base}/jobs")).await.unwrap();
    b.find(Locator::Css("#job-fetch button.resume")).await.unwrap().click().await.unwrap();
    wait_text(&b, "#job-fetch td.status", "运行中").await;

    // Run now: the run is queued and shows in /runs.
    b.find(Locator::Css("#job-auto-issue button.run")).await.unwrap().click().await.unwrap();
    wait_path(&b, "/runs?job=auto-issue").await;
    let runs = text(&b, "#runs").await;
    assert!(runs.contains("auto-issue") && runs.contains("排队中") && runs.contains("手动"), "{runs}");

    // A form on another site posting to the console with the session cookie: refused.
    b.goto(&evil_site(&base).await).await.unwrap();
    b.find(Locator::Css("#go")).await.unwrap().click().await.unwrap();
    wait_text(&b, "#message", "跨站请求被拒绝").await;
    assert_eq!(w.scalar("SELECT count(*) FROM job_control WHERE paused").await, 0);

    // Logout ends the session.
    b.goto(&format!("{base}/jobs")).await.unwrap();
    b.find(Locator::Css("#logout")).await.unwrap().click().await.unwrap();
    wait_path(&b, "/login").await;
    b.goto(&format!("{base}/jobs")).await.unwrap();
    wait_path(&b, "/login").await;

    // An auditor: the jobs without buttons; a POST sent anyway is refused.
    login(&b, &base, "auditor", PASSWORD).await;
    wait_path(&b, "/").await;
    b.goto(&format!("{base}/jobs")).await.unwrap();
    assert!(b.find_all(Locator::Css("button.pause")).await.unwrap().is_empty());
    assert!(b.find_all(Locator::Css("button.run")).await.unwrap().is_empty());
    let status = b
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch('/jobs/fetch/pause', {method: 'POST', body: new URLSearchParams({reason: 'x'})})
               .then(r => done(r.status), e => done(String(e)));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(status, json!(403));
    assert_eq!(w.scalar("SELECT count(*) FROM job_control WHERE paused").await, 0);
    let refused =
        w.scalar("SELECT count(*) FROM audit_log WHERE actor = 'auditor' AND outcome = 'refused'").await;
    assert_eq!(refused, 1);

    b.close().await.unwrap();
    stop.cancel();
    server.await.unwrap().unwrap();
}
