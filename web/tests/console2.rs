//! The console's part 2 on the Router and a real database (issue 19): imports and exports, every
//! new route × every role × tenant scope; uploads streamed, problems paginated and filtered, the
//! error report, a file imported before; exports with their checks, SHA-256 and zip.

mod common;

use axum::http::StatusCode;
use common::{A, B, USERS, World, world, world_with};
use sha2::{Digest, Sha256};

/// An applications workbook: 20 lines (bills of 5) of `seller`, lines `bad` with a wrong tax.
fn workbook(w: &World, name: &str, prefix: &str, seller: &str, bad: &[usize]) -> Vec<u8> {
    let path = w.files.path().join(name);
    fapiao_pipelines::import::sample::write_xlsx(&path, prefix, 20, seller, B, bad).unwrap();
    std::fs::read(&path).unwrap()
}

/// The task id a 303 to `/imports/{id}` or `/exports/{id}` names.
fn task_of(location: &str) -> i64 {
    location.rsplit('/').next().unwrap().parse().unwrap_or_else(|_| panic!("not a task: {location}"))
}

#[tokio::test]
async fn every_new_route_answers_every_role_or_refuses_with_403() {
    let w = world().await;
    let book = workbook(&w, "roles.xlsx", "ROLE", A, &[]);
    let may_view_imports = ["admin", "finance", "auditor", "auditor_a", "finance_b"];
    let may_import = ["admin", "finance", "finance_b"];
    let may_export = ["admin", "auditor", "auditor_a"];
    let mut tasks = Vec::new();
    for (name, _, _) in USERS {
        let cookie = w.login(name).await;
        for (path, allowed) in [("/imports", &may_view_imports[..]), ("/exports", &may_export[..])] {
            let a = w.send("GET", path, Some(&cookie), None).await;
            let expected = if allowed.contains(&name) { StatusCode::OK } else { StatusCode::FORBIDDEN };
            assert_eq!(a.status, expected, "GET {path} as {name}");
        }
        // A dry run: each allowed user may upload the same file (nothing lands).
        let a = w
            .upload(
                "/imports",
                &cookie,
                &[("kind", "applications"), ("dry_run", "1")],
                Some(("roles.xlsx", &book)),
            )
            .await;
        if may_import.contains(&name) {
            assert_eq!(a.status, StatusCode::SEE_OTHER, "POST /imports as {name}: {}", a.body);
            tasks.push((name, task_of(&a.location)));
        } else {
            assert_eq!(a.status, StatusCode::FORBIDDEN, "POST /imports as {name}");
        }
        let a = w.send("POST", "/exports", Some(&cookie), Some("from=2026-11-01&to=2026-11-30")).await;
        if may_export.contains(&name) {
            assert_eq!(a.status, StatusCode::SEE_OTHER, "POST /exports as {name}: {}", a.body);
            tasks.push((name, task_of(&a.location)));
        } else {
            assert_eq!(a.status, StatusCode::FORBIDDEN, "POST /exports as {name}");
        }
    }
    for (_, id) in &tasks {
        assert_eq!(w.finished(*id).await, "done", "task {id}");
    }
    // Each task's pages: its maker sees them; a role without the page gets 403.
    for (maker, id) in &tasks {
        let kind: String = sqlx::query_scalar("SELECT kind FROM console_task WHERE id = $1")
            .bind(id)
            .fetch_one(&w.db.pool)
            .await
            .unwrap();
        let base = if kind == "import" { "imports" } else { "exports" };
        let cookie = w.login(maker).await;
        for sub in ["", "/progress"] {
            let a = w.send("GET", &format!("/{base}/{id}{sub}"), Some(&cookie), None).await;
            assert_eq!(a.status, StatusCode::OK, "GET /{base}/{id}{sub} as {maker}");
        }
        let ops = w.login("ops").await;
        let a = w.send("GET", &format!("/{base}/{id}"), Some(&ops), None).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
    }
    // Refusals changed nothing and are in the audit log: 3 roles × import, 3 × export — and
    // finance_b's dry run, every row of A's refused for its seller (SELLER_NOT_IN_SCOPE).
    assert_eq!(w.scalar("SELECT count(*) FROM console_task").await, 6);
    let refused = w
        .scalar("SELECT count(*) FROM audit_log WHERE outcome = 'refused' AND action IN ('import.file', 'export.reconciliation')")
        .await;
    assert_eq!(refused, 7);
    let done = w
        .scalar("SELECT count(*) FROM audit_log WHERE outcome = 'ok' AND action IN ('import.file', 'export.reconciliation')")
        .await;
    assert_eq!(done, 5);
    assert_eq!(w.scalar("SELECT count(*) FROM application").await, 0, "dry runs land nothing");
    // Without a session: the pages send to the login, the uploads are refused.
    for path in ["/imports", "/exports", "/imports/1", "/exports/1/zip", "/imports/1/report"] {
        assert_eq!(w.send("GET", path, None, None).await.location, "/login", "{path}");
    }
    assert_eq!(
        w.send("POST", "/exports", None, Some("from=2026-11-01")).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn finance_sees_the_problems_of_a_workbook_then_imports_its_valid_bills_once() {
    let w = world().await;
    let finance = w.login("finance").await;
    // The form: kinds, the options, the limit.
    let page = w.send("GET", "/imports", Some(&finance), None).await.body;
    assert!(page.contains(r#"enctype="multipart/form-data""#) && page.contains("200 MiB"), "{page}");
    assert!(page.contains(r#"value="pool""#) && page.contains(r#"name="accept_valid""#));

    // 20 lines, 3 with a wrong tax (sheet rows 3, 4 and 9): all or nothing — nothing lands.
    let book = workbook(&w, "开票申请.xlsx", "WEB", A, &[1, 2, 7]);
    let a = w.upload("/imports", &finance, &[("kind", "applications")], Some(("开票申请.xlsx", &book))).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let id = task_of(&a.location);
    assert_eq!(w.finished(id).await, "done");
    let page = w.send("GET", &a.location, Some(&finance), None).await.body;
    assert!(page.contains("全部拒绝（未入库）") && page.contains("共 3 条"), "{page}");
    assert!(page.contains(r#"<td class="num" id="rows">20</td>"#), "{page}");
    assert!(page.contains(r#"<td class="num" id="rejected">20</td>"#));
    for row in [3, 4, 9] {
        assert!(
            page.contains(&format!(r#"<tr><td class="num">{row}</td><td>税额</td>"#)),
            "row {row}: {page}"
        );
    }
    assert_eq!(page.matches(r#"<tr><td class="num">"#).count(), 3);
    assert_eq!(w.scalar("SELECT count(*) FROM application").await, 0);
    // The problems' code: the filter keeps them, another code shows none.
    let code: String = sqlx::query_scalar(
        "SELECT p->>'code' FROM console_task, jsonb_array_elements(result->'problems') p WHERE id = $1 LIMIT 1",
    )
    .bind(id)
    .fetch_one(&w.db.pool)
    .await
    .unwrap();
    let same = w.send("GET", &format!("/imports/{id}?code={code}"), Some(&finance), None).await.body;
    assert_eq!(same.matches(r#"<tr><td class="num">"#).count(), 3);
    let other = w.send("GET", &format!("/imports/{id}?code=NO_SUCH"), Some(&finance), None).await.body;
    assert!(other.contains("没有问题") && other.contains("共 0 条"));
    // The error report: an xlsx (a zip).
    let (status, headers, bytes) = w.bytes(&format!("/imports/{id}/report"), &finance).await;
    assert_eq!(status, StatusCode::OK);
    assert!(bytes.starts_with(b"PK"), "an xlsx");
    let disposition = headers.get("content-disposition").unwrap().to_str().unwrap();
    assert!(disposition.starts_with("attachment") && disposition.contains(".xlsx"), "{disposition}");
    let refused: String = sqlx::query_scalar(
        "SELECT outcome FROM audit_log WHERE action = 'import.file' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&w.db.pool)
    .await
    .unwrap();
    assert_eq!(refused, "refused", "a workbook rejected as a whole is audited as refused");

    // The same file, accepting the valid bills: bills 0 and 1 (rows 2–11) refused, 2 and 3 land.
    let a = w
        .upload(
            "/imports",
            &finance,
            &[("kind", "applications"), ("accept_valid", "1")],
            Some(("开票申请.xlsx", &book)),
        )
        .await;
    let id = task_of(&a.location);
    assert_eq!(w.finished(id).await, "done");
    let page = w.send("GET", &a.location, Some(&finance), None).await.body;
    assert!(page.contains("已导入") && page.contains(r#"<td class="num" id="accepted">10</td>"#), "{page}");
    assert_eq!(w.scalar("SELECT count(*) FROM application").await, 2);
    let batch = w.scalar("SELECT max(id) FROM import_batch").await;
    assert!(page.contains(&format!(r#"<span id="batch">{batch}</span>"#)));

    // Once more: imported before, as that batch, with a link that leads to the upload that landed it.
    let a = w.upload("/imports", &finance, &[("kind", "applications")], Some(("again.xlsx", &book))).await;
    let again = task_of(&a.location);
    assert_eq!(w.finished(again).await, "failed");
    let page = w.send("GET", &a.location, Some(&finance), None).await.body;
    assert!(
        page.contains(&format!(r#"此文件已导入过，为批次 <a href="/imports/batches/{batch}""#)),
        "{page}"
    );
    let dash = w.send("GET", "/", Some(&finance), None).await.body;
    assert!(dash.contains(&format!(r#"href="/imports/batches/{batch}""#)), "the dashboard links the batch");
    let link = w.send("GET", &format!("/imports/batches/{batch}"), Some(&finance), None).await;
    assert_eq!(link.location, format!("/imports/{id}"));
    assert_eq!(w.scalar("SELECT count(*) FROM application").await, 2);
    // The list: three uploads with their outcomes, and the batch.
    let list = w.send("GET", "/imports", Some(&finance), None).await.body;
    assert!(
        list.contains("全部拒绝")
            && list.contains("此文件已导入过")
            && list.contains(&format!(r#"id="batch-{batch}""#))
    );

    // Bad input: no file, no kind — the form again with the message, nothing started.
    let before = w.scalar("SELECT count(*) FROM console_task").await;
    let a = w.upload("/imports", &finance, &[("kind", "applications")], None).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.body.contains("请选择要导入的文件"));
    let a = w.upload("/imports", &finance, &[("kind", "invoices")], Some(("x.xlsx", &book))).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.body.contains("请选择导入类型"));
    assert_eq!(w.scalar("SELECT count(*) FROM console_task").await, before);
}

#[tokio::test]
async fn an_upload_over_the_limit_is_refused_and_leaves_nothing() {
    let w = world_with(|s| s.http.max_upload_mib = 1).await;
    let finance = w.login("finance").await;
    let big = vec![b'x'; (1 << 20) + 4096];
    let a = w.upload("/imports", &finance, &[("kind", "applications")], Some(("big.csv", &big))).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", a.body);
    assert!(a.body.contains("文件超过上传上限 1 MiB"));
    assert_eq!(w.scalar("SELECT count(*) FROM console_task").await, 0);
    let uploads = w.files.path().join("uploads");
    let left = std::fs::read_dir(&uploads).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "the partial upload is removed");
    assert_eq!(
        w.scalar("SELECT count(*) FROM audit_log WHERE action = 'import.file' AND outcome = 'refused'").await,
        1
    );
}

#[tokio::test]
async fn a_user_scoped_to_one_enterprise_never_sees_anothers_imports_or_exports() {
    let w = world().await;
    // finance_b (B only) uploads a workbook of A's bills: every row refused for its seller.
    let finance_b = w.login("finance_b").await;
    let page = w.send("GET", "/imports", Some(&finance_b), None).await.body;
    assert!(!page.contains(r#"value="pool""#), "scoped users import applications only");
    let book = workbook(&w, "a.xlsx", "SCOPE", A, &[]);
    let a = w
        .upload(
            "/imports",
            &finance_b,
            &[("kind", "applications"), ("accept_valid", "1")],
            Some(("a.xlsx", &book)),
        )
        .await;
    let b_task = task_of(&a.location);
    assert_eq!(w.finished(b_task).await, "done");
    let page = w.send("GET", &a.location, Some(&finance_b), None).await.body;
    assert!(
        page.contains("SELLER_NOT_IN_SCOPE") && page.contains(&format!("销方税号{A}不在您负责的企业范围内"))
    );
    assert!(page.contains(r#"<td class="num" id="accepted">0</td>"#), "{page}");
    assert_eq!(w.scalar("SELECT count(*) FROM application").await, 0);
    let pool = w.upload("/imports", &finance_b, &[("kind", "pool")], Some(("p.xlsx", &book))).await;
    assert_eq!(pool.status, StatusCode::UNPROCESSABLE_ENTITY);

    // finance (all) imports A's bills; finance_b does not see that upload, nor the batches.
    let finance = w.login("finance").await;
    let book = workbook(&w, "a2.xlsx", "SCOPE2", A, &[]);
    let a = w.upload("/imports", &finance, &[("kind", "applications")], Some(("a2.xlsx", &book))).await;
    let all_task = task_of(&a.location);
    assert_eq!(w.finished(all_task).await, "done");
    let list = w.send("GET", "/imports", Some(&finance_b), None).await.body;
    assert!(list.contains(&format!(r#"href="/imports/{b_task}""#)));
    assert!(!list.contains(&format!(r#"href="/imports/{all_task}""#)) && !list.contains("id=\"batches\""));
    for sub in ["", "/progress", "/report"] {
        let a = w.send("GET", &format!("/imports/{all_task}{sub}"), Some(&finance_b), None).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{sub}");
    }
    // auditor_a (A only) sees neither (finance's upload concerns no enterprise in particular,
    // finance_b's concerns B); the unscoped auditor sees both.
    let auditor_a = w.login("auditor_a").await;
    for id in [b_task, all_task] {
        assert_eq!(
            w.send("GET", &format!("/imports/{id}"), Some(&auditor_a), None).await.status,
            StatusCode::NOT_FOUND
        );
    }
    let auditor = w.login("auditor").await;
    let list = w.send("GET", "/imports", Some(&auditor), None).await.body;
    assert!(
        list.contains(&format!(r#"href="/imports/{b_task}""#))
            && list.contains(&format!(r#"href="/imports/{all_task}""#))
    );
    assert!(!list.contains(r#"id="upload-form""#), "auditors read, they do not upload");

    // Exports: auditor_a may not name B; with none named, the export is of A only.
    let a = w
        .send(
            "POST",
            "/exports",
            Some(&auditor_a),
            Some(&format!("from=2026-11-01&to=2026-11-30&tax_no={B}")),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.body.contains(&format!("企业{B}不在您负责的范围内")));
    let form = w.send("GET", "/exports", Some(&auditor_a), None).await.body;
    assert!(form.contains(A) && !form.contains(&format!(r#"value="{B}""#)), "only A to choose");
    let a = w.send("POST", "/exports", Some(&auditor_a), Some("from=2026-11-01&to=2026-11-30")).await;
    let a_export = task_of(&a.location);
    assert_eq!(w.finished(a_export).await, "done");
    let tax_nos: Vec<String> = sqlx::query_scalar("SELECT unnest(tax_nos) FROM console_task WHERE id = $1")
        .bind(a_export)
        .fetch_all(&w.db.pool)
        .await
        .unwrap();
    assert_eq!(tax_nos, [A]);
    let a = w.send("POST", "/exports", Some(&auditor), Some("from=2026-11-01&to=2026-11-30")).await;
    let all_export = task_of(&a.location);
    assert_eq!(w.finished(all_export).await, "done");
    let list = w.send("GET", "/exports", Some(&auditor_a), None).await.body;
    assert!(
        list.contains(&format!(r#"href="/exports/{a_export}""#))
            && !list.contains(&format!(r#"href="/exports/{all_export}""#))
    );
    for sub in ["", "/zip"] {
        let a = w.send("GET", &format!("/exports/{all_export}{sub}"), Some(&auditor_a), None).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{sub}");
    }
}

#[tokio::test]
async fn an_auditor_builds_an_export_sees_its_checks_and_downloads_the_zip() {
    let w = world().await;
    let auditor = w.login("auditor").await;
    let bad = w.send("POST", "/exports", Some(&auditor), Some("from=2026-11-30&to=2026-11-01")).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("开始日期不能晚于结束日期") && bad.body.contains(r#"value="2026-11-30""#));
    let a = w
        .send(
            "POST",
            "/exports",
            Some(&auditor),
            Some(&format!("from=2026-11-01&to=2026-11-30&tax_no={A}&tax_no={B}")),
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let id = task_of(&a.location);
    assert_eq!(w.finished(id).await, "done");
    let page = w.send("GET", &a.location, Some(&auditor), None).await.body;
    for check in
        ["net_matches_ledger", "red_points_to_blue", "remaining_agrees", "issued_bills_have_callback"]
    {
        assert!(page.contains(&format!(r#"id="check-{check}""#)), "{check}: {page}");
    }
    assert!(page.contains("manifest") || page.contains("reconciliation.xlsx"), "{page}");
    let sha: String = sqlx::query_scalar("SELECT sha256 FROM console_task WHERE id = $1")
        .bind(id)
        .fetch_one(&w.db.pool)
        .await
        .unwrap();
    assert!(page.contains(&format!(r#"<code id="sha256">{sha}</code>"#)));
    let (status, headers, zip) = w.bytes(&format!("/exports/{id}/zip"), &auditor).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers.get("content-type").unwrap(), "application/zip");
    assert_eq!(hex(&Sha256::digest(&zip)), sha, "the zip downloaded is the one listed");
    let list = w.send("GET", "/exports", Some(&auditor), None).await.body;
    assert!(list.contains(&sha) && list.contains("<td>auditor</td>"), "{list}");
    let audit: (String, String) = sqlx::query_as(
        "SELECT outcome, detail FROM audit_log WHERE action = 'export.reconciliation' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&w.db.pool)
    .await
    .unwrap();
    assert_eq!(audit.0, "ok");
    assert!(audit.1.contains(&sha));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn pending_invoices_by_role_and_scope() {
    let w = world().await;
    let a_id = w.scalar("SELECT id FROM pending_invoice WHERE total = 113.00").await;
    let b_id = w.scalar("SELECT id FROM pending_invoice WHERE total = 222.22").await;
    let listed = fapiao_usecases::pending::list(&w.console.app, &Default::default()).await;
    assert!(listed.is_ok(), "{:?}", listed.err());
    let may_view = ["admin", "finance", "auditor", "auditor_a", "finance_b"];
    for (name, _, _) in USERS {
        let cookie = w.login(name).await;
        let expected = if may_view.contains(&name) { StatusCode::OK } else { StatusCode::FORBIDDEN };
        assert_eq!(
            w.send("GET", "/pending", Some(&cookie), None).await.status,
            expected,
            "/pending as {name}"
        );
        let detail = w.send("GET", &format!("/pending/{a_id}"), Some(&cookie), None).await.status;
        let expected = match name {
            "ops" => StatusCode::FORBIDDEN,
            "finance_b" => StatusCode::NOT_FOUND,
            _ => StatusCode::OK,
        };
        assert_eq!(detail, expected, "/pending/{a_id} as {name}");
        // Delete: only a 开票失败 invoice may go; these are 未开票, so it is refused per item.
        let a =
            w.send("POST", "/pending/act", Some(&cookie), Some(&format!("action=delete&id={b_id}"))).await;
        let expected = match name {
            "admin" | "finance" | "finance_b" => StatusCode::OK,
            _ => StatusCode::FORBIDDEN,
        };
        assert_eq!(a.status, expected, "delete as {name}: {}", a.body);
        if a.status == StatusCode::OK {
            assert!(
                a.body.contains(&format!("待开发票 {b_id}：")) && a.body.contains("未处理"),
                "{}",
                a.body
            );
        }
    }
    assert_eq!(w.scalar("SELECT count(*) FROM pending_invoice WHERE deleted_at IS NULL").await, 2);
    // Lists in scope: auditor_a sees A's invoice only, finance_b B's only.
    let auditor_a = w.login("auditor_a").await;
    let page = w.send("GET", "/pending", Some(&auditor_a), None).await.body;
    assert!(page.contains("113.00") && !page.contains("222.22"), "{page}");
    assert!(!page.contains(r#"name="action""#), "auditors see no buttons");
    let finance_b = w.login("finance_b").await;
    let page = w.send("GET", "/pending", Some(&finance_b), None).await.body;
    assert!(page.contains("222.22") && !page.contains("113.00"));
    assert!(page.contains(r#"id="issue-chosen""#));
    // finance_b acting on A's invoice: refused as a whole, audited.
    let a = w.send("POST", "/pending/act", Some(&finance_b), Some(&format!("action=delete&id={a_id}"))).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    // Filters: status and a bad date.
    let finance = w.login("finance").await;
    let failed = w.send("GET", "/pending?status=failed", Some(&finance), None).await.body;
    assert!(failed.contains(r#"<b id="matched">0</b>"#), "{failed}");
    let all = w.send("GET", "/pending?status=not_issued", Some(&finance), None).await.body;
    assert!(all.contains(r#"<b id="matched">2</b>"#));
    let bad = w.send("GET", "/pending?from=yesterday", Some(&finance), None).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    // A return needs a reason.
    let a = w
        .send("POST", "/pending/act", Some(&finance), Some(&format!("action=return&id={a_id}&reason=")))
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.body.contains("退回须填写原因"));
    let refused = w
        .scalar("SELECT count(*) FROM audit_log WHERE action = 'pending.delete' AND outcome = 'refused'")
        .await;
    // auditor, auditor_a, ops by role; admin, finance, finance_b per item; finance_b by scope.
    assert_eq!(refused, 7);
}

#[tokio::test]
async fn failed_callbacks_by_role_and_scope() {
    let w = world().await;
    for (bill, seller) in [("CB-A", A), ("CB-B", B)] {
        sqlx::query(
            "INSERT INTO application (bill_no, bill_date, seller_tax_no, buyer_name, invoice_kind, source)
             VALUES ($1, '2026-11-01', $2, '购方', 'digital_ordinary', '批量导入')",
        )
        .bind(bill)
        .bind(seller)
        .execute(&w.db.pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO callback (bill_no, interface_code, fingerprint, body, state, attempts, last_error)
             VALUES ($1, 'BILL.INVOICE', 'f', '{\"returnCode\": \"0\"}', 'failed', 8, 'connection refused')",
        )
        .bind(bill)
        .execute(&w.db.pool)
        .await
        .unwrap();
    }
    let a_cb = w.scalar("SELECT id FROM callback WHERE bill_no = 'CB-A'").await;
    let may_view = ["admin", "finance", "auditor", "auditor_a", "finance_b"];
    for (name, _, _) in USERS {
        let cookie = w.login(name).await;
        let expected = if may_view.contains(&name) { StatusCode::OK } else { StatusCode::FORBIDDEN };
        assert_eq!(w.send("GET", "/callbacks", Some(&cookie), None).await.status, expected, "as {name}");
    }
    let auditor_a = w.login("auditor_a").await;
    let page = w.send("GET", "/callbacks", Some(&auditor_a), None).await.body;
    assert!(page.contains("CB-A") && !page.contains("CB-B") && !page.contains("retry-chosen"), "{page}");
    let a = w.send("POST", "/callbacks/retry", Some(&auditor_a), Some(&format!("id={a_cb}"))).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let finance_b = w.login("finance_b").await;
    let page = w.send("GET", "/callbacks", Some(&finance_b), None).await.body;
    assert!(page.contains("CB-B") && !page.contains("CB-A") && page.contains("retry-chosen"));
    let a = w.send("POST", "/callbacks/retry", Some(&finance_b), Some(&format!("id={a_cb}"))).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "another enterprise's callback");
    assert_eq!(
        w.scalar("SELECT count(*) FROM callback WHERE state = 'failed'").await,
        2,
        "nothing restarted"
    );
    let refused = w
        .scalar("SELECT count(*) FROM audit_log WHERE action = 'callback.retry' AND outcome = 'refused'")
        .await;
    assert_eq!(refused, 2);
}

#[tokio::test]
async fn issued_invoices_are_searched_and_shown_in_scope() {
    let w = world().await;
    w.issue_each_pending().await;
    let (a_num, b_num) = ("26310000000000000001", "26440000000000000002");
    let may_view = ["admin", "finance", "auditor", "auditor_a", "finance_b"];
    for (name, _, _) in USERS {
        let cookie = w.login(name).await;
        let expected = if may_view.contains(&name) { StatusCode::OK } else { StatusCode::FORBIDDEN };
        assert_eq!(w.send("GET", "/invoices", Some(&cookie), None).await.status, expected, "as {name}");
        let detail = w.send("GET", &format!("/invoices/{a_num}"), Some(&cookie), None).await.status;
        let expected = match name {
            "ops" => StatusCode::FORBIDDEN,
            "finance_b" => StatusCode::NOT_FOUND,
            _ => StatusCode::OK,
        };
        assert_eq!(detail, expected, "/invoices/{a_num} as {name}");
    }
    let finance_b = w.login("finance_b").await;
    let page = w.send("GET", "/invoices", Some(&finance_b), None).await.body;
    assert!(page.contains(b_num) && !page.contains(a_num), "{page}");
    // Naming A's invoice in the search does not show it either.
    let page = w.send("GET", &format!("/invoices?num={a_num}"), Some(&finance_b), None).await.body;
    assert!(!page.contains(&format!(r#"value="{a_num}"><"#)) && page.contains("没有符合条件的发票"));
    let finance = w.login("finance").await;
    let page = w.send("GET", &format!("/invoices?seller={A}"), Some(&finance), None).await.body;
    assert!(page.contains(a_num) && !page.contains(b_num));
    let page = w.send("GET", &format!("/invoices/{a_num}"), Some(&finance), None).await.body;
    assert!(page.contains(r#"<dd id="remaining">113.00</dd>"#), "{page}");
    let bad = w.send("GET", "/invoices?from=11/03", Some(&finance), None).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    // A download of another enterprise's invoice fetches nothing.
    let a = w.send("POST", "/invoices/download", Some(&finance_b), Some(&format!("num={a_num}"))).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
}

#[tokio::test]
async fn the_pool_is_listed_and_shown_in_scope() {
    let w = world().await;
    for (tax_no, num, total) in [(A, "25310000000000000011", "530.00"), (B, "25440000000000000022", "880.00")]
    {
        sqlx::query(
            "INSERT INTO invoice_pool (tax_no, invoice_num, invoice_kind, invoice_date, seller_name, seller_tax_no,
                                       buyer_name, amount, tax, total, status, invoice_property, source, deductible)
             VALUES ($1, $2, 'digital_special', '2026-11-02', '供应商', '91440300MA5G0000X1', '我方', $3::numeric - 30, 30, $3::numeric, 'normal', 0, 'import', true)",
        )
        .bind(tax_no)
        .bind(num)
        .bind(total)
        .execute(&w.db.pool)
        .await
        .unwrap();
    }
    let may_view = ["admin", "finance", "auditor", "auditor_a", "finance_b"];
    for (name, _, _) in USERS {
        let cookie = w.login(name).await;
        let expected = if may_view.contains(&name) { StatusCode::OK } else { StatusCode::FORBIDDEN };
        assert_eq!(w.send("GET", "/pool", Some(&cookie), None).await.status, expected, "as {name}");
        let detail = w.send("GET", "/pool/25310000000000000011", Some(&cookie), None).await.status;
        let expected = match name {
            "ops" => StatusCode::FORBIDDEN,
            "finance_b" => StatusCode::NOT_FOUND,
            _ => StatusCode::OK,
        };
        assert_eq!(detail, expected, "detail as {name}");
    }
    let auditor_a = w.login("auditor_a").await;
    let page = w.send("GET", "/pool", Some(&auditor_a), None).await.body;
    assert!(page.contains("530.00") && !page.contains("880.00"), "{page}");
    let other = w.send("GET", &format!("/pool?tax_no={B}"), Some(&auditor_a), None).await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!other.body.contains("880.00"));
    let auditor = w.login("auditor").await;
    let page = w.send("GET", "/pool", Some(&auditor), None).await.body;
    assert!(page.contains("530.00") && page.contains("880.00"));
    let detail = w.send("GET", "/pool/25310000000000000011", Some(&auditor), None).await.body;
    assert!(detail.contains(r#"<dd id="available">530.00</dd>"#), "{detail}");
}

#[tokio::test]
async fn auto_reissue_is_previewed_in_scope_before_it_runs() {
    let w = world().await;
    let a_id = w.scalar("SELECT id FROM pending_invoice WHERE total = 113.00").await;
    sqlx::query(
        "UPDATE pending_invoice SET status = 'failed', error_message = '局端内部错误，该开票请求修复中，请稍后再试！' WHERE id = $1",
    )
    .bind(a_id)
    .execute(&w.db.pool)
    .await
    .unwrap();
    let app = &w.console.app;
    fapiao_usecases::params::set(
        app,
        &fapiao_usecases::Actor::Demo,
        "sim_auto_issue_config",
        "repair",
        "修复中",
    )
    .await
    .unwrap();
    for (name, allowed) in
        [("finance", true), ("admin", true), ("finance_b", true), ("auditor", false), ("ops", false)]
    {
        let cookie = w.login(name).await;
        let a = w.send("GET", "/pending/reissue", Some(&cookie), None).await;
        let expected = if allowed { StatusCode::OK } else { StatusCode::FORBIDDEN };
        assert_eq!(a.status, expected, "preview as {name}: {}", a.body);
    }
    let finance = w.login("finance").await;
    let preview = w.send("GET", "/pending/reissue", Some(&finance), None).await.body;
    let reissued = preview.split(r#"id="reissued""#).nth(1).unwrap().split("</table>").next().unwrap();
    assert!(reissued.contains(&format!(r#"href="/pending/{a_id}""#)), "{preview}");
    assert!(preview.contains(&format!(r#"<input type="hidden" name="id" value="{a_id}">"#)));
    // finance_b's scope holds no failed invoice: nothing to reissue, no button.
    let finance_b = w.login("finance_b").await;
    let preview = w.send("GET", "/pending/reissue", Some(&finance_b), None).await.body;
    assert!(!preview.contains(&format!(r#"href="/pending/{a_id}""#)) && !preview.contains("run-reissue"));
    let a = w.send("POST", "/pending/reissue", Some(&finance_b), Some(&format!("id={a_id}"))).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let auditor = w.login("auditor").await;
    let a = w.send("POST", "/pending/reissue", Some(&auditor), Some(&format!("id={a_id}"))).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    // The preview changed nothing.
    let status: String = sqlx::query_scalar("SELECT status FROM pending_invoice WHERE id = $1")
        .bind(a_id)
        .fetch_one(&w.db.pool)
        .await
        .unwrap();
    assert_eq!(status, "failed");
    assert_eq!(w.scalar("SELECT count(*) FROM issue_attempt").await, 0);
}

#[tokio::test]
async fn applications_are_listed_and_withdrawn_in_scope() {
    let w = world().await;
    for (bill, seller) in [("AP-A", A), ("AP-B", B)] {
        sqlx::query(
            "INSERT INTO application (bill_no, bill_date, seller_tax_no, buyer_name, invoice_kind, source)
             VALUES ($1, '2026-11-01', $2, '购方', 'digital_ordinary', '批量导入')",
        )
        .bind(bill)
        .bind(seller)
        .execute(&w.db.pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO application_line (bill_no, line_no, goods_name, revenue_code, amount, tax_rate, tax, total)
             VALUES ($1, 1, '键盘', '1090511030000000000', 100, 0.13, 13, 113)",
        )
        .bind(bill)
        .execute(&w.db.pool)
        .await
        .unwrap();
    }
    let may_view = ["admin", "finance", "auditor", "auditor_a", "finance_b"];
    for (name, _, _) in USERS {
        let cookie = w.login(name).await;
        let expected = if may_view.contains(&name) { StatusCode::OK } else { StatusCode::FORBIDDEN };
        assert_eq!(w.send("GET", "/applications", Some(&cookie), None).await.status, expected, "as {name}");
    }
    let auditor_a = w.login("auditor_a").await;
    let page = w.send("GET", "/applications", Some(&auditor_a), None).await.body;
    assert!(
        page.contains("AP-A") && !page.contains("AP-B") && !page.contains("class=\"withdraw\""),
        "{page}"
    );
    assert_eq!(
        w.send("POST", "/applications/withdraw", Some(&auditor_a), Some("bill=AP-A")).await.status,
        StatusCode::FORBIDDEN
    );
    let finance_b = w.login("finance_b").await;
    let a = w.send("POST", "/applications/withdraw", Some(&finance_b), Some("bill=AP-A")).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "another enterprise's bill");
    let a = w.send("POST", "/applications/withdraw", Some(&finance_b), Some("bill=AP-B")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body.contains("开票申请单AP-B已撤回"));
    let states: Vec<(String, String)> =
        sqlx::query_as("SELECT bill_no, state FROM application ORDER BY bill_no")
            .fetch_all(&w.db.pool)
            .await
            .unwrap();
    // A withdrawn bill is gone (kept as JSON in application_withdrawal); A's is untouched.
    assert_eq!(states, [("AP-A".to_string(), "received".to_string())]);
    assert_eq!(
        w.scalar("SELECT count(*) FROM audit_log WHERE action = 'application.withdraw' AND outcome = 'ok'")
            .await,
        1
    );
}

/// The resident set size of this process, KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// 100 MiB sent as a stream through the Router lands whole on disk. The process's RSS growth,
/// sampled every 5 ms, is printed, not asserted: other tests of this binary run in the same
/// process and move it (measured alone: 19.0–19.4 MiB, the issue's bound is 64 MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mib_upload_streams_whole_to_disk() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    use axum::body::Body;
    use axum::http::{Request, header};
    use tokio::io::AsyncReadExt;
    use tower::ServiceExt;

    let w = world().await;
    let finance = w.login("finance").await;
    const SIZE: u64 = 100 << 20;
    let boundary = "----fapiao-memory";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\napplications\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let body = std::io::Cursor::new(head.into_bytes())
        .chain(tokio::io::repeat(b'x').take(SIZE))
        .chain(std::io::Cursor::new(tail.into_bytes()));
    let stream = tokio_util::io::ReaderStream::with_capacity(body, 64 << 10);
    let req = Request::builder()
        .method("POST")
        .uri("/imports")
        .header(header::COOKIE, &finance)
        .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
        .body(Body::from_stream(stream))
        .unwrap();
    let (done, peak) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let base = rss_kib();
    let sampler = {
        let (done, peak) = (done.clone(), peak.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        })
    };
    let res = w.router.clone().oneshot(req).await.unwrap();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let grew_mib = peak.load(Ordering::Relaxed).saturating_sub(base) as f64 / 1024.0;
    eprintln!("100 MiB upload: RSS {base} KiB before, peak grew by {grew_mib:.1} MiB");
    let stored: u64 = std::fs::read_dir(w.files.path().join("uploads"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().metadata().unwrap().len())
        .sum();
    assert_eq!(stored, SIZE, "the whole file is on disk");
}

#[tokio::test]
async fn a_red_flush_over_the_remaining_amount_shows_the_documented_refusal() {
    let w = world().await;
    w.issue_each_pending().await;
    let a_num = "26310000000000000001";
    for (name, allowed) in [("finance", true), ("admin", true), ("auditor", false), ("ops", false)] {
        let cookie = w.login(name).await;
        let expected = if allowed { StatusCode::OK } else { StatusCode::FORBIDDEN };
        assert_eq!(w.send("GET", "/red-flush", Some(&cookie), None).await.status, expected, "as {name}");
        if !allowed {
            let a =
                w.send("POST", "/red-flush", Some(&cookie), Some(&format!("num={a_num}&action=run"))).await;
            assert_eq!(a.status, StatusCode::FORBIDDEN);
        }
    }
    let finance = w.login("finance").await;
    let over = w
        .send(
            "POST",
            "/red-flush",
            Some(&finance),
            Some(&format!("num={a_num}&amount=200.00&action=preview")),
        )
        .await;
    assert_eq!(over.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", over.body);
    assert!(
        over.body
            .contains("剩余可红冲金额不足。开票管理→待开发票页面中可能存在本发票的未开票的数据，请先处理。"),
        "verbatim: {}",
        over.body
    );
    assert!(!over.body.contains(r#"id="run""#), "no button to go ahead");
    let part = w
        .send("POST", "/red-flush", Some(&finance), Some(&format!("num={a_num}&amount=13.00&action=preview")))
        .await;
    assert_eq!(part.status, StatusCode::OK, "{}", part.body);
    assert!(
        part.body.contains(r#"<td class="num" id="before">113.00</td>"#) && part.body.contains(r#"id="run""#)
    );
    assert!(part.body.contains(r#"<td class="num" id="after">100.00</td>"#), "{}", part.body);
    // Another enterprise's invoice: not even previewed.
    let finance_b = w.login("finance_b").await;
    let a =
        w.send("POST", "/red-flush", Some(&finance_b), Some(&format!("num={a_num}&action=preview"))).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.body.contains("不在您负责的企业范围内"));
    assert_eq!(w.scalar("SELECT count(*) FROM red_flush").await, 0, "previews change nothing");
}

#[tokio::test]
async fn a_task_left_running_by_another_process_says_so() {
    let w = world().await;
    let id = w
        .scalar(
            "INSERT INTO console_task (kind, actor, request, file_path)
             VALUES ('import', 'finance', '{\"kind\": \"applications\", \"file_name\": \"x.xlsx\"}', '/nonexistent') RETURNING id",
        )
        .await;
    let finance = w.login("finance").await;
    let page = w.send("GET", &format!("/imports/{id}"), Some(&finance), None).await.body;
    assert!(page.contains(r#"id="elsewhere""#) && page.contains(r#"id="progress""#), "{page}");
    // One this process runs does not say so: a fresh upload, while it runs or once done.
    let book = workbook(&w, "here.xlsx", "HERE", A, &[]);
    let a = w.upload("/imports", &finance, &[("kind", "applications")], Some(("here.xlsx", &book))).await;
    let page = w.send("GET", &a.location, Some(&finance), None).await.body;
    assert!(!page.contains(r#"id="elsewhere""#), "{page}");
    w.finished(task_of(&a.location)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finance_pushes_and_issues_chosen_bills_against_the_sandbox() {
    use fapiao_channel::sandbox::{Sandbox, SandboxConfig};
    let sandbox = Sandbox::start(SandboxConfig::default(), "127.0.0.1:0").await.unwrap();
    let url = sandbox.base_url();
    let w = world_with(move |s| s.channel.base_url = url).await;
    let finance = w.login("finance").await;
    let book = workbook(&w, "issue.xlsx", "ISS", A, &[]);
    let a = w.upload("/imports", &finance, &[("kind", "applications")], Some(("issue.xlsx", &book))).await;
    assert_eq!(w.finished(task_of(&a.location)).await, "done");
    let page = w.send("GET", "/applications", Some(&finance), None).await.body;
    assert!(page.contains(r#"name="bill" value="ISS0000000""#), "{page}");
    // Another enterprise's finance user may not issue A's bill; an auditor has no button.
    let finance_b = w.login("finance_b").await;
    let a = w.send("POST", "/applications/issue", Some(&finance_b), Some("bill=ISS0000000")).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let auditor = w.login("auditor").await;
    assert!(!w.send("GET", "/applications", Some(&auditor), None).await.body.contains("issue-bills"));
    let a = w.send("POST", "/applications/issue", Some(&finance), Some("bill=ISS0000000")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body.contains("开票成功") && a.body.contains("发票号码"), "{}", a.body);
    assert_eq!(w.scalar("SELECT count(*) FROM issued_invoice").await, 1);
    let page = w.send("GET", "/invoices", Some(&finance), None).await.body;
    assert!(page.contains("ISS0000000"), "{page}");
    // 交付 by e-mail: done through the channel, shown, audited without the address.
    let num: String =
        sqlx::query_scalar("SELECT invoice_num FROM issued_invoice").fetch_one(&w.db.pool).await.unwrap();
    let a = w
        .send("POST", &format!("/invoices/{num}/send"), Some(&auditor), Some("email=li%40example.com"))
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = w.send("POST", &format!("/invoices/{num}/send"), Some(&finance), Some("email=&phone=")).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    let a = w
        .send("POST", &format!("/invoices/{num}/send"), Some(&finance), Some("email=li%40example.com"))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body.contains("已邮件交付给购方") && a.body.contains("li@example.com"), "{}", a.body);
    let detail: String =
        sqlx::query_scalar("SELECT detail FROM audit_log WHERE action = 'invoices.send' AND outcome = 'ok'")
            .fetch_one(&w.db.pool)
            .await
            .unwrap();
    assert!(!detail.contains("li@example.com"), "{detail}");
}

#[tokio::test]
async fn finance_edits_a_pending_invoices_seller_fields_in_scope() {
    let w = world().await;
    let a_id = w.scalar("SELECT id FROM pending_invoice WHERE total = 113.00").await;
    let auditor = w.login("auditor").await;
    let page = w.send("GET", &format!("/pending/{a_id}"), Some(&auditor), None).await.body;
    assert!(!page.contains("edit-form"));
    let form = Some("address_phone=%E4%B8%8A%E6%B5%B7%E5%B8%82+021-1234&bank_account=");
    assert_eq!(
        w.send("POST", &format!("/pending/{a_id}/edit"), Some(&auditor), form).await.status,
        StatusCode::FORBIDDEN
    );
    let finance_b = w.login("finance_b").await;
    assert_eq!(
        w.send("POST", &format!("/pending/{a_id}/edit"), Some(&finance_b), form).await.status,
        StatusCode::NOT_FOUND
    );
    let finance = w.login("finance").await;
    let empty = w
        .send("POST", &format!("/pending/{a_id}/edit"), Some(&finance), Some("address_phone=&bank_account="))
        .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    let a = w.send("POST", &format!("/pending/{a_id}/edit"), Some(&finance), form).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body.contains("已修改销方信息"), "{}", a.body);
    let stored: Option<String> =
        sqlx::query_scalar("SELECT seller_address_phone FROM pending_invoice WHERE id = $1")
            .bind(a_id)
            .fetch_one(&w.db.pool)
            .await
            .unwrap();
    assert_eq!(stored.as_deref(), Some("上海市 021-1234"));
}

#[tokio::test]
async fn approval_steps_from_the_pending_list() {
    let w = world().await;
    let a_id = w.scalar("SELECT id FROM pending_invoice WHERE total = 113.00").await;
    sqlx::query("UPDATE pending_invoice SET approval_state = '暂存' WHERE id = $1")
        .bind(a_id)
        .execute(&w.db.pool)
        .await
        .unwrap();
    let state = || async {
        sqlx::query_scalar::<_, String>("SELECT approval_state FROM pending_invoice WHERE id = $1")
            .bind(a_id)
            .fetch_one(&w.db.pool)
            .await
            .unwrap()
    };
    let finance = w.login("finance").await;
    let a = w.send("POST", "/pending/act", Some(&finance), Some(&format!("action=submit&id={a_id}"))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(state().await, "已提交");
    let a = w
        .send("POST", "/pending/act", Some(&finance), Some(&format!("action=reject&id={a_id}&reason=")))
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.body.contains("驳回须填写原因"));
    let a = w.send("POST", "/pending/act", Some(&finance), Some(&format!("action=approve&id={a_id}"))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(state().await, "已审核");
    let auditor = w.login("auditor").await;
    let a = w.send("POST", "/pending/act", Some(&auditor), Some(&format!("action=submit&id={a_id}"))).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(w.scalar("SELECT count(*) FROM audit_log WHERE action IN ('pending.submit', 'pending.approve') AND outcome = 'ok'").await, 2);
}

#[tokio::test]
async fn receipt_statistics_by_role_and_scope_with_a_date_range() {
    let w = world().await;
    // A receipt of each enterprise scanned and invoiced on 2026-11-02 (Beijing time).
    for sql in [
        "INSERT INTO receipt_scan (tax_no, order_no, scanned_at)
              VALUES ($1, 'O-A', '2026-11-02 03:00Z'), ($2, 'O-B', '2026-11-02 03:00Z')",
        "INSERT INTO receipt_claim (tax_no, order_no, bill_no, mode, total, created_at)
              VALUES ($1, 'O-A', 'XP-A', 'stored', 12.34, '2026-11-02 03:00Z'), ($2, 'O-B', 'XP-B', 'stored', 56.78, '2026-11-02 03:00Z')",
    ] {
        sqlx::query(sql).bind(A).bind(B).execute(&w.db.pool).await.unwrap();
    }
    let range = "/receipts/stats?from=2026-11-01&to=2026-11-30";
    // (user, status, sees A, sees B)
    let table = [
        ("admin", StatusCode::OK, true, true),
        ("ops", StatusCode::FORBIDDEN, false, false),
        ("finance", StatusCode::OK, true, true),
        ("auditor", StatusCode::OK, true, true),
        ("auditor_a", StatusCode::OK, true, false),
        ("finance_b", StatusCode::OK, false, true),
    ];
    for (name, status, sees_a, sees_b) in table {
        let cookie = w.login(name).await;
        let a = w.send("GET", range, Some(&cookie), None).await;
        assert_eq!(a.status, status, "GET {range} as {name}: {}", a.body);
        assert_eq!(a.body.contains("12.34"), sees_a, "{name} and A's amount");
        assert_eq!(a.body.contains("56.78"), sees_b, "{name} and B's amount");
        let home = w.send("GET", "/", Some(&cookie), None).await;
        assert_eq!(home.body.contains("href=\"/receipts/stats\""), status == StatusCode::OK, "{name}'s menu");
    }
    // The whole tenant: a row per enterprise and the totals.
    let admin = w.login("admin").await;
    let a = w.send("GET", range, Some(&admin), None).await;
    assert!(a.body.contains("2026-11-02") && a.body.contains("69.12"), "{}", a.body);
    // Another scope's enterprise asked by name: refused, nothing of it shown.
    let auditor_a = w.login("auditor_a").await;
    let other = w.send("GET", &format!("{range}&tax_no={B}"), Some(&auditor_a), None).await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    assert!(!other.body.contains("56.78") && other.body.contains("不在您负责的范围内"), "{}", other.body);
    let own = w.send("GET", &format!("{range}&tax_no={A}"), Some(&auditor_a), None).await;
    assert_eq!(own.status, StatusCode::OK);
    assert!(own.body.contains("12.34"));
    // The date range filters; a bad date or range is told.
    let later = w.send("GET", "/receipts/stats?from=2026-11-03&to=2026-11-30", Some(&admin), None).await;
    assert_eq!(later.status, StatusCode::OK);
    assert!(!later.body.contains("12.34") && later.body.contains("该范围内没有小票码数据"), "{}", later.body);
    let bad = w.send("GET", "/receipts/stats?from=2026-13-01", Some(&admin), None).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let backwards = w.send("GET", "/receipts/stats?from=2026-11-30&to=2026-11-01", Some(&admin), None).await;
    assert_eq!(backwards.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(w.send("GET", "/receipts/stats", None, None).await.location, "/login");
}
