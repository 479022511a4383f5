DROP TRIGGER users_notify_session_delete ON users;
DROP TRIGGER users_notify_session_update ON users;
DROP TRIGGER sessions_notify_truncate ON sessions;
DROP TRIGGER sessions_notify_delete ON sessions;
DROP TRIGGER sessions_notify_update ON sessions;
DROP FUNCTION notify_session_changed();
