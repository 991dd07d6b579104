-- 撤回 of a returned bill (seed 001: returned, corrected in the ERP, pushed again under its number).
-- A returned bill's lines were once held by pending invoices now deleted; those links go into
-- application_withdrawal with the rest of the bill, so the number is free again.
ALTER TABLE application_withdrawal
    ADD COLUMN released jsonb NOT NULL DEFAULT '[]';

-- A callback is a message to the bill's ERP, its body complete when enqueued: the 退回 callback
-- must still reach the ERP when the bill is withdrawn at once, so it no longer hangs on the
-- application row. Its fingerprints (returned:<pending id>, the invoice states) stay unique
-- when the number comes again.
ALTER TABLE callback DROP CONSTRAINT callback_bill_no_fkey;
