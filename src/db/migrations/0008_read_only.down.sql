ALTER TABLE app_state DROP COLUMN maintenance_mode;
