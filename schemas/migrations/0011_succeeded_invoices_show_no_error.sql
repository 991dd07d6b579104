-- An invoice that succeeded shows no error (issue 14, 2d). Since this release, recording a success
-- clears the message and "not before" time of earlier attempts; this clears those left on
-- invoices that succeeded before. Their history stays in pending_event.
UPDATE pending_invoice
   SET error_message = NULL, retry_not_before = NULL, updated_at = now()
 WHERE status = 'succeeded' AND (error_message IS NOT NULL OR retry_not_before IS NOT NULL);
