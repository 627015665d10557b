// Package cgroup finds the cgroup v2 hierarchy and manages the cgroups
// sluice puts agent jobs in: create, move a process in, read a cgroup's id
// (the value bpf_get_current_cgroup_id returns), tell whether it still has
// processes, and remove it.
//
// The daemon and the BPF loader use it; nothing here knows about tokens or
// policy.
package cgroup
