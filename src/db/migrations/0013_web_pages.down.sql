DROP TABLE console_sessions;
DROP TABLE status_samples;
