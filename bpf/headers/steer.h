/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Shared definitions between the steering programs (steer.c) and the Go
 * loader in pkg/bpf. bpf2go generates the Go side of every struct here, so
 * the layout is defined once.
 */
#ifndef SLUICE_STEER_H
#define SLUICE_STEER_H

#include <linux/types.h>

#define SLUICE_AF_INET 2
#define SLUICE_AF_INET6 10
#define SLUICE_AF_PACKET 17

#define SLUICE_SOCK_STREAM 1
#define SLUICE_SOCK_DGRAM 2
#define SLUICE_SOCK_RAW 3

#define SLUICE_IPPROTO_IP 0
#define SLUICE_IPPROTO_ICMP 1
#define SLUICE_IPPROTO_TCP 6
#define SLUICE_IPPROTO_UDP 17
#define SLUICE_IPPROTO_ICMPV6 58

#define SLUICE_COMM_LEN 16

/*
 * conn_info is what the kernel knows about an agent's connect() at the
 * moment it happens. Addresses are 16 bytes; IPv4 is stored IPv4-mapped
 * (::ffff:a.b.c.d) so that one key and one record shape serve both families.
 */
struct conn_info {
	__u8 dst_addr[16];   /* original destination, network byte order */
	__u16 dst_port;      /* original destination port, host byte order */
	__u16 family;        /* socket family: AF_INET or AF_INET6 */
	__u32 tgid;          /* process id (thread group) */
	__u32 tid;           /* thread that called connect() */
	__u32 uid;
	__u32 gid;
	__u32 _pad;
	__u64 cgroup_id;     /* cgroup v2 id of the calling task */
	__u64 cookie;        /* socket cookie of the agent's socket */
	__u64 connect_ns;    /* bpf_ktime_get_boot_ns() at connect() */
	char comm[SLUICE_COMM_LEN];
};

/*
 * peer_key names the agent's end of a redirected connection as the proxy
 * sees it after accept(): the client address (IPv4-mapped for IPv4) and the
 * client port in host byte order.
 */
struct peer_key {
	__u8 addr[16];
	__u16 port;
	__u16 _pad;
};

/* resolver_key is a DNS resolver that UDP may reach (port in host order). */
struct resolver_key {
	__u8 addr[16];
	__u16 port;
	__u16 _pad;
};

/* Indexes into the per-CPU stats array. */
enum stat_index {
	STAT_REDIRECTED = 0,   /* TCP connects steered to the proxy */
	STAT_TRACKED,          /* client ports recorded at TCP connect */
	STAT_RECORD_FAILED,    /* connects refused because the record failed */
	STAT_UDP_ALLOWED,      /* datagrams / UDP connects to a resolver */
	STAT_UDP_DENIED,       /* UDP to anything else */
	STAT_SOCK_DENIED,      /* socket() refused (raw, packet, icmp, ...) */
	STAT_OTHER_DENIED,     /* connect on an unexpected socket type */
	STAT_MAX,
};

#endif
