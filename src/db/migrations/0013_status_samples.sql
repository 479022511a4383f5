-- The public status page's uptime (issue 16): one sample per minute of what users met —
-- operational, read-only, maintenance or emergency — written by whichever API instance gets
-- there first (ON CONFLICT DO NOTHING on the minute). request_metrics keeps only an hour, so it
-- cannot answer "the last 90 days"; this table keeps 91 days and prunes as it writes.
CREATE TABLE status_samples (
  minute timestamptz PRIMARY KEY CHECK (minute = date_trunc('minute', minute)),
  state  text NOT NULL CHECK (state IN ('operational', 'read-only', 'maintenance', 'emergency'))
);
