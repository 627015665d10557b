// Package httpproxy serves HTTP targets. Towards the agent it terminates
// TLS with a certificate the host CA mints for the target's names (plain
// HTTP is served too) and speaks HTTP/1.1 and HTTP/2; every request is
// one operation for policy (method, host, path, query, headers without
// credential values, a bounded view of a JSON body). Refused requests get
// a 403 with the reason; held ones wait in their connection for a
// reviewer; allowed ones go to the target with the target's credentials
// in place of any the agent sent, and JSON and text responses are masked
// as they stream back. Every request and its result are recorded.
//
// Package kube is this handler with hooks (Config.Classify, Refuse,
// Prepare, Observe) for the Kubernetes API.
package httpproxy
