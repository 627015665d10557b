#!/bin/sh
# Install what sluice's tests need on Debian 12: the servers the end-to-end
# tests run (nginx, PostgreSQL), the clients they drive (curl, psql,
# pgbench, Chromium for the approvals page), etcd for the Kubernetes
# control plane (test/testkube), clang/libbpf for `make
# generate`, qemu and cpio for the older-kernel test, systemd-analyze for the
# unit check. Quiet and quick when everything is already there.
set -eu
# "demo" installs only what `make demo` needs.
scope="${1:-test}"
need=""
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }
have nginx || need="$need nginx-light"
have curl || need="$need curl"
if [ "$scope" = test ]; then
have clang || need="$need clang llvm"
[ -f /usr/include/bpf/bpf_helpers.h ] || need="$need libbpf-dev"
have bpftool || need="$need bpftool"
have qemu-system-x86_64 || need="$need qemu-system-x86"
have cpio || need="$need cpio"
have systemd-analyze || need="$need systemd"
have chromium || need="$need chromium"
have pgbench || [ -x /usr/lib/postgresql/15/bin/pgbench ] || need="$need postgresql postgresql-contrib"
have etcd || need="$need etcd-server"
fi
if [ -n "$need" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "deps.sh: missing:$need (run as root to install them)" >&2
		exit 0
	fi
	echo "deps.sh: installing$need"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $need >/dev/null
fi
# Debian's nginx package starts a default server on :80 of every address;
# the tests run their own nginx in network namespaces and need none.
if [ "$(id -u)" = 0 ] && [ -f /etc/nginx/sites-enabled/default ] && pgrep -x nginx >/dev/null 2>&1; then
	nginx -s stop 2>/dev/null || true
fi
