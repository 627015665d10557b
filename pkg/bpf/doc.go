// Package bpf loads sluice's kernel programs (bpf/steer.c), attaches them to
// the agents cgroup and reads what they record.
//
// The daemon uses it at start-up (Load), on every accepted proxy connection
// (Steering.Lookup: which agent socket is this, and where did it want to go?)
// and on reload (Steering.SetResolvers). `sluice uninstall` uses Uninstall.
//
// Links are pinned under the configured bpffs directory so the programs
// outlive the daemon: if sluiced dies, agents keep being steered to a port
// nobody listens on and get ECONNREFUSED instead of a way around the gate. A
// restarted daemon finds the pinned links and swaps its freshly loaded
// programs into them.
package bpf
