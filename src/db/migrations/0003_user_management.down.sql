DROP TABLE login_throttle, erasure_ledger_salt, erasure_ledger, user_exports, deletion_approvals, deletion_requests;
