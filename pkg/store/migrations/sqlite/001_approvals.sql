-- Held requests and their outcomes. Everything a reviewer needs to judge a
-- request is here, denormalized, so the record stands on its own later.
CREATE TABLE approvals (
	id            TEXT PRIMARY KEY,
	instance      TEXT NOT NULL,        -- the daemon run that holds the connection
	created       TEXT NOT NULL,        -- RFC 3339, UTC
	deadline      TEXT NOT NULL,
	status        TEXT NOT NULL,        -- pending, approved, denied, expired, cancelled, abandoned
	target        TEXT NOT NULL,
	protocol      TEXT NOT NULL,
	action        TEXT NOT NULL,
	operation     TEXT NOT NULL,        -- the statement or request text
	fingerprint   TEXT NOT NULL,
	reason        TEXT NOT NULL,        -- why policy wants approval
	reviewers     TEXT NOT NULL,        -- JSON array of groups, any of which may decide
	requester_sub TEXT NOT NULL,
	requester_iss TEXT NOT NULL,
	job           TEXT NOT NULL,
	conn          TEXT NOT NULL,
	detail        TEXT NOT NULL,        -- JSON: identity claims, process, operation fields
	decided_at    TEXT,
	decided_by    TEXT,                 -- reviewer subject, or "sluice" for expiry/abandonment
	decided_iss   TEXT,
	outcome_reason TEXT,
	window_until  TEXT                  -- an approval granting a time-boxed window
);
CREATE INDEX approvals_status ON approvals (status, created);

-- Time-boxed windows: the same statement fingerprint, by the same
-- identity, on the same target, is approved until "until".
CREATE TABLE approval_windows (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	approval_id   TEXT NOT NULL REFERENCES approvals (id),
	target        TEXT NOT NULL,
	fingerprint   TEXT NOT NULL,
	requester_sub TEXT NOT NULL,
	requester_iss TEXT NOT NULL,
	until         TEXT NOT NULL
);
CREATE INDEX approval_windows_lookup ON approval_windows (target, fingerprint, requester_sub, requester_iss);

-- Every approval event, append-only: requested, approved, denied,
-- expired, cancelled, abandoned, window-used.
CREATE TABLE approval_events (
	seq         INTEGER PRIMARY KEY AUTOINCREMENT,
	at          TEXT NOT NULL,
	approval_id TEXT NOT NULL,
	event       TEXT NOT NULL,
	actor       TEXT NOT NULL,
	detail      TEXT NOT NULL
);
