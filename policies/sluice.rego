# METADATA
# title: sluice default policy
# description: |
#   Every enrolled job may reach every configured target and nothing else.
#   A target labelled allowed_groups: "a,b" is reachable only by identities
#   whose groups claim contains one of those groups.
#
#   sluice queries data.sluice.decision for every connection (and, with
#   protocol handlers, every request). Add files to this package to extend
#   it: every `deny contains reason if ...` rule anywhere in package sluice
#   refuses, every `mask contains rule if ...` adds a masking rule.
#   postgres.rego holds the rules for SQL statements.
package sluice

# The decision document. See pkg/policy.Decision.
decision := {
	"allow": allow,
	"deny": deny,
	"approval": approval,
	"mask": mask,
	"audit": audit,
}

default allow := false

allow if count(deny) == 0

default approval := {"required": false}

# Audit-critical requests are on disk in the session recording before they
# reach the target: every write (any effect) and every approval.
default audit := {"critical": false}

audit := {"critical": true} if count(input.operation.effects) > 0

audit := {"critical": true} if approval.required

# Masking everywhere: payment card numbers and US social security numbers
# are redacted wherever they appear in results, e-mail addresses partly.
mask contains {"detector": "pan", "strategy": "redact"}

mask contains {"detector": "us_ssn", "strategy": "redact"}

mask contains {"detector": "email", "strategy": "partial"}

# The identity's groups claim as a set (absent claim: no groups).
groups contains g if some g in input.identity.claims.groups

deny contains "no verified workload identity" if not input.identity.subject

deny contains "destination is not a configured target" if not input.target.name

# Groups named by the target's allowed_groups label.
target_groups contains trim_space(g) if {
	some g in split(object.get(input.target, ["labels", "allowed_groups"], ""), ",")
	trim_space(g) != ""
}

deny contains msg if {
	count(target_groups) > 0
	count(target_groups & groups) == 0
	msg := sprintf("target %q is restricted to groups %s", [input.target.name, concat(", ", sort(target_groups))])
}
