DROP TABLE status_samples;
