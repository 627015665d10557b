package target

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sort"

	"github.com/sluice-gate/sluice/pkg/config"
)

// Target is a configured destination.
type Target struct {
	Name        string
	Address     string // as configured
	Protocol    string
	Labels      map[string]string
	Credentials config.Credentials
	TLS         config.UpstreamTLS

	addr config.Address
	// resolved holds the addresses of a host-name target at load time.
	resolved []netip.Addr
}

// Port is the target's port.
func (t *Target) Port() uint16 { return t.addr.Port }

// Host is the host name in the target's address, or "" when the address
// is an IP address or a CIDR.
func (t *Target) Host() string { return t.addr.Host }

// Set is an immutable set of targets, built once per configuration load.
type Set struct {
	targets []*Target
}

// Resolver looks up host names; net.DefaultResolver satisfies it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// NewSet builds a set from configuration, resolving host names with r (nil
// means net.DefaultResolver). A name that does not resolve is an error: a
// target that silently matches nothing would look like a policy refusal.
func NewSet(ctx context.Context, cfgs []config.Target, r Resolver) (*Set, error) {
	if r == nil {
		r = net.DefaultResolver
	}
	s := &Set{}
	for _, c := range cfgs {
		a, err := config.ParseAddress(c.Address)
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", c.Name, err)
		}
		t := &Target{
			Name: c.Name, Address: c.Address, Protocol: c.Protocol,
			Labels: c.Labels, Credentials: c.Credentials, TLS: c.TLS, addr: a,
		}
		if a.Host != "" {
			addrs, err := r.LookupNetIP(ctx, "ip", a.Host)
			if err != nil {
				return nil, fmt.Errorf("target %s: resolve %s: %w", c.Name, a.Host, err)
			}
			for _, ip := range addrs {
				t.resolved = append(t.resolved, ip.Unmap())
			}
		}
		s.targets = append(s.targets, t)
	}
	return s, nil
}

// Len is the number of targets.
func (s *Set) Len() int { return len(s.targets) }

// All returns the targets sorted by name.
func (s *Set) All() []*Target {
	out := append([]*Target(nil), s.targets...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Match returns the target for dst, or nil. When several match, the most
// specific wins: a single address (or a resolved host name) beats a CIDR,
// and a longer prefix beats a shorter one; ties go to the first configured.
func (s *Set) Match(dst netip.AddrPort) *Target {
	ip := dst.Addr().Unmap()
	var (
		best     *Target
		bestBits = -1
	)
	for _, t := range s.targets {
		if t.addr.Port != dst.Port() {
			continue
		}
		bits := -1
		if t.addr.Host != "" {
			for _, r := range t.resolved {
				if r == ip {
					bits = ip.BitLen()
					break
				}
			}
		} else if t.addr.Prefix.Contains(ip) {
			bits = t.addr.Prefix.Bits()
		}
		if bits > bestBits {
			best, bestBits = t, bits
		}
	}
	return best
}
