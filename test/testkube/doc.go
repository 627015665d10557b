// Package testkube runs a real, small Kubernetes control plane for sluice's
// tests: etcd (Debian's etcd-server), kube-apiserver and a fake kubelet,
// all inside a testhost network namespace, with kubectl to drive it.
//
// The apiserver listens on https://<host Addr4>:6443 with a serving
// certificate from a throwaway CA (Cluster.CAPEM), authenticates static
// bearer tokens (an admin in system:masters and a "viewer" bound to a
// read-only role without secrets or exec) and authorizes with RBAC. A Node "node-1" points at
// the fake kubelet on <host Addr4>:10250, and a Pod "shell" in the default
// namespace is bound to it and marked Running, so `kubectl exec shell --
// CMD` really goes kubectl → apiserver → kubelet and runs CMD as a local
// process inside the namespace. A Secret "db-creds" and a namespace "prod"
// are there too.
//
// kube-apiserver, kubectl and fake-kubelet are built from the separate
// module in test/kubetools (test/kubetools/build.sh); a cold build takes
// about ten minutes, so tests skip with a clear reason when the binaries
// are missing unless SLUICE_KUBE_BUILD=1 asks them to build.
//
// Everything needs root (network namespaces). Namespaces are named with
// Prefix ("slk"); testhost.CleanupStale(Prefix) removes leftovers.
package testkube
