// Package kube serves Kubernetes API targets. It is the HTTP handler
// (package httpproxy) with the API's own vocabulary: requests are
// classified by the API server's own request parser into verb, group,
// resource, subresource, namespace and name (and, for exec and attach,
// the command); refusals are Status objects that kubectl prints; responses
// are forced to JSON so that masking (Secret values by default) sees
// everything; and exec, attach and port-forward streams are recorded as
// terminal sessions with their exit status (package remotecmd reads them).
package kube
