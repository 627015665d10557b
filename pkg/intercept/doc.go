// Package intercept attributes a connection accepted by the proxy: which
// agent socket it is (from the kernel's record, via pkg/bpf), where the
// agent meant to go, and which process opened it (tgid, uid and comm from
// the kernel at connect time; exe, cmdline and parents from /proc).
//
// The gate calls Attribute for every accepted connection and refuses the
// ones it cannot attribute.
package intercept
