DROP TRIGGER cache_epochs_notify ON cache_epochs;
DROP TRIGGER app_state_notify ON app_state;
DROP FUNCTION notify_app_state_changed();
DROP TRIGGER tasks_bump_version_on_delete ON tasks;
DROP TRIGGER tasks_bump_version_on_update ON tasks;
DROP TRIGGER tasks_bump_version_on_insert ON tasks;
DROP FUNCTION bump_task_list_versions();
DROP TABLE task_list_versions, notification_deliveries, notification_chunks, notification_jobs, devices;
