package kube

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/endpoints/request"

	"github.com/sluice-gate/sluice/pkg/policy"
)

// infos parses request paths with the API server's own code, so that
// policy sees the request as the server will understand it.
var infos = &request.RequestInfoFactory{
	APIPrefixes:          sets.NewString("api", "apis"),
	GrouplessAPIPrefixes: sets.NewString("api"),
}

// Limits on what classification reads from the query.
const maxCommand = 256

// classify turns an API request into the operation policy sees:
// action is the verb (get, list, watch, create, update, patch, delete,
// deletecollection, and for non-resource paths the HTTP verb), resource
// the resource type. Fields carry api_group, api_version, resource,
// subresource, namespace, name, patch_type (apply for server-side
// apply), and for exec and attach the command, container and stdio.
func classify(r *http.Request, op *policy.Operation) error {
	info, err := infos.NewRequestInfo(r)
	if err != nil {
		return fmt.Errorf("not a Kubernetes API request: %w", err)
	}
	if info.Verb == "" {
		return fmt.Errorf("not a Kubernetes API request: method %s on %s has no verb", r.Method, r.URL.Path)
	}
	f := op.Fields
	op.Protocol = "kubernetes"
	op.Action = info.Verb
	f["verb"] = info.Verb
	f["resource_request"] = info.IsResourceRequest
	if !info.IsResourceRequest {
		op.Resource = info.Path
		f["text"] = info.Verb + " " + info.Path
		return nil
	}
	defer func() { f["text"] = describe(info, f["command"]) }()
	f["api_group"] = info.APIGroup
	f["api_version"] = info.APIVersion
	f["resource"] = info.Resource
	f["subresource"] = info.Subresource
	f["namespace"] = info.Namespace
	f["name"] = info.Name
	op.Resource = info.Resource
	if info.Verb == "patch" {
		f["patch_type"] = patchType(r.Header.Get("Content-Type"))
	}
	if info.LabelSelector != "" {
		f["label_selector"] = info.LabelSelector
	}
	if info.FieldSelector != "" {
		f["field_selector"] = info.FieldSelector
	}
	switch info.Subresource {
	case "exec", "attach":
		q := r.URL.Query()
		cmd := q["command"]
		if len(cmd) > maxCommand {
			return errors.New("exec command has too many arguments")
		}
		l := make([]any, len(cmd))
		for i, a := range cmd {
			l[i] = a
		}
		f["command"] = l
		f["container"] = q.Get("container")
		f["stdin"] = q.Get("stdin") == "true" || q.Get("stdin") == "1"
		f["tty"] = q.Get("tty") == "true" || q.Get("tty") == "1"
	case "portforward":
		var ports []any
		for _, p := range r.URL.Query()["ports"] {
			ports = append(ports, p)
		}
		f["ports"] = ports
	}
	return nil
}

// describe is the text a reviewer reads, close to the kubectl command:
// "create pods/exec shell -n prod -- echo hi", "delete namespaces prod".
func describe(info *request.RequestInfo, command any) string {
	var b strings.Builder
	b.WriteString(info.Verb)
	b.WriteByte(' ')
	if info.APIGroup != "" {
		b.WriteString(info.Resource + "." + info.APIGroup)
	} else {
		b.WriteString(info.Resource)
	}
	if info.Subresource != "" {
		b.WriteString("/" + info.Subresource)
	}
	if info.Name != "" {
		b.WriteString(" " + info.Name)
	}
	if info.Namespace != "" && !(info.Resource == "namespaces" && info.Namespace == info.Name) {
		b.WriteString(" -n " + info.Namespace)
	}
	if args, ok := command.([]any); ok && len(args) > 0 {
		b.WriteString(" --")
		for _, a := range args {
			s := a.(string)
			if s == "" || strings.ContainsAny(s, " \t\n'\"\\$;&|<>*?`") {
				s = strconv.Quote(s)
			}
			b.WriteString(" " + s)
		}
	}
	return b.String()
}

// patchType names a PATCH's content type as kubectl does.
func patchType(ct string) string {
	mt, _, _ := mime.ParseMediaType(ct)
	switch mt {
	case "application/apply-patch+yaml", "application/apply-patch+cbor":
		return "apply"
	case "application/merge-patch+json":
		return "merge"
	case "application/strategic-merge-patch+json":
		return "strategic"
	case "application/json-patch+json":
		return "json"
	}
	return strings.TrimPrefix(mt, "application/")
}
