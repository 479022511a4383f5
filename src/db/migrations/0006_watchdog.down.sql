ALTER TABLE schedules DROP COLUMN last_outcome_ok;
DROP TABLE watchdog_evaluations, watchdog_alerts, request_metrics;
