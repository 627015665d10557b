-- The session index: one row per recorded connection; the recording itself
-- is a file (pkg/record) whose final state the index remembers, so a
-- truncated or replaced file shows.
CREATE TABLE sessions (
	id         TEXT PRIMARY KEY,
	instance   TEXT NOT NULL,        -- the daemon run that recorded it
	host       TEXT NOT NULL,
	target     TEXT NOT NULL,
	protocol   TEXT NOT NULL,
	subject    TEXT NOT NULL,
	issuer     TEXT NOT NULL,
	job        TEXT NOT NULL,
	pid        BIGINT NOT NULL,
	exe        TEXT NOT NULL,
	start      TEXT NOT NULL,
	end_time   TEXT,
	state      TEXT NOT NULL,        -- open, closed, interrupted, refused
	file       TEXT NOT NULL,
	records    BIGINT NOT NULL,     -- as of the last update
	last_hash  TEXT NOT NULL,
	bytes      BIGINT NOT NULL,
	requests   BIGINT NOT NULL,
	refusals   BIGINT NOT NULL
);
CREATE INDEX sessions_start ON sessions (start);
CREATE INDEX sessions_target ON sessions (target, start);
CREATE INDEX sessions_subject ON sessions (subject, start);

-- Recordings deleted by retention, and why: the deletions are themselves
-- kept.
CREATE TABLE session_deletions (
	seq        BIGSERIAL PRIMARY KEY,
	at         TEXT NOT NULL,
	session_id TEXT NOT NULL,
	file       TEXT NOT NULL,
	bytes      BIGINT NOT NULL,
	last_hash  TEXT NOT NULL,
	reason     TEXT NOT NULL
);
