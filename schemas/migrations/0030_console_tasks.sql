-- The web console's background work (issue 19): an uploaded workbook imported, a reconciliation
-- export built. One row per task: who asked, the enterprises it concerns (the uploader's scope, or
-- the export's enterprises), what was asked, and once finished the outcome — an import's summary
-- with every problem (a rejected or dry-run import lands no batch, so its problems live here), an
-- export's manifest and the zip's SHA-256.

CREATE TABLE console_task (
    id           bigserial   PRIMARY KEY,
    kind         text        NOT NULL CHECK (kind IN ('import', 'export')),
    actor        text        NOT NULL,
    tax_nos      text[]      NOT NULL DEFAULT '{}',
    state        text        NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done', 'failed')),
    request      jsonb       NOT NULL,
    result       jsonb,
    error        text,
    error_code   text,
    file_path    text        NOT NULL,
    report_path  text,
    sha256       text,
    batch_id     bigint,
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
CREATE INDEX console_task_kind ON console_task (kind, id DESC);
CREATE INDEX console_task_batch ON console_task (batch_id) WHERE batch_id IS NOT NULL;
