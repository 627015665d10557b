package kube

import (
	"mime"
	"strings"
)

// jsonOnly rewrites an Accept header so that the server answers in JSON:
// protobuf and CBOR media types are dropped (Table requests, which are
// JSON with a parameter, stay); an Accept left empty asks for JSON.
func jsonOnly(accept []string) string {
	var keep []string
	for _, a := range accept {
		for _, part := range strings.Split(a, ",") {
			part = strings.TrimSpace(part)
			mt, _, err := mime.ParseMediaType(part)
			if err != nil || part == "" {
				continue
			}
			if mt == "application/json" || mt == "*/*" || mt == "application/*" {
				if mt != "application/json" {
					part = "application/json"
				}
				keep = append(keep, part)
			}
		}
	}
	if len(keep) == 0 {
		return "application/json"
	}
	return strings.Join(keep, ", ")
}
