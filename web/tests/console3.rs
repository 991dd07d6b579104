//! The console's part 2, the rest (issue 19): red-flush by picking, by lines, by an uploaded list,
//! the forms and sheets; "all matching" on /pending and /applications as background tasks; the
//! invoices' zip under a name template — every new route × role × tenant scope, cross-site posts
//! refused, changes audited.

mod common;

use axum::http::StatusCode;
use common::{A, B, USERS, World, world, world_with};

/// The task id a 303 to `/tasks/{id}` names.
fn task_of(location: &str) -> i64 {
    let id = location.strip_prefix("/tasks/").unwrap_or_else(|| panic!("not a task: {location}"));
    id.parse().unwrap()
}

/// An issued blue invoice for each pending invoice of the world (A: 113.00, B: 222.22), numbered
/// 26310000000000000001 (A's) and 26440000000000000002 (B's); a form entered by each one's buyer
/// (a third enterprise).
async fn issued(w: &World) {
    w.issue_each_pending().await;
    sqlx::query(
        "INSERT INTO red_document (id, kind, state, number, seller_tax_no, buyer_tax_no, invoice_num, red_reason, amount, tax, entered_by)
         VALUES ('FORM-A', 'form', '03', 'RA1', $1, '91110000600037341L', '26310000000000000001', '01', -100, -13, 'buyer'),
                ('FORM-B', 'form', '03', 'RB1', $2, '91110000600037341L', '26440000000000000002', '01', -209.22, -13, 'buyer')",
    )
    .bind(A)
    .bind(B)
    .execute(&w.db.pool)
    .await
    .unwrap();
}

const A_NUM: &str = "26310000000000000001";

