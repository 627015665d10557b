// Package testhost builds throwaway "remote" hosts for sluice's end-to-end
// tests, benchmarks and demo: a network namespace joined to the host by a
// veth pair, with addresses from the benchmarking ranges 198.18.0.0/15 and
// 2001:2::/48, and real servers (nginx from Debian) running inside. An agent
// on the host that dials a Host's address really crosses sluice's steering
// path, and the server really sees the connection arrive from the host side
// of the veth.
//
// Everything is built with netlink (github.com/vishvananda/netlink and
// netns), never by shelling out to ip(8). It needs root.
package testhost
