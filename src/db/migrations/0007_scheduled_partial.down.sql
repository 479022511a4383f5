-- Partial sends become failed (the nearest status the older schema has), keeping their cause.
ALTER TABLE scheduled_notifications DROP CONSTRAINT scheduled_notifications_status_check;
UPDATE scheduled_notifications SET status = 'failed' WHERE status = 'partial';
ALTER TABLE scheduled_notifications ADD CONSTRAINT scheduled_notifications_status_check
  CHECK (status IN ('pending', 'queued', 'sending', 'sent', 'failed', 'cancelled'));
