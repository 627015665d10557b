package kube

import (
	"mime"
	"strings"
)

// jsonOnly rewrites an Accept header so that the server answers in JSON:
// protobuf and CBOR media types are dropped, and so are Table requests
// (JSON with an "as" parameter) unless tables is true; an Accept left
// empty asks for JSON.
func jsonOnly(accept []string, tables bool) string {
	var keep []string
	for _, a := range accept {
		for _, part := range strings.Split(a, ",") {
			part = strings.TrimSpace(part)
			mt, params, err := mime.ParseMediaType(part)
			if err != nil || part == "" {
				continue
			}
			if _, as := params["as"]; as && !tables {
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
