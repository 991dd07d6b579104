//! The console's router on a real database, without a browser: every route × every role
//! (allowed, or 403), tenant scope on every list, sessions, login throttling, CSRF, headers,
//! forms with bad input, keyset pages.

mod common;

use std::collections::HashSet;

use axum::http::StatusCode;
use common::{A, B, PASSWORD, USERS, world};

const GETS: [(&str, &[&str]); 6] = [
    ("/", &["admin", "ops", "finance", "auditor", "auditor_a", "finance_b"]),
    ("/jobs", &["admin", "ops", "auditor", "auditor_a"]),
    ("/runs", &["admin", "ops", "auditor", "auditor_a"]),
    ("/runs/RUN", &["admin", "ops", "auditor", "auditor_a"]),
    ("/params", &["admin", "ops", "auditor", "auditor_a"]),
    ("/audit", &["admin", "auditor", "auditor_a"]),
];

const POSTS: [(&str, &str, &[&str]); 6] = [
    ("/sync/reset-start", "scheme=S-A&start=2026-10-01", &["admin", "ops"]),
    ("/sync/retry", "tax_no=&from=&to=", &["admin", "ops"]),
    ("/jobs/fetch/pause", "reason=%E7%BB%B4%E6%8A%A4", &["admin", "ops"]),
    ("/jobs/fetch/resume", "", &["admin", "ops"]),
    ("/jobs/auto-issue/run", "", &["admin", "ops"]),
    ("/params", "type=rim_config&key=key_element_check&value=0", &["admin"]),
];

#[tokio::test]
async fn every_route_answers_every_role_or_refuses_with_403() {
    let w = world().await;
    w.runs("fetch", 3).await;
    let run_id = w.scalar("SELECT max(id) FROM job_run").await;
    for (name, _, _) in USERS {
        let cookie = w.login(name).await;
        for (path, allowed) in GETS {
            let path = path.replace("RUN", &run_id.to_string());
            let a = w.send("GET", &path, Some(&cookie), None).await;
            let expected = if allowed.contains(&name) { StatusCode::OK } else { StatusCode::FORBIDDEN };
            assert_eq!(a.status, expected, "GET {path} as {name}");
        }
        for (path, form, allowed) in POSTS {
            let a = w.send("POST", path, Some(&cookie), Some(form)).await;
            if allowed.contains(&name) {
                // A second run now while the first is queued is a conflict, not a refusal.
                assert!(
                    a.status == StatusCode::SEE_OTHER
                        || (path.ends_with("/run") && a.status == StatusCode::CONFLICT),
                    "POST {path} as {name}: {} {}",
                    a.status,
                    a.body
                );
            } else {
                assert_eq!(a.status, StatusCode::FORBIDDEN, "POST {path} as {name}");
            }
        }
    }
    // Refusals changed nothing and are in the audit log.
    assert_eq!(w.scalar("SELECT count(*) FROM job_run WHERE trigger = 'manual'").await, 1);
    let refused = w
        .scalar("SELECT count(*) FROM audit_log WHERE outcome = 'refused' AND action IN ('job.pause', 'job.resume', 'job.run', 'param.set')")
        .await;
    // finance, auditor, auditor_a, finance_b × 4 posts, ops × the parameter, and ops's run now
    // while admin's was queued.
    assert_eq!(refused, 4 * 4 + 1 + 1);
}