#[tokio::test]
async fn every_new_route_by_role_and_scope() {
    let w = world().await;
    issued(&w).await;
    let may_act = ["admin", "finance", "finance_b"];
    let may_view = ["admin", "finance", "auditor", "auditor_a", "finance_b"];
    for (name, _, _) in USERS {
        let cookie = w.login(name).await;
        for path in ["/red-flush/lines", "/red-flush/list", "/pending/all", "/applications/all"] {
            let a = w.send("GET", path, Some(&cookie), None).await;
            let expected = if may_act.contains(&name) { StatusCode::OK } else { StatusCode::FORBIDDEN };
            assert_eq!(a.status, expected, "GET {path} as {name}");
        }
        let a = w.send("GET", "/red-flush/forms", Some(&cookie), None).await;
        let expected = if may_view.contains(&name) { StatusCode::OK } else { StatusCode::FORBIDDEN };
        assert_eq!(a.status, expected, "GET /red-flush/forms as {name}");
        if may_act.contains(&name) {
            continue;
        }
        for (path, form) in [
            ("/pending/all", "count=1".to_string()),
            ("/applications/all", "count=1".to_string()),
            ("/red-flush/lines", format!("num={A_NUM}&L1=1&action=preview")),
            ("/red-flush/forms/FORM-A/revoke", String::new()),
        ] {
            let a = w.send("POST", path, Some(&cookie), Some(&form)).await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "POST {path} as {name}");
        }
    }
    // Scope: finance_b sees B's forms only, is told A's invoice does not exist (GET 404) and is
    // refused acting on it (POST 403).
    let finance_b = w.login("finance_b").await;
    let forms = w.send("GET", "/red-flush/forms", Some(&finance_b), None).await.body;
    assert!(forms.contains("FORM-B") && !forms.contains("FORM-A"), "{forms}");
    let a = w.send("GET", &format!("/red-flush/lines?num={A_NUM}"), Some(&finance_b), None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.body);
    let a = w
        .send("POST", "/red-flush/lines", Some(&finance_b), Some(&format!("num={A_NUM}&L1=1&action=preview")))
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = w.send("POST", "/red-flush/forms/FORM-A/revoke", Some(&finance_b), Some("")).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let picks = w.send("GET", "/red-flush", Some(&finance_b), None).await.body;
    assert!(picks.contains("26440000000000000002") && !picks.contains(A_NUM), "{picks}");
    assert!(picks.contains(r#"<td class="num remaining">222.22</td>"#), "the remaining amount: {picks}");
    // "All matching" counts in scope: finance_b's filter matches B's one pending invoice only.
    let confirm = w.send("GET", "/pending/all?status=not_issued", Some(&finance_b), None).await.body;
    assert!(confirm.contains(r#"<b id="bulk-count">1</b>"#), "{confirm}");
    let finance = w.login("finance").await;
    let confirm = w.send("GET", "/pending/all?status=not_issued", Some(&finance), None).await.body;
    assert!(confirm.contains(r#"<b id="bulk-count">2</b>"#), "{confirm}");
    assert!(confirm.contains(r#"name="status" value="not_issued""#), "the filter is carried: {confirm}");
    // A post from another site is refused before anything runs; without a session, 401.
    let a = w
        .send_with(
            "POST",
            "/pending/all",
            Some(&finance),
            Some("count=2"),
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = w
        .send_with(
            "POST",
            "/red-flush/forms/FORM-A/revoke",
            Some(&finance),
            None,
            &[("origin", "http://evil.example"), ("host", "127.0.0.1:8080")],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(w.send("POST", "/pending/all", None, Some("count=2")).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(w.scalar("SELECT count(*) FROM console_task").await, 0, "nothing started");
    // Every refusal by role or scope is in the audit log: ops, auditor, auditor_a × 4 posts, and
    // finance_b's two on A's items.
    let refused = w
        .scalar(
            "SELECT count(*) FROM audit_log WHERE outcome = 'refused'
              AND action IN ('pending.issue_all', 'application.issue_all', 'red_flush.preview', 'red_flush.form_revoke')",
        )
        .await;
    assert!(refused >= 14, "{refused}");
    // Tasks of another scope: not said to exist.
    let id = w
        .scalar(
            "INSERT INTO console_task (kind, actor, tax_nos, request, file_path, state)
             VALUES ('bulk', 'finance', '{}', '{\"what\": \"pending\", \"filter\": \"\", \"count\": 1}', '', 'done') RETURNING id",
        )
        .await;
    assert_eq!(
        w.send("GET", &format!("/tasks/{id}"), Some(&finance_b), None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(w.send("GET", &format!("/tasks/{id}"), Some(&finance), None).await.status, StatusCode::OK);
    let ops = w.login("ops").await;
    assert_eq!(w.send("GET", &format!("/tasks/{id}"), Some(&ops), None).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_matching_is_counted_confirmed_and_issued_in_the_background() {
    use fapiao_channel::sandbox::{Sandbox, SandboxConfig};
    let sandbox = Sandbox::start(SandboxConfig::default(), "127.0.0.1:0").await.unwrap();
    let url = sandbox.base_url();
    let w = world_with(move |s| s.channel.base_url = url).await;
    let finance = w.login("finance").await;
    // Three bills of A imported; the filter "seller A, received" matches them.
    let path = w.files.path().join("all.xlsx");
    fapiao_pipelines::import::sample::write_xlsx(&path, "ALL", 15, A, B, &[]).unwrap();
    let book = std::fs::read(&path).unwrap();
    let a = w.upload("/imports", &finance, &[("kind", "applications")], Some(("all.xlsx", &book))).await;
    let import: i64 = a.location.rsplit('/').next().unwrap().parse().unwrap();
    assert_eq!(w.finished(import).await, "done");
    let page =
        w.send("GET", &format!("/applications?seller={A}&state=received"), Some(&finance), None).await.body;
    assert!(page.contains(r#"id="issue-all""#), "{page}");
    let confirm = w
        .send("GET", &format!("/applications/all?seller={A}&state=received"), Some(&finance), None)
        .await
        .body;
    assert!(confirm.contains(r#"<b id="bulk-count">3</b>"#), "{confirm}");
    // A stale count runs nothing and shows the count again.
    let stale = format!("seller={A}&state=received&count=2");
    let a = w.send("POST", "/applications/all", Some(&finance), Some(&stale)).await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.body);
    assert!(a.body.contains("符合条件的数量已变化（确认时 2，现在 3）"), "{}", a.body);
    assert_eq!(w.scalar("SELECT count(*) FROM console_task WHERE kind = 'bulk'").await, 0);
    let a = w
        .send(
            "POST",
            "/applications/all",
            Some(&finance),
            Some(&format!("seller={A}&state=received&count=3")),
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let id = task_of(&a.location);
    let running = w.send("GET", &a.location, Some(&finance), None).await.body;
    assert!(running.contains("推送并开票（全部符合条件的开票申请单）"), "{running}");
    assert_eq!(w.finished(id).await, "done");
    let page = w.send("GET", &a.location, Some(&finance), None).await.body;
    assert!(page.contains("开票成功") && page.contains(r#"<b id="succeeded">3</b>"#), "{page}");
    assert_eq!(w.scalar("SELECT count(*) FROM issued_invoice").await, 3);
    let progress = w.send("GET", &format!("/tasks/{id}/progress"), Some(&finance), None).await;
    assert_eq!(progress.headers.get("hx-refresh").unwrap(), "true", "a finished task reloads its page");
    let audited = w
        .scalar("SELECT count(*) FROM audit_log WHERE action = 'application.issue_all' AND outcome = 'ok' AND tax_nos = '{}'")
        .await;
    assert_eq!(audited, 1);

    // /pending: the world's two 未开票 invoices (A and B) and nothing else not issued; finance_b's
    // "all" is B's one, issued in the background; A's stays.
    let finance_b = w.login("finance_b").await;
    let confirm = w.send("GET", "/pending/all?status=not_issued", Some(&finance_b), None).await.body;
    assert!(confirm.contains(r#"<b id="bulk-count">1</b>"#), "{confirm}");
    let a = w.send("POST", "/pending/all", Some(&finance_b), Some("status=not_issued&count=1")).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let id = task_of(&a.location);
    assert_eq!(w.finished(id).await, "done");
    let page = w.send("GET", &a.location, Some(&finance_b), None).await.body;
    assert!(page.contains(r#"<b id="total-items">1</b>"#), "{page}");
    assert_eq!(
        w.send("GET", &a.location, Some(&w.login("auditor_a").await), None).await.status,
        StatusCode::NOT_FOUND
    );
    let untouched = w
        .scalar("SELECT count(*) FROM pending_invoice WHERE total = 113.00 AND status = 'not_issued' AND serial_no IS NULL")
        .await;
    assert_eq!(untouched, 1, "A's invoice is not finance_b's to issue");
    let audited = w.scalar("SELECT count(*) FROM audit_log WHERE action = 'pending.issue_all'").await;
    assert_eq!(audited, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn red_flush_by_lines_by_list_and_the_zip_of_chosen_invoices() {
    use fapiao_channel::sandbox::{Sandbox, SandboxConfig};
    let sandbox = Sandbox::start(SandboxConfig::default(), "127.0.0.1:0").await.unwrap();
    let url = sandbox.base_url();
    let w = world_with(move |s| s.channel.base_url = url).await;
    let finance = w.login("finance").await;
    let path = w.files.path().join("red.xlsx");
    fapiao_pipelines::import::sample::write_xlsx(&path, "RED", 10, A, B, &[]).unwrap();
    let book = std::fs::read(&path).unwrap();
    let a = w.upload("/imports", &finance, &[("kind", "applications")], Some(("red.xlsx", &book))).await;
    let import: i64 = a.location.rsplit('/').next().unwrap().parse().unwrap();
    assert_eq!(w.finished(import).await, "done");
    let a =
        w.send("POST", "/applications/issue", Some(&finance), Some("bill=RED0000000&bill=RED0000001")).await;
    assert!(a.body.contains("开票成功"), "{}", a.body);
    let nums: Vec<(String, String)> =
        sqlx::query_as("SELECT invoice_num, buyer_name FROM issued_invoice ORDER BY invoice_num")
            .fetch_all(&w.db.pool)
            .await
            .unwrap();
    assert_eq!(nums.len(), 2);
    let (first, buyer) = nums[0].clone();

    // Picked from the issued list, by lines: the lines are shown, a quantity beyond a line's is
    // refused verbatim, a part previews with the remaining amount after.
    let picks = w.send("GET", "/red-flush", Some(&finance), None).await.body;
    assert!(picks.contains(&format!(r#"href="/red-flush/lines?num={first}""#)), "{picks}");
    let lines = w.send("GET", &format!("/red-flush/lines?num={first}"), Some(&finance), None).await;
    assert_eq!(lines.status, StatusCode::OK, "{}", lines.body);
    assert!(lines.body.contains(r#"name="L1""#), "{}", lines.body);
    let over = w
        .send(
            "POST",
            "/red-flush/lines",
            Some(&finance),
            Some(&format!("num={first}&L1=100000&action=preview")),
        )
        .await;
    assert_eq!(over.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", over.body);
    assert!(!over.body.contains(r#"id="run""#), "no button to go ahead: {}", over.body);
    let part = w
        .send("POST", "/red-flush/lines", Some(&finance), Some(&format!("num={first}&L1=1&action=preview")))
        .await;
    assert_eq!(part.status, StatusCode::OK, "{}", part.body);
    assert!(part.body.contains(r#"id="red-lines""#) && part.body.contains(r#"id="run""#), "{}", part.body);
    assert_eq!(w.scalar("SELECT count(*) FROM red_flush").await, 0, "a preview changes nothing");
    let run = w
        .send("POST", "/red-flush/lines", Some(&finance), Some(&format!("num={first}&L1=1&action=run")))
        .await;
    assert!(run.body.contains(r#"id="red-flush-result""#), "{}", run.body);
    assert_eq!(w.scalar("SELECT count(*) FROM red_flush").await, 1);
    let audited = w
        .scalar(
            "SELECT count(*) FROM audit_log WHERE action = 'red_flush.invoice' AND detail LIKE '%按明细行%'",
        )
        .await;
    assert_eq!(audited, 1);

    // A list (the red-flush template, as CSV): the second invoice in full, an unknown one; the
    // task's page has a line per row and the report.
    let second = nums[1].0.clone();
    let csv = format!("发票代码,数电号码,红冲金额,红冲原因\n,{second},,01\n,26319999999999999999,10.00,04\n");
    let a = w.upload("/red-flush/list", &finance, &[], Some(("红冲清单.csv", csv.as_bytes()))).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let id = task_of(&a.location);
    assert_eq!(w.finished(id).await, "done");
    let page = w.send("GET", &a.location, Some(&finance), None).await.body;
    assert!(page.contains(&second), "{page}");
    assert!(page.contains(r#"<b id="total-items">2</b>"#) && page.contains(r#"id="report""#), "{page}");
    let (status, _, bytes) = w.bytes(&format!("/tasks/{id}/report"), &finance).await;
    assert_eq!(status, StatusCode::OK);
    assert!(bytes.starts_with(b"PK"), "an xlsx");
    assert_eq!(w.scalar("SELECT count(*) FROM audit_log WHERE action = 'red_flush.list'").await, 1);
    // finance_b's list about A's invoice: refused on its row, nothing red-flushed for it.
    let finance_b = w.login("finance_b").await;
    let csv = format!("发票代码,数电号码,红冲金额,红冲原因\n,{first},1.00,04\n");
    let a = w.upload("/red-flush/list", &finance_b, &[], Some(("b.csv", csv.as_bytes()))).await;
    let id = task_of(&a.location);
    assert_eq!(w.finished(id).await, "done");
    let page = w.send("GET", &a.location, Some(&finance_b), None).await.body;
    assert!(page.contains("不在您负责的企业范围内") && page.contains(r#"<b id="succeeded">0</b>"#), "{page}");

    // The chosen invoices as one zip, named by the template.
    let form = format!(
        "num={first}&name=%7B%E5%8F%91%E7%A5%A8%E5%8F%B7%E7%A0%81%7D_%7B%E8%B4%AD%E6%96%B9%E5%90%8D%E7%A7%B0%7D"
    );
    let a = w.send("POST", "/invoices/download", Some(&finance), Some(&form)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body.contains(&format!("{first}_{buyer}.")), "the zip names its file by the template");
    let bad = w
        .send(
            "POST",
            "/invoices/download",
            Some(&finance),
            Some(&format!("num={first}&name=%7B%E6%97%A0%7D")),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("文件名模板不正确"), "{}", bad.body);
}
