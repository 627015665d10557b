package sluice_test

import data.sluice

kube_prod := {
	"identity": {"subject": "deploy-9", "claims": {"groups": ["ci"]}},
	"target": {"name": "cluster", "protocol": "kubernetes", "address": "198.18.0.5:6443", "labels": {"env": "production"}},
}

kreq(verb, resource, ns, name) := {
	"protocol": "kubernetes", "action": verb, "verb": verb, "resource_request": true,
	"resource": resource, "subresource": "", "namespace": ns, "name": name,
}

kexec(ns) := object.union(kreq("create", "pods", ns, "shell"), {"subresource": "exec", "command": ["sh"]})

test_get_pods_allowed if {
	d := decide(kube_prod, kreq("list", "pods", "default", ""))
	d.allow
	count([r | some r in d.mask; r.path]) == 0
}

test_secrets_masked if {
	d := decide(kube_prod, kreq("get", "secrets", "default", "db"))
	d.allow
	{"path": "$..data", "strategy": "redact"} in d.mask
	{"path": "$..stringData", "strategy": "redact"} in d.mask
}

test_secret_readers_see_values if {
	base := object.union(kube_prod, {"target": {"labels": {"secret_readers": "ops, sre"}}, "identity": {"claims": {"groups": ["sre"]}}})
	d := decide(base, kreq("get", "secrets", "default", "db"))
	count([r | some r in d.mask; r.path]) == 0
}

test_delete_namespace_denied_on_production if {
	d := decide(kube_prod, kreq("delete", "namespaces", "", "prod"))
	not d.allow
	d.deny == {`deleting namespace "prod" is not allowed on production target "cluster"`}
}

test_exec_in_default_allowed if {
	d := decide(kube_prod, kexec("default"))
	d.allow
	not d.approval.required
}

test_exec_in_prod_needs_approval if {
	d := decide(kube_prod, kexec("prod"))
	d.approval.required
	d.approval.reviewers == ["reviewers"]
}

test_protected_namespaces_label if {
	base := object.union(kube_prod, {"target": {"labels": {"protected_namespaces": "payments"}}})
	decide(base, kexec("payments")).approval.required
}
