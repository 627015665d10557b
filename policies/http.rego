# METADATA
# title: sluice default policy for HTTP requests
# description: |
#   On targets labelled env: production, DELETE is refused. Everything else
#   is allowed; responses are masked by the rules in sluice.rego (card
#   numbers, SSNs, e-mail addresses). input.operation for HTTP requests:
#   {method, host, path, raw_path, query: {name: [values]}, headers (no
#   credential values), credentials (the names of credential headers the
#   agent sent, which sluice strips), content_type, content_length, body
#   (a JSON body of up to 64 KiB), body_truncated, effects}.
package sluice

http_request if input.operation.protocol == "http"

deny contains msg if {
	production
	http_request
	input.operation.method == "DELETE"
	msg := sprintf("DELETE %s is not allowed on production target %q", [input.operation.path, input.target.name])
}
