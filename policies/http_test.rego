package sluice_test

import data.sluice

web_prod := {
	"identity": {"subject": "deploy-7", "claims": {"groups": ["ci"]}},
	"target": {"name": "api", "protocol": "http", "address": "198.18.0.2:443", "labels": {"env": "production"}},
}

web_dev := object.union(web_prod, {"target": {"labels": {"env": "dev"}}})

req(method, path) := {"protocol": "http", "action": lower(method), "method": method, "path": path, "host": "api.internal"}

test_get_allowed if {
	d := decide(web_prod, req("GET", "/v1/orders"))
	d.allow
	not d.audit.critical
}

test_delete_denied_on_production if {
	d := decide(web_prod, req("DELETE", "/v1/orders/7"))
	not d.allow
	d.deny == {`DELETE /v1/orders/7 is not allowed on production target "api"`}
}

test_delete_allowed_elsewhere if {
	d := decide(web_dev, req("DELETE", "/v1/orders/7"))
	d.allow
}

test_writes_are_audit_critical if {
	d := decide(web_dev, object.union(req("POST", "/v1/orders"), {"effects": [{"action": "post"}]}))
	d.audit.critical
}

test_responses_masked if {
	d := decide(web_prod, req("GET", "/v1/customers"))
	{"detector": "pan", "strategy": "redact"} in d.mask
}
