package sluice_test

import data.sluice

prod := {
	"identity": {"subject": "build-42", "claims": {"groups": ["ci"]}},
	"target": {"name": "orders", "protocol": "postgres", "address": "198.18.0.2:5432", "labels": {"env": "production"}},
}

dev := object.union(prod, {"target": {"labels": {"env": "dev"}}})

stmt(kind, effects) := {
	"protocol": "postgres", "action": "query", "kind": kind, "command": upper(kind),
	"effects": effects, "opaque": false,
}

eff(action, name, where) := {"action": action, "object": "table", "name": name, "has_where": where}

decide(base, op) := d if {
	d := sluice.decision with input as object.union(base, {"operation": op})
}

test_select_allowed if {
	d := decide(prod, stmt("select", []))
	d.allow
	not d.approval.required
}

test_drop_denied_on_production if {
	d := decide(prod, stmt("drop", [eff("drop", "orders", false)]))
	not d.allow
	d.deny == {`DROP of table orders is not allowed on production target "orders"`}
}

test_truncate_denied_on_production if {
	d := decide(prod, stmt("truncate", [eff("truncate", "a", false), eff("truncate", "b", false)]))
	count(d.deny) == 2
}

test_drop_allowed_elsewhere if {
	d := decide(dev, stmt("drop", [eff("drop", "orders", false)]))
	d.allow
}

test_delete_without_where_denied if {
	d := decide(prod, stmt("delete", [eff("delete", "orders", false)]))
	not d.allow
}

test_delete_with_where_allowed if {
	d := decide(prod, stmt("delete", [eff("delete", "orders", true)]))
	d.allow
}

test_hidden_delete_in_cte_denied if {
	# WITH x AS (DELETE FROM orders RETURNING *) SELECT * FROM x
	d := decide(prod, stmt("select", [eff("delete", "orders", false)]))
	not d.allow
}

test_ddl_needs_approval_on_production if {
	d := decide(prod, object.union(stmt("ddl", [eff("create", "idx", false)]), {"command": "CREATE INDEX"}))
	d.allow
	d.approval.required
	d.approval.reviewers == ["reviewers"]
}

test_ddl_free_elsewhere if {
	d := decide(dev, stmt("ddl", [eff("create", "t", false)]))
	not d.approval.required
}

test_opaque_needs_approval_on_production if {
	d := decide(prod, object.union(stmt("do", []), {"opaque": true, "command": "DO"}))
	d.approval.required
}

test_connect_is_not_a_statement if {
	d := decide(prod, {"protocol": "postgres", "action": "connect", "database": "orders"})
	d.allow
	not d.approval.required
}

test_masks_cards_ssns_emails_everywhere if {
	d := decide(dev, stmt("select", []))
	{"detector": "pan", "strategy": "redact"} in d.mask
	{"detector": "us_ssn", "strategy": "redact"} in d.mask
	{"detector": "email", "strategy": "partial"} in d.mask
}

test_writes_and_approvals_are_audit_critical if {
	decide(dev, stmt("delete", [eff("delete", "orders", true)])).audit.critical
	decide(prod, stmt("ddl", [eff("create", "t", false)])).audit.critical
	not decide(dev, stmt("select", [])).audit.critical
}
