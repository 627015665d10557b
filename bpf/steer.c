// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * steer.c: the kernel half of sluice's data path.
 *
 * Attached to the agents cgroup (<cgroup2>/<name>), these programs see every
 * socket of every process in a job cgroup below it:
 *
 *   connect4/6      TCP: remember the original destination and the caller,
 *                   keyed by socket cookie, then rewrite the destination to
 *                   the local proxy. UDP connect: only to a resolver.
 *   sockops         at TCP_CONNECT_CB (port chosen, SYN not yet sent) copy
 *                   the record to a map keyed by the client address/port, which
 *                   is all the proxy sees after accept().
 *   getpeername4/6  report the original peer, not the proxy.
 *   sendmsg4/6      unconnected UDP: only to a configured resolver.
 *   sock_create     no raw, packet or ICMP sockets in a job.
 *   sock_release    forget the cookie record.
 *
 * There is deliberately no "is the proxy up?" check anywhere: when the proxy
 * is down the rewritten connect fails with ECONNREFUSED. Failing a record
 * update refuses the connect too. Nothing here ever lets a connection through
 * unsteered.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "steer.h"

#define ALLOW 1
#define DENY 0

/* Referenced so that the enum reaches BTF and bpf2go generates it. */
const enum stat_index *unused_stat_index __attribute__((unused));

/* Set by the loader before load (bpf2go: Variables["proxy_port"]). */
volatile const __u16 proxy_port = 15001;

/* Maps are LRU: a full plain hash would make updates fail, and a failed
 * update refuses connects; LRU evicts the oldest record instead. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct conn_info);
} conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct peer_key);
	__type(value, struct conn_info);
} peers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct resolver_key);
	__type(value, __u8);
} resolvers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);
	if (v)
		(*v)++;
}

static __always_inline void mapped4(__u8 out[16], __u32 ip4_be)
{
	__u32 *w = (__u32 *)out;
	w[0] = 0;
	w[1] = 0;
	w[2] = bpf_htonl(0x0000ffff);
	w[3] = ip4_be;
}

static __always_inline int is_mapped6(const __u32 w[4])
{
	return w[0] == 0 && w[1] == 0 && w[2] == bpf_htonl(0x0000ffff);
}

static __always_inline int resolver_allowed(const __u8 addr[16], __u32 port_be)
{
	struct resolver_key key = {};
	__builtin_memcpy(key.addr, addr, 16);
	key.port = bpf_ntohs((__u16)port_be);
	if (bpf_map_lookup_elem(&resolvers, &key)) {
		count(STAT_UDP_ALLOWED);
		return ALLOW;
	}
	count(STAT_UDP_DENIED);
	return DENY;
}

static __always_inline int udp4(struct bpf_sock_addr *ctx)
{
	__u8 addr[16];
	mapped4(addr, ctx->user_ip4);
	return resolver_allowed(addr, ctx->user_port);
}

static __always_inline int udp6(struct bpf_sock_addr *ctx)
{
	__u32 w[4];
	w[0] = ctx->user_ip6[0];
	w[1] = ctx->user_ip6[1];
	w[2] = ctx->user_ip6[2];
	w[3] = ctx->user_ip6[3];
	return resolver_allowed((__u8 *)w, ctx->user_port);
}

/* record stores who is connecting where, under the socket's cookie. */
static __always_inline int record(struct bpf_sock_addr *ctx, struct conn_info *info)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();

	info->dst_port = bpf_ntohs((__u16)ctx->user_port);
	info->family = (__u16)ctx->family;
	info->tgid = pid_tgid >> 32;
	info->tid = (__u32)pid_tgid;
	info->uid = (__u32)uid_gid;
	info->gid = uid_gid >> 32;
	info->cgroup_id = bpf_get_current_cgroup_id();
	info->cookie = bpf_get_socket_cookie(ctx);
	info->connect_ns = bpf_ktime_get_boot_ns();
	bpf_get_current_comm(info->comm, sizeof(info->comm));

	if (bpf_map_update_elem(&conns, &info->cookie, info, BPF_ANY)) {
		count(STAT_RECORD_FAILED);
		return DENY;
	}
	count(STAT_REDIRECTED);
	return ALLOW;
}

SEC("cgroup/connect4")
int connect4(struct bpf_sock_addr *ctx)
{
	struct conn_info info = {};

	if (ctx->type == SLUICE_SOCK_DGRAM)
		return udp4(ctx);
	if (ctx->type != SLUICE_SOCK_STREAM) {
		count(STAT_OTHER_DENIED);
		return DENY;
	}
	mapped4(info.dst_addr, ctx->user_ip4);
	if (record(ctx, &info) != ALLOW)
		return DENY;
	ctx->user_ip4 = bpf_htonl(0x7f000001);
	ctx->user_port = bpf_htons(proxy_port);
	return ALLOW;
}

