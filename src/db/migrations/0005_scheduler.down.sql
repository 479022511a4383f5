-- The job queue's own schema (shipshape_queue) is pg-boss's and is left alone; drop it by hand
-- (DROP SCHEMA shipshape_queue CASCADE) once no worker runs.
ALTER TABLE app_state DROP COLUMN banner_set_by, DROP COLUMN banner_until, DROP COLUMN banner_message;
DROP TABLE maintenance_notice_emails, maintenance_notices, admin_tokens, scheduled_notifications, schedules;
