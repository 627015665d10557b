package target

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/sluice-gate/sluice/pkg/config"
)

type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, errors.New("no such host")
}

func TestMatch(t *testing.T) {
	cfgs := []config.Target{
		{Name: "net", Address: "198.18.0.0/24:80", Protocol: "tcp"},
		{Name: "web", Address: "198.18.0.2:80", Protocol: "tcp"},
		{Name: "v6", Address: "[2001:2::2]:443", Protocol: "tcp"},
		{Name: "named", Address: "db.internal:5432", Protocol: "tcp"},
		{Name: "wide", Address: "198.18.0.0/15:80", Protocol: "tcp"},
	}
	r := fakeResolver{"db.internal": {netip.MustParseAddr("198.18.1.9"), netip.MustParseAddr("::ffff:198.18.1.10")}}
	s, err := NewSet(context.Background(), cfgs, r)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		dst  string
		want string
	}{
		{"198.18.0.2:80", "web"},
		{"198.18.0.3:80", "net"},
		{"198.18.5.3:80", "wide"},
		{"198.18.0.2:81", ""},
		{"[2001:2::2]:443", "v6"},
		{"[2001:2::3]:443", ""},
		{"198.18.1.9:5432", "named"},
		{"198.18.1.10:5432", "named"},
		{"198.18.1.11:5432", ""},
		{"10.0.0.1:80", ""},
	}
	for _, tt := range tests {
		got := s.Match(netip.MustParseAddrPort(tt.dst))
		name := ""
		if got != nil {
			name = got.Name
		}
		if name != tt.want {
			t.Errorf("Match(%s) = %q, want %q", tt.dst, name, tt.want)
		}
	}
}

func TestNewSetUnresolvable(t *testing.T) {
	_, err := NewSet(context.Background(), []config.Target{{Name: "x", Address: "nowhere.invalid:1", Protocol: "tcp"}}, fakeResolver{})
	if err == nil {
		t.Fatal("NewSet with an unresolvable host: want error")
	}
}
