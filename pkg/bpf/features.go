package bpf

import (
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
)

// Feature is one kernel capability the steering programs rely on.
type Feature struct {
	Name      string `json:"name"`
	Available bool   `json:"available"`
	Detail    string `json:"detail,omitempty"`
}

// Features probes the running kernel for what the steering programs need.
// It is informational (`sluice status`); Load fails on its own when
// something is missing.
func Features() []Feature {
	var out []Feature
	add := func(name string, err error) {
		f := Feature{Name: name, Available: err == nil}
		if err != nil {
			f.Detail = err.Error()
		}
		out = append(out, f)
	}
	add("prog:cgroup_sock_addr", features.HaveProgramType(ebpf.CGroupSockAddr))
	add("prog:cgroup_sock", features.HaveProgramType(ebpf.CGroupSock))
	add("prog:sock_ops", features.HaveProgramType(ebpf.SockOps))
	add("map:lru_hash", features.HaveMapType(ebpf.LRUHash))
	for _, h := range []struct {
		name string
		fn   asm.BuiltinFunc
	}{
		{"get_current_pid_tgid", asm.FnGetCurrentPidTgid},
		{"get_current_comm", asm.FnGetCurrentComm},
		{"get_current_cgroup_id", asm.FnGetCurrentCgroupId},
		{"get_socket_cookie", asm.FnGetSocketCookie},
		{"ktime_get_boot_ns", asm.FnKtimeGetBootNs},
	} {
		add("helper:cgroup_sock_addr:"+h.name, features.HaveProgramHelper(ebpf.CGroupSockAddr, h.fn))
	}
	_, err := os.Stat("/sys/kernel/btf/vmlinux")
	add("btf:vmlinux", err)
	return out
}
