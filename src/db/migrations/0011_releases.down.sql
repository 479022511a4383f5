DROP TABLE request_metrics_by_version;
DROP TABLE release_rollouts;
DROP TABLE releases;
