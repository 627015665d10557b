// Package store is sluiced's embedded database: SQLite through a pure-Go
// driver (modernc.org/sqlite), in the state directory. It owns the schema
// and its migrations (migrations/NNN_name.sql, applied in order, each in a
// transaction, recorded in schema_migrations) and gives the packages that
// keep state in it (pkg/approval now) a *sql.DB to run their own queries on.
package store
