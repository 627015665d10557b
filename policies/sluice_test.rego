package sluice_test

import data.sluice

base := {
	"identity": {"subject": "build-42", "issuer": "http://127.0.0.1:15002", "claims": {"sub": "build-42", "groups": ["ci"]}},
	"process": {"pid": 10, "exe": "/usr/bin/curl"},
	"target": {"name": "web", "protocol": "tcp", "address": "198.18.0.2:80", "labels": {}},
	"operation": {"protocol": "tcp", "action": "connect", "resource": "198.18.0.2:80"},
}

test_configured_target_allowed if {
	d := sluice.decision with input as base
	d.allow
	count(d.deny) == 0
	not d.approval.required
}

test_unconfigured_target_denied if {
	d := sluice.decision with input as object.union(object.remove(base, ["target"]), {"target": {}})
	not d.allow
	"destination is not a configured target" in d.deny
}

test_no_identity_denied if {
	d := sluice.decision with input as object.union(object.remove(base, ["identity"]), {"identity": {"claims": {}}})
	not d.allow
	"no verified workload identity" in d.deny
}

restricted := object.union(base, {"target": {"name": "db", "protocol": "tcp", "address": "198.18.0.2:5432", "labels": {"allowed_groups": "dba, ops"}}})

test_group_restricted_target_denied_without_group if {
	d := sluice.decision with input as restricted
	not d.allow
	d.deny == {`target "db" is restricted to groups dba, ops`}
}

test_group_restricted_target_allowed_with_group if {
	d := sluice.decision with input as object.union(restricted, {"identity": {"subject": "dba-1", "claims": {"groups": ["ops"]}}})
	d.allow
}

test_group_claim_absent_counts_as_no_groups if {
	d := sluice.decision with input as object.union(object.remove(restricted, ["identity"]), {"identity": {"subject": "x", "claims": {}}})
	not d.allow
}

test_empty_allowed_groups_label_means_unrestricted if {
	unrestricted := object.union(base, {"target": {"name": "web", "labels": {"allowed_groups": " , "}}})
	d := sluice.decision with input as unrestricted
	d.allow
}
