// Package gate is the proxy every steered connection lands on. For each
// accepted connection it asks, in order: which agent socket is this and
// where was it going (pkg/intercept), which job and identity is that
// (pkg/job), which configured target is the destination (pkg/target), and
// what does policy say (pkg/policy). Only then does it hand the connection
// to the target's protocol handler (pkg/protocol/...).
//
// Every "don't know" is a refusal: unattributed connections, unbound
// cgroups, expired tokens, unknown targets, policy errors, loops back into
// the proxy. Each refusal is logged and counted.
package gate
