// Package approval holds requests that policy says need a human's approval,
// inside their live connections, until a reviewer decides.
//
// Every protocol handler reaches it through one call (Service.Hold, given
// to handlers as protocol.Session.Approve): the held request is written to
// the store, announced (webhook, event stream), and its connection simply
// waits. A reviewer approves or denies it through the CLI, the JSON API or
// the web page, all authenticated with an OIDC token and checked against
// the reviewer groups the policy named; nobody approves their own request.
// An approval covers exactly the held request, unless the reviewer grants a
// time-boxed window for the same statement fingerprint, identity and
// target. Unanswered requests are denied at their deadline; requests held
// by a daemon that has since restarted are marked abandoned. Every step is
// an event in the store.
package approval
