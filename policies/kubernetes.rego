# METADATA
# title: sluice default policy for the Kubernetes API
# description: |
#   Secret values (data, stringData, and the last-applied annotation that
#   repeats them) are masked in every response, unless the identity is in
#   a group the target's secret_readers label names ("a,b"). On targets
#   labelled env: production, deleting a namespace is refused, and exec,
#   attach and port-forward into a protected namespace (prod, production,
#   kube-system, or those the target's protected_namespaces label names)
#   wait for approval by a member of "reviewers".
#   input.operation for API requests: {verb, resource_request, api_group,
#   api_version, resource, subresource, namespace, name, patch_type,
#   label_selector, field_selector, command, container, stdin, tty, ports,
#   and the HTTP fields (method, path, query, body, ...)}.
package sluice

kube if input.operation.protocol == "kubernetes"

kube_resource if {
	kube
	input.operation.resource_request
}

# Groups named by the target's secret_readers label.
secret_readers contains trim_space(g) if {
	some g in split(object.get(input.target, ["labels", "secret_readers"], ""), ",")
	trim_space(g) != ""
}

secret_values_allowed if count(secret_readers & groups) > 0

secret_paths := [
	"$..data",
	"$..stringData",
	`$..annotations["kubectl.kubernetes.io/last-applied-configuration"]`,
]

mask contains {"path": p, "strategy": "redact"} if {
	kube_resource
	input.operation.resource == "secrets"
	not secret_values_allowed
	some p in secret_paths
}

deny contains msg if {
	production
	kube_resource
	input.operation.resource == "namespaces"
	input.operation.verb in {"delete", "deletecollection"}
	msg := sprintf("deleting namespace %q is not allowed on production target %q", [input.operation.name, input.target.name])
}

protected_namespaces contains ns if some ns in {"prod", "production", "kube-system"}

protected_namespaces contains trim_space(ns) if {
	some ns in split(object.get(input.target, ["labels", "protected_namespaces"], ""), ",")
	trim_space(ns) != ""
}

interactive if input.operation.subresource in {"exec", "attach", "portforward"}

approval := {
	"required": true,
	"reviewers": ["reviewers"],
	"ttl": "15m",
	"reason": sprintf("%s into %s/%s on production target %q", [input.operation.subresource, input.operation.namespace, input.operation.name, input.target.name]),
} if {
	production
	kube_resource
	interactive
	input.operation.namespace in protected_namespaces
}
