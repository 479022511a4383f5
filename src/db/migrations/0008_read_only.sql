-- Read-only mode: maintenance in which reads are served and writes answer 503 with the
-- message. `db restore` puts the application in it while it loads the backup beside the live
-- database, and switches to full maintenance ('full', the only mode before) just for the swap.
ALTER TABLE app_state
  ADD COLUMN maintenance_mode text NOT NULL DEFAULT 'full' CHECK (maintenance_mode IN ('full', 'read-only'));
