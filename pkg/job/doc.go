// Package job binds verified workload identities to job cgroups.
//
// Enrollment creates <cgroup2>/<root>/job-<id>, moves the enrolling process
// into it and records the binding (cgroup id → identity) on disk before the
// process can open a single connection. Every child inherits the cgroup, so
// the binding covers the whole process tree; the gate finds it by the cgroup
// id the kernel recorded at connect(). Bindings survive daemon restarts; a
// job's cgroup and binding are removed when its last process exits. A
// binding expires with its token.
package job
