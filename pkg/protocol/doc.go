// Package protocol defines what the gate hands a protocol handler: a
// Session (who, from which process, to which target, with a way to ask
// policy about each request and to dial upstream) and the client
// connection. Handlers live in subpackages, one per protocol: tcp (opaque
// splice) now; postgres, mysql, http, kube and ssh plug in the same way.
package protocol
