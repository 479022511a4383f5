-- A scheduled notification whose send finished with some chunks failed (not delivered) and
-- others sent is `partial`; one where nothing went out is `failed`. Both carry the cause in
-- `error`. Before this, a send whose every chunk failed was recorded as `sent`.
ALTER TABLE scheduled_notifications DROP CONSTRAINT scheduled_notifications_status_check;
ALTER TABLE scheduled_notifications ADD CONSTRAINT scheduled_notifications_status_check
  CHECK (status IN ('pending', 'queued', 'sending', 'sent', 'partial', 'failed', 'cancelled'));
