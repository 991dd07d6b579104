-- The console's lists page by their default order (issue 19, `fapiao bench console`): each list
-- reads one page of 50–200 rows from an index in that order instead of sorting every match.

-- /pending: oldest first by id (the primary key), keyset `id > last`; a status or seller filter
-- (a scoped user's enterprise) walks its own index in id order. Replaces the status-only index.
DROP INDEX IF EXISTS pending_invoice_status;
CREATE INDEX pending_invoice_status_id ON pending_invoice (status, id) WHERE deleted_at IS NULL;
CREATE INDEX pending_invoice_seller_id ON pending_invoice (seller_tax_no, id) WHERE deleted_at IS NULL;

-- /invoices: newest first (invoice_date DESC, id DESC), all or one seller's.
CREATE INDEX issued_invoice_day_id ON issued_invoice (invoice_date, id);
DROP INDEX IF EXISTS issued_invoice_seller_day;
CREATE INDEX issued_invoice_seller_day ON issued_invoice (seller_tax_no, invoice_date, id);

-- /pool: newest first (invoice_date DESC, invoice_num DESC), all or one receiving enterprise's.
CREATE INDEX invoice_pool_day_num ON invoice_pool (invoice_date, invoice_num);
CREATE INDEX invoice_pool_tax_day_num ON invoice_pool (tax_no, invoice_date, invoice_num);
