// Package postgres is sluice's PostgreSQL protocol handler. Towards the
// agent it is a PostgreSQL server: SSL negotiation with a host-CA
// certificate, start-up without a password (identity came from the kernel
// and the token), simple and extended query protocol, COPY, cancel
// requests. Towards the target it is an ordinary client (pgconn) that logs
// in with credentials only sluice holds.
//
// Every statement is parsed with the real PostgreSQL parser (subpackage
// pgsql) and put to policy before it reaches the target. A refused
// statement is answered with an ErrorResponse (SQLSTATE 42501) in the
// protocol's own order, and the target is made to fail the same request,
// so transaction state stays exactly as PostgreSQL would leave it. Rows,
// COPY data, notices and errors coming back are masked according to the
// decision before the agent sees them, one message at a time.
//
// Wire framing is github.com/jackc/pgx/v5/pgproto3; nothing here encodes
// PostgreSQL messages by hand.
package postgres
