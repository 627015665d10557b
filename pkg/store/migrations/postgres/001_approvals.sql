-- Held requests and their outcomes (see the sqlite twin for comments).
CREATE TABLE approvals (
	id            TEXT PRIMARY KEY,
	instance      TEXT NOT NULL,
	created       TEXT NOT NULL,
	deadline      TEXT NOT NULL,
	status        TEXT NOT NULL,
	target        TEXT NOT NULL,
	protocol      TEXT NOT NULL,
	action        TEXT NOT NULL,
	operation     TEXT NOT NULL,
	fingerprint   TEXT NOT NULL,
	reason        TEXT NOT NULL,
	reviewers     TEXT NOT NULL,
	requester_sub TEXT NOT NULL,
	requester_iss TEXT NOT NULL,
	job           TEXT NOT NULL,
	conn          TEXT NOT NULL,
	detail        TEXT NOT NULL,
	decided_at    TEXT,
	decided_by    TEXT,
	decided_iss   TEXT,
	outcome_reason TEXT,
	window_until  TEXT
);
CREATE INDEX approvals_status ON approvals (status, created);

CREATE TABLE approval_windows (
	id            BIGSERIAL PRIMARY KEY,
	approval_id   TEXT NOT NULL REFERENCES approvals (id),
	target        TEXT NOT NULL,
	fingerprint   TEXT NOT NULL,
	requester_sub TEXT NOT NULL,
	requester_iss TEXT NOT NULL,
	until         TEXT NOT NULL
);
CREATE INDEX approval_windows_lookup ON approval_windows (target, fingerprint, requester_sub, requester_iss);

CREATE TABLE approval_events (
	seq         BIGSERIAL PRIMARY KEY,
	at          TEXT NOT NULL,
	approval_id TEXT NOT NULL,
	event       TEXT NOT NULL,
	actor       TEXT NOT NULL,
	detail      TEXT NOT NULL
);
