DROP TABLE audit_log, cache_epochs, app_state, password_reset_tokens, user_preferences, tasks, sessions, users;
