// Package recorder is the daemon's recording service. Every connection
// through sluice, refused ones included, becomes a session: one record file
// (pkg/record: append-only, hash-chained) under the recordings directory,
// and one row in the session index (pkg/store: SQLite, or PostgreSQL for a
// fleet) that remembers the file's last known position, so that a
// truncated or replaced file shows when it is verified.
//
// The gate opens a session per connection and hands protocol handlers its
// recording (protocol.Recording); handlers record each request before it
// goes on, and its result after. Retention deletes old recordings by age
// and total size, and keeps a log of every deletion. The CLI reads the
// index and the files directly (sluice sessions, replay, verify, export),
// so an auditor needs no running daemon.
package recorder
