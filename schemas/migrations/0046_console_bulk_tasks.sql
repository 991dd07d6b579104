-- The console's long actions as background tasks too (issue 19): issue or push-and-issue every
-- item matching a list's filter (`bulk`), red-flush an uploaded list (`red_flush_list`).
ALTER TABLE console_task DROP CONSTRAINT console_task_kind_check;
ALTER TABLE console_task ADD CONSTRAINT console_task_kind_check
    CHECK (kind IN ('import', 'export', 'bulk', 'red_flush_list'));