SEC("cgroup/connect6")
int connect6(struct bpf_sock_addr *ctx)
{
	struct conn_info info = {};
	__u32 *dst = (__u32 *)info.dst_addr;

	if (ctx->type == SLUICE_SOCK_DGRAM)
		return udp6(ctx);
	if (ctx->type != SLUICE_SOCK_STREAM) {
		count(STAT_OTHER_DENIED);
		return DENY;
	}
	dst[0] = ctx->user_ip6[0];
	dst[1] = ctx->user_ip6[1];
	dst[2] = ctx->user_ip6[2];
	dst[3] = ctx->user_ip6[3];
	if (record(ctx, &info) != ALLOW)
		return DENY;

	if (is_mapped6(dst)) {
		/* A dual-stack socket dialing an IPv4 peer: keep it IPv4 so the
		 * connection lands on the 127.0.0.1 listener. */
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = bpf_htonl(0x0000ffff);
		ctx->user_ip6[3] = bpf_htonl(0x7f000001);
	} else {
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = 0;
		ctx->user_ip6[3] = bpf_htonl(1);
	}
	ctx->user_port = bpf_htons(proxy_port);
	return ALLOW;
}

SEC("sockops")
int track_port(struct bpf_sock_ops *ops)
{
	struct peer_key key = {};
	struct conn_info *info;
	__u64 cookie;

	if (ops->op != BPF_SOCK_OPS_TCP_CONNECT_CB)
		return 1;
	cookie = bpf_get_socket_cookie(ops);
	info = bpf_map_lookup_elem(&conns, &cookie);
	if (!info)
		return 1;

	if (ops->family == SLUICE_AF_INET) {
		mapped4(key.addr, ops->local_ip4);
	} else {
		__u32 *w = (__u32 *)key.addr;
		w[0] = ops->local_ip6[0];
		w[1] = ops->local_ip6[1];
		w[2] = ops->local_ip6[2];
		w[3] = ops->local_ip6[3];
	}
	key.port = (__u16)ops->local_port;
	if (bpf_map_update_elem(&peers, &key, info, BPF_ANY) == 0)
		count(STAT_TRACKED);
	/* On failure the proxy cannot attribute the connection and refuses it. */
	return 1;
}

SEC("cgroup/getpeername4")
int getpeername4(struct bpf_sock_addr *ctx)
{
	__u64 cookie = bpf_get_socket_cookie(ctx);
	struct conn_info *info = bpf_map_lookup_elem(&conns, &cookie);

	if (!info)
		return 1;
	ctx->user_ip4 = ((__u32 *)info->dst_addr)[3];
	ctx->user_port = bpf_htons(info->dst_port);
	return 1;
}

SEC("cgroup/getpeername6")
int getpeername6(struct bpf_sock_addr *ctx)
{
	__u64 cookie = bpf_get_socket_cookie(ctx);
	struct conn_info *info = bpf_map_lookup_elem(&conns, &cookie);
	__u32 *dst;

	if (!info)
		return 1;
	dst = (__u32 *)info->dst_addr;
	ctx->user_ip6[0] = dst[0];
	ctx->user_ip6[1] = dst[1];
	ctx->user_ip6[2] = dst[2];
	ctx->user_ip6[3] = dst[3];
	ctx->user_port = bpf_htons(info->dst_port);
	return 1;
}

SEC("cgroup/sendmsg4")
int sendmsg4(struct bpf_sock_addr *ctx)
{
	return udp4(ctx);
}

SEC("cgroup/sendmsg6")
int sendmsg6(struct bpf_sock_addr *ctx)
{
	return udp6(ctx);
}

SEC("cgroup/sock_create")
int sock_create(struct bpf_sock *sk)
{
	__u32 type = sk->type;
	__u32 proto = sk->protocol;

	if (sk->family == SLUICE_AF_PACKET)
		goto deny;
	/* Only plain TCP and UDP: the connect and sendmsg hooks above cover
	 * exactly those. Raw, ICMP "ping", SCTP, MPTCP, UDP-Lite... would each
	 * be a way around them. */
	if (type == SLUICE_SOCK_STREAM &&
	    (proto == SLUICE_IPPROTO_IP || proto == SLUICE_IPPROTO_TCP))
		return ALLOW;
	if (type == SLUICE_SOCK_DGRAM &&
	    (proto == SLUICE_IPPROTO_IP || proto == SLUICE_IPPROTO_UDP))
		return ALLOW;
deny:
	count(STAT_SOCK_DENIED);
	return DENY;
}

SEC("cgroup/sock_release")
int sock_release(struct bpf_sock *sk)
{
	__u64 cookie = bpf_get_socket_cookie(sk);

	bpf_map_delete_elem(&conns, &cookie);
	return 1;
}

char __license[] SEC("license") = "Dual BSD/GPL";