#[tokio::test]
async fn without_a_session_pages_send_to_the_login_and_actions_are_refused() {
    let w = world().await;
    for (path, _) in GETS {
        let a = w.send("GET", &path.replace("RUN", "1"), None, None).await;
        assert_eq!((a.status, a.location.as_str()), (StatusCode::SEE_OTHER, "/login"), "GET {path}");
    }
    for (path, form, _) in POSTS {
        let a = w.send("POST", path, None, Some(form)).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "POST {path}");
    }
    let a = w.send("POST", "/logout", Some("fapiao_session=forged"), None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(w.send("GET", "/healthz", None, None).await.body, "ok");
    let login = w.send("GET", "/login", None, None).await;
    assert!(login.body.contains(r#"name="username""#) && login.body.contains(r#"name="password""#));
    assert_eq!(w.scalar("SELECT count(*) FROM job_control").await, 0);
}

#[tokio::test]
async fn a_user_scoped_to_one_enterprise_never_sees_anothers_rows() {
    let w = world().await;
    // Dashboard: pending invoices of A only (113.00), not B's (222.22); imports hidden.
    let a_user = w.login("auditor_a").await;
    let page = w.send("GET", "/", Some(&a_user), None).await.body;
    assert!(page.contains("113.00") && !page.contains("222.22"), "{page}");
    let all = w.login("auditor").await;
    let page = w.send("GET", "/", Some(&all), None).await.body;
    assert!(page.contains("335.22"), "both enterprises' invoices, summed by state");
    let b_user = w.login("finance_b").await;
    let page = w.send("GET", "/", Some(&b_user), None).await.body;
    assert!(page.contains("222.22") && !page.contains("113.00"));
    // Audit log: the row adding finance_b (about B) is not shown to a user scoped to A.
    let audit = w.send("GET", "/audit", Some(&a_user), None).await.body;
    assert!(audit.contains("auditor_a") && !audit.contains("finance_b"), "{audit}");
    let audit = w.send("GET", "/audit", Some(&all), None).await.body;
    assert!(audit.contains("finance_b") && audit.contains(A) && audit.contains(B));
}

#[tokio::test]
async fn cross_site_posts_are_refused_even_with_the_session_cookie() {
    let w = world().await;
    let admin = w.login("admin").await;
    let form = Some("reason=x");
    let cross = w
        .send_with("POST", "/jobs/fetch/pause", Some(&admin), form, &[("sec-fetch-site", "cross-site")])
        .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    let origin = [("origin", "http://evil.example"), ("host", "console.local")];
    let forged = w.send_with("POST", "/jobs/fetch/pause", Some(&admin), form, &origin).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(w.scalar("SELECT count(*) FROM job_control").await, 0);
    let same =
        [("origin", "http://console.local"), ("host", "console.local"), ("sec-fetch-site", "same-origin")];
    let ok = w.send_with("POST", "/jobs/fetch/pause", Some(&admin), form, &same).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn pages_carry_the_security_headers_and_the_cookie_its_flags() {
    let w = world().await;
    let login = w.send("POST", "/login", None, Some(&format!("username=ops&password={PASSWORD}"))).await;
    assert!(login.set_cookie.contains("HttpOnly") && login.set_cookie.contains("SameSite=Strict"));
    assert!(!login.set_cookie.contains("Secure"), "secure_cookies is off by default");
    let cookie = login.set_cookie.split(';').next().unwrap().to_string();
    let a = w.send("GET", "/jobs", Some(&cookie), None).await;
    let h = |k: &str| a.headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert!(h("content-security-policy").contains("script-src 'self'"));
    assert!(!h("content-security-policy").contains("unsafe-inline"));
    assert_eq!(h("x-frame-options"), "DENY");
    assert_eq!(h("cache-control"), "no-store");
    assert!(!a.body.contains("<script>"), "no inline script");
    let js = w.send("GET", "/static/htmx.min.js", None, None).await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.body.contains("htmx") && js.body.contains("2.0.4"));
}

#[tokio::test]
async fn logins_fail_without_saying_why_then_wait_after_five_and_sessions_expire() {
    let w = world().await;
    let wrong = w.send("POST", "/login", None, Some("username=ops&password=wrong-password")).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("用户名或密码错误"));
    let unknown = w.send("POST", "/login", None, Some("username=nobody&password=wrong-password")).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert!(unknown.body.contains("用户名或密码错误"));
    for _ in 0..4 {
        w.send("POST", "/login", None, Some("username=ops&password=wrong-password")).await;
    }
    // Five failures: even the right password must wait now.
    let throttled = w.send("POST", "/login", None, Some(&format!("username=ops&password={PASSWORD}"))).await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS, "{}", throttled.body);
    assert!(throttled.body.contains("秒后再试"));
    let logged: Vec<String> =
        sqlx::query_scalar("SELECT detail FROM audit_log WHERE action = 'login' AND target = 'ops'")
            .fetch_all(&w.db.pool)
            .await
            .unwrap();
    assert_eq!(logged.len(), 6);
    assert!(logged.iter().all(|d| !d.contains("wrong-password") && !d.contains(PASSWORD)));
    // Others are not held up.
    let admin = w.login("admin").await;
    assert_eq!(w.send("GET", "/", Some(&admin), None).await.status, StatusCode::OK);
    // Idle for 31 minutes: gone.
    sqlx::query("UPDATE web_session SET last_seen = now() - interval '31 minutes'")
        .execute(&w.db.pool)
        .await
        .unwrap();
    assert_eq!(w.send("GET", "/", Some(&admin), None).await.location, "/login");
    // Past the absolute end, however busy.
    let admin = w.login("admin").await;
    sqlx::query("UPDATE web_session SET expires_at = now() - interval '1 second'")
        .execute(&w.db.pool)
        .await
        .unwrap();
    assert_eq!(w.send("GET", "/", Some(&admin), None).await.location, "/login");
    // Logout ends the session; a disabled user's sessions end too.
    let admin = w.login("admin").await;
    let out = w.send("POST", "/logout", Some(&admin), None).await;
    assert_eq!((out.status, out.location.as_str()), (StatusCode::SEE_OTHER, "/login"));
    assert!(out.set_cookie.contains("Max-Age=0"));
    assert_eq!(w.send("GET", "/", Some(&admin), None).await.location, "/login");
    let auditor = w.login("auditor").await;
    fapiao_usecases::users::disable(&w.console.app, &fapiao_usecases::Actor::Demo, "auditor").await.unwrap();
    assert_eq!(w.send("GET", "/", Some(&auditor), None).await.location, "/login");
    let again = w.send("POST", "/login", None, Some(&format!("username=auditor&password={PASSWORD}"))).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bad_input_shows_the_form_again_with_the_message_and_changes_nothing() {
    let w = world().await;
    let ops = w.login("ops").await;
    let a = w.send("POST", "/jobs/fetch/pause", Some(&ops), Some("reason=+++")).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body.contains("暂停须填写原因") && a.body.contains(r#"id="job-fetch""#));
    let a = w.send("POST", "/jobs/apply-cache/run", Some(&ops), Some("date=2026-13-01")).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.body.contains("YYYY-MM-DD"));
    assert_eq!(
        w.send("POST", "/jobs/no-such-job/pause", Some(&ops), Some("reason=x")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(w.scalar("SELECT count(*) FROM job_control").await, 0);
    assert_eq!(w.scalar("SELECT count(*) FROM job_run").await, 0);

    let admin = w.login("admin").await;
    let a = w
        .send("POST", "/params", Some(&admin), Some("type=rim_config&key=key_element_check&value=maybe"))
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert!(a.body.contains("field-error"));
    assert_eq!(w.scalar("SELECT count(*) FROM sys_param").await, 0);
    let a =
        w.send("POST", "/params", Some(&admin), Some("type=rim_config&key=key_element_check&value=0")).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let page = w.send("GET", "/params", Some(&admin), None).await.body;
    assert!(page.contains("rim_config.key_element_check"), "the change is in the history");
    let ops_page = w.send("GET", "/params", Some(&ops), None).await.body;
    assert!(
        page.contains(r#"action="/params""#) && !ops_page.contains(r#"action="/params""#),
        "ops reads only"
    );
}

#[tokio::test]
async fn pause_resume_and_run_now_from_the_jobs_page() {
    let w = world().await;
    let ops = w.login("ops").await;
    let a = w.send("POST", "/jobs/fetch/pause", Some(&ops), Some("reason=%E5%8D%87%E7%BA%A7")).await;
    assert_eq!((a.status, a.location.as_str()), (StatusCode::SEE_OTHER, "/jobs"));
    let page = w.send("GET", "/jobs", Some(&ops), None).await.body;
    assert!(page.contains("已暂停") && page.contains("升级"));
    let dash = w.send("GET", "/", Some(&ops), None).await.body;
    assert!(dash.contains("已暂停：<b>fetch</b>") && dash.contains("升级"));
    assert_eq!(w.send("POST", "/jobs/fetch/resume", Some(&ops), None).await.status, StatusCode::SEE_OTHER);
    assert!(!w.send("GET", "/jobs", Some(&ops), None).await.body.contains("已暂停"));
    // Run now: queued, shown in /runs; a second one while it waits is refused.
    let a = w.send("POST", "/jobs/apply-cache/run", Some(&ops), Some("date=2026-11-03")).await;
    assert_eq!((a.status, a.location.as_str()), (StatusCode::SEE_OTHER, "/runs?job=apply-cache"));
    let runs = w.send("GET", &a.location, Some(&ops), None).await.body;
    assert!(
        runs.contains(r#"<span class="state due">排队中</span>"#) && runs.contains("<td>手动</td>"),
        "{runs}"
    );
    let again = w.send("POST", "/jobs/apply-cache/run", Some(&ops), Some("")).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.body.contains("排队"));
    let id = w.scalar("SELECT id FROM job_run").await;
    let detail = w.send("GET", &format!("/runs/{id}"), Some(&ops), None).await.body;
    assert!(detail.contains("2026-11-03") && detail.contains("计划时间"));
    let actions: Vec<(String, String, String)> =
        sqlx::query_as("SELECT actor, action, outcome FROM audit_log WHERE action LIKE 'job.%' ORDER BY id")
            .fetch_all(&w.db.pool)
            .await
            .unwrap();
    let ops_did = |a: &str, o: &str| ("ops".to_string(), a.to_string(), o.to_string());
    assert_eq!(
        actions,
        vec![
            ops_did("job.pause", "ok"),
            ops_did("job.resume", "ok"),
            ops_did("job.run", "ok"),
            ops_did("job.run", "refused")
        ]
    );
    // An auditor sees the jobs but no buttons.
    let auditor = w.login("auditor").await;
    let page = w.send("GET", "/jobs", Some(&auditor), None).await.body;
    assert!(page.contains("fetch") && !page.contains("暂停原因") && !page.contains("立即运行"));
    assert!(!page.contains(r#"class="pause""#) && !page.contains("/resume"));
}

#[tokio::test]
async fn runs_page_by_keyset_with_filters() {
    let w = world().await;
    w.runs("fetch", 120).await;
    w.runs("deal-task", 10).await;
    let ops = w.login("ops").await;
    let mut seen = Vec::new();
    let mut next = Some("/runs?job=fetch".to_string());
    while let Some(path) = next.take() {
        let page = w.send("GET", &path, Some(&ops), None).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        for part in page.body.split(r#"<td><a href="/runs/"#).skip(1) {
            seen.push(part.split('"').next().unwrap().parse::<i64>().unwrap());
        }
        next = page
            .body
            .split_once(r#"" id="next""#)
            .map(|(before, _)| before.rsplit_once(r#"<a href=""#).unwrap().1.replace("&amp;", "&"));
    }
    assert_eq!(seen.len(), 120, "every fetch run once over three pages");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 120);
    let fetch_ids: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM job_run WHERE job = 'fetch' ORDER BY scheduled_for DESC, id DESC")
            .fetch_all(&w.db.pool)
            .await
            .unwrap();
    assert_eq!(seen, fetch_ids, "newest first");
    // State filter: only failed rows (every third of 120 fetch runs and of 10 deal-task runs).
    let failed = w.send("GET", "/runs?state=failed", Some(&ops), None).await.body;
    assert_eq!(failed.matches(r#"<span class="state failed">"#).count(), 43);
    // Scheduled runs that did nothing (succeeded, no rows) hidden.
    let busy = w.send("GET", "/runs?job=deal-task&hide_idle=1", Some(&ops), None).await.body;
    let all = w.send("GET", "/runs?job=deal-task", Some(&ops), None).await.body;
    assert_eq!(all.matches(r#"<td><a href="/runs/"#).count(), 10);
    // i = 1..10: failed when i%3=0 (3), else succeeded with rows when i even (2, 4, 8, 10).
    assert_eq!(busy.matches(r#"<td><a href="/runs/"#).count(), 7);
    // Dates are days of the configured time zone: 2026-10-31 23:5x UTC is 2026-11-01 in Shanghai.
    let day = w.send("GET", "/runs?job=deal-task&from=2026-11-01&to=2026-11-01", Some(&ops), None).await.body;
    assert_eq!(day.matches(r#"<td><a href="/runs/"#).count(), 10);
    let before = w.send("GET", "/runs?job=deal-task&to=2026-10-31", Some(&ops), None).await.body;
    assert_eq!(before.matches(r#"<td><a href="/runs/"#).count(), 0);
    let bad = w.send("GET", "/runs?from=yesterday", Some(&ops), None).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("YYYY-MM-DD"));
}

#[tokio::test]
async fn ops_sends_the_syncs_given_up_work_again_from_the_jobs_page() {
    let w = world().await;
    sqlx::query("INSERT INTO download_application (tax_no, invoice_date, state, attempts) VALUES ($1, '2026-11-03', 'failed', 3), ($2, '2026-11-03', 'failed', 3)")
        .bind(A)
        .bind(B)
        .execute(&w.db.pool)
        .await
        .unwrap();
    let ops = w.login("ops").await;
    assert!(w.send("GET", "/jobs", Some(&ops), None).await.body.contains(r#"action="/sync/retry""#));
    let bad = w.send("POST", "/sync/retry", Some(&ops), Some("tax_no=&from=2026-13-01&to=")).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("日期格式应为"), "the message beside the form");
    let a = w
        .send("POST", "/sync/retry", Some(&ops), Some(&format!("tax_no={A}&from=2026-11-01&to=2026-11-30")))
        .await;
    assert_eq!((a.status, a.location.as_str()), (StatusCode::SEE_OTHER, "/jobs"));
    let open: Vec<String> =
        sqlx::query_scalar("SELECT tax_no FROM download_application WHERE state = 'open'")
            .fetch_all(&w.db.pool)
            .await
            .unwrap();
    assert_eq!(open, [A], "only the enterprise asked for");
    let detail: String =
        sqlx::query_scalar("SELECT detail FROM audit_log WHERE action = 'sync.retry' AND outcome = 'ok'")
            .fetch_one(&w.db.pool)
            .await
            .unwrap();
    assert!(detail.contains("1 个下载申请"), "{detail}");
    // An auditor sees no form, and a forged POST changes nothing.
    let auditor = w.login("auditor").await;
    assert!(!w.send("GET", "/jobs", Some(&auditor), None).await.body.contains(r#"action="/sync/retry""#));
    assert_eq!(
        w.send("POST", "/sync/retry", Some(&auditor), Some("tax_no=")).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(w.scalar("SELECT count(*) FROM download_application WHERE state = 'failed'").await, 1);
}

#[tokio::test]
async fn ops_restarts_a_sync_scheme_from_the_jobs_page() {
    let w = world().await;
    let ops = w.login("ops").await;
    let bad = w.send("POST", "/sync/reset-start", Some(&ops), Some("scheme=S-A&start=")).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let unknown = w.send("POST", "/sync/reset-start", Some(&ops), Some("scheme=NOPE&start=2026-10-01")).await;
    assert!(unknown.body.contains("同步方案NOPE不存在"), "{}", unknown.body);
    let a = w.send("POST", "/sync/reset-start", Some(&ops), Some("scheme=S-A&start=2026-10-01")).await;
    assert_eq!((a.status, a.location.as_str()), (StatusCode::SEE_OTHER, "/jobs"));
    let next: Option<chrono::NaiveDate> =
        sqlx::query_scalar("SELECT backfill_next FROM sync_scheme WHERE code = 'S-A'")
            .fetch_one(&w.db.pool)
            .await
            .unwrap();
    assert_eq!(next, chrono::NaiveDate::from_ymd_opt(2026, 10, 1));
    assert_eq!(
        w.scalar("SELECT count(*) FROM audit_log WHERE action = 'sync.reset_start' AND outcome = 'ok'").await,
        1
    );
}
