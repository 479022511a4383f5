DROP TABLE ota_update_health;
DROP TABLE ota_rollouts;
DROP TABLE ota_releases;
DROP TABLE ota_assets;
DROP TABLE ota_updates;
