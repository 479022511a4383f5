-- Instances keep recently authenticated sessions in memory (src/domain/session-cache.ts) so
-- an authenticated request costs one round trip. Whatever ends or changes a session — logout,
-- a password change or reset, `user revoke`, an erasure's cascade, a DBA's UPDATE — NOTIFYs
-- every instance in the transaction that does it, delivered at commit, so a revoked session
-- stops working everywhere within milliseconds. Payloads: `s:<session id>`, `u:<user id>`
-- (the user's name or address changed, or the user is gone), `all` (TRUNCATE).
CREATE FUNCTION notify_session_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    PERFORM pg_notify('shipshape_sessions', 'all');
  ELSIF TG_TABLE_NAME = 'users' THEN
    PERFORM pg_notify('shipshape_sessions', 'u:' || OLD.id::text);
  ELSE
    PERFORM pg_notify('shipshape_sessions', 's:' || OLD.id::text);
  END IF;
  RETURN NULL;
END
$$;

-- last_seen_at is written on every authentication that is due one; it must not notify.
CREATE TRIGGER sessions_notify_update AFTER UPDATE ON sessions FOR EACH ROW
  WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at OR OLD.expires_at IS DISTINCT FROM NEW.expires_at
        OR OLD.token_hash IS DISTINCT FROM NEW.token_hash OR OLD.user_id IS DISTINCT FROM NEW.user_id)
  EXECUTE FUNCTION notify_session_changed();
CREATE TRIGGER sessions_notify_delete AFTER DELETE ON sessions FOR EACH ROW
  EXECUTE FUNCTION notify_session_changed();
CREATE TRIGGER sessions_notify_truncate AFTER TRUNCATE ON sessions FOR EACH STATEMENT
  EXECUTE FUNCTION notify_session_changed();
CREATE TRIGGER users_notify_session_update AFTER UPDATE ON users FOR EACH ROW
  WHEN (OLD.email IS DISTINCT FROM NEW.email OR OLD.display_name IS DISTINCT FROM NEW.display_name)
  EXECUTE FUNCTION notify_session_changed();
CREATE TRIGGER users_notify_session_delete AFTER DELETE ON users FOR EACH ROW
  EXECUTE FUNCTION notify_session_changed();
