#!/bin/sh
# Build the Kubernetes programs sluice's tests run against into OUTDIR
# (default .cache/kube/bin under the repository root):
#
#   kube-apiserver, kubectl  from k8s.io/kubernetes (the version go.mod pins)
#   fake-kubelet             ./fake-kubelet: serves exec, attach, port-forward
#
# A program is rebuilt only when it is missing or older than the sources it
# comes from, so a CI run builds once and every later call returns at once.
# A cold build of kube-apiserver and kubectl takes about ten minutes on two
# cores; with a warm Go build cache, well under a minute.
#
# Usage: test/kubetools/build.sh [OUTDIR]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out="${1:-$root/.cache/kube/bin}"
mkdir -p "$out"
out=$(cd "$out" && pwd)

# stale BIN FILE...: BIN is missing or a FILE is newer than it.
stale() {
	bin="$out/$1"
	shift
	[ -x "$bin" ] || return 0
	for f in "$@"; do
		[ "$f" -nt "$bin" ] && return 0
	done
	return 1
}

common="$here/go.mod $here/go.sum $here/build.sh"
kube=""
stale kube-apiserver $common && kube="$kube kube-apiserver"
stale kubectl $common && kube="$kube kubectl"
fake=""
# shellcheck disable=SC2046
stale fake-kubelet $common $(find "$here/fake-kubelet" -name '*.go') && fake=1
[ -n "$kube$fake" ] || exit 0

if ! command -v go >/dev/null 2>&1; then
	[ -x /usr/local/go/bin/go ] || { echo "build.sh: no go toolchain" >&2; exit 1; }
	PATH="/usr/local/go/bin:$PATH"
fi
cd "$here"
export GOWORK=off
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

# The version the binaries report (kubectl version, the apiserver's
# /version), as Kubernetes' own release build stamps it.
kver=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)
minor=$(echo "$kver" | cut -d. -f2)
ldflags="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags="$ldflags -X $p.gitVersion=$kver -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
done

start=$(date +%s)
for b in $kube; do
	echo "build.sh: building $b $kver" >&2
	go build -ldflags "$ldflags" -o "$out/$b.new" "k8s.io/kubernetes/cmd/$b"
	mv "$out/$b.new" "$out/$b"
done
if [ -n "$fake" ]; then
	echo "build.sh: building fake-kubelet" >&2
	go build -ldflags "-s -w" -o "$out/fake-kubelet.new" ./fake-kubelet
	mv "$out/fake-kubelet.new" "$out/fake-kubelet"
fi
echo "build.sh: done in $(($(date +%s) - start))s, in $out" >&2
