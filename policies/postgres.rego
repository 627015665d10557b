# METADATA
# title: sluice default policy for SQL statements
# description: |
#   On targets labelled env: production: DROP and TRUNCATE are refused,
#   UPDATE and DELETE without WHERE are refused, and any other schema
#   change (or a statement whose effects cannot be seen, such as a DO
#   block running dynamic SQL) waits for approval by a member of the
#   "reviewers" group. input.operation for PostgreSQL statements:
#   {kind, command, statement (normalized), fingerprint, reads, writes,
#    functions, effects: [{action, object, name, has_where}], opaque,
#    where_missing, database, copy, ...}.
package sluice

production if input.target.labels.env == "production"

sql if input.operation.protocol == "postgres"

statement if {
	sql
	input.operation.action != "connect"
}

deny contains msg if {
	production
	statement
	some e in input.operation.effects
	e.action in {"drop", "truncate"}
	msg := sprintf("%s of %s %s is not allowed on production target %q", [upper(e.action), e.object, e.name, input.target.name])
}

deny contains msg if {
	production
	statement
	some e in input.operation.effects
	e.action in {"update", "delete"}
	not e.has_where
	msg := sprintf("%s on %s without a WHERE clause is not allowed on production target %q", [upper(e.action), e.name, input.target.name])
}

schema_change if {
	some e in input.operation.effects
	e.action in {"create", "alter", "grant", "revoke", "comment", "rename", "refresh"}
}

schema_change if input.operation.kind in {"ddl", "grant"}

approval := {
	"required": true,
	"reviewers": ["reviewers"],
	"ttl": "15m",
	"reason": sprintf("%s on production target %q", [input.operation.command, input.target.name]),
} if {
	production
	statement
	schema_change
}

approval := {
	"required": true,
	"reviewers": ["reviewers"],
	"ttl": "15m",
	"reason": sprintf("%s runs statements sluice cannot see on production target %q", [input.operation.command, input.target.name]),
} if {
	production
	statement
	not schema_change
	input.operation.opaque
}
