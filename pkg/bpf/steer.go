package bpf

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sort"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"

	"github.com/sluice-gate/sluice/pkg/cgroup"
)

// Config says where to attach and where to steer.
type Config struct {
	// Cgroup is the agents cgroup directory; every job cgroup lives below it.
	Cgroup string
	// PinDir is the bpffs directory for this daemon's links, e.g.
	// /sys/fs/bpf/sluice. It is created if missing.
	PinDir string
	// ProxyPort is the port the proxy listens on at 127.0.0.1 and ::1.
	ProxyPort uint16
	// Resolvers are the only UDP destinations a job may reach.
	Resolvers []netip.AddrPort
}

// Validate reports a missing or unusable field.
func (c Config) Validate() error {
	switch {
	case c.Cgroup == "":
		return errors.New("bpf: cgroup path is empty")
	case c.PinDir == "":
		return errors.New("bpf: pin directory is empty")
	case c.ProxyPort == 0:
		return errors.New("bpf: proxy port is 0")
	}
	return nil
}

// program ties a program in the collection to its cgroup attach point.
type program struct {
	name   string
	attach ebpf.AttachType
	get    func(*steerObjects) *ebpf.Program
}

// programs lists every program and where it attaches. The name doubles as
// the pin file name.
var programs = []program{
	{"connect4", ebpf.AttachCGroupInet4Connect, func(o *steerObjects) *ebpf.Program { return o.Connect4 }},
	{"connect6", ebpf.AttachCGroupInet6Connect, func(o *steerObjects) *ebpf.Program { return o.Connect6 }},
	{"sockops", ebpf.AttachCGroupSockOps, func(o *steerObjects) *ebpf.Program { return o.TrackPort }},
	{"getpeername4", ebpf.AttachCgroupInet4GetPeername, func(o *steerObjects) *ebpf.Program { return o.Getpeername4 }},
	{"getpeername6", ebpf.AttachCgroupInet6GetPeername, func(o *steerObjects) *ebpf.Program { return o.Getpeername6 }},
	{"sendmsg4", ebpf.AttachCGroupUDP4Sendmsg, func(o *steerObjects) *ebpf.Program { return o.Sendmsg4 }},
	{"sendmsg6", ebpf.AttachCGroupUDP6Sendmsg, func(o *steerObjects) *ebpf.Program { return o.Sendmsg6 }},
	{"sock_create", ebpf.AttachCGroupInetSockCreate, func(o *steerObjects) *ebpf.Program { return o.SockCreate }},
	{"sock_release", ebpf.AttachCgroupInetSockRelease, func(o *steerObjects) *ebpf.Program { return o.SockRelease }},
}

// Attachment describes one attached program, for status output.
type Attachment struct {
	Program string `json:"program"`
	Attach  string `json:"attach"`
	LinkID  uint32 `json:"link_id"`
	ProgID  uint32 `json:"prog_id"`
	Pin     string `json:"pin"`
	// Reused is set when the link was found pinned (left by an earlier
	// daemon) and the new program was swapped into it.
	Reused bool `json:"reused"`
}

// Steering is the loaded and attached set of programs.
type Steering struct {
	cfg         Config
	objs        steerObjects
	links       []link.Link
	attachments []Attachment
}

// Load loads the programs, attaches them to cfg.Cgroup and pins the links.
// Links pinned by an earlier daemon are reused: the new program replaces the
// old one atomically, so there is no moment where a job is not steered.
func Load(cfg Config, log *slog.Logger) (*Steering, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK.
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("raise memlock limit: %w", err)
	}
	spec, err := loadSteer()
	if err != nil {
		return nil, fmt.Errorf("read embedded steering programs: %w", err)
	}
	if err := spec.Variables["proxy_port"].Set(cfg.ProxyPort); err != nil {
		return nil, fmt.Errorf("set proxy port: %w", err)
	}
	s := &Steering{cfg: cfg}
	if err := spec.LoadAndAssign(&s.objs, nil); err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			return nil, fmt.Errorf("load steering programs: %+v", verr)
		}
		return nil, fmt.Errorf("load steering programs: %w", err)
	}
	if err := s.SetResolvers(cfg.Resolvers); err != nil {
		s.objs.Close()
		return nil, err
	}
	if err := os.MkdirAll(cfg.PinDir, 0o700); err != nil {
		s.objs.Close()
		return nil, fmt.Errorf("create pin directory: %w", err)
	}
	cgid, err := cgroup.ID(cfg.Cgroup)
	if err != nil {
		s.objs.Close()
		return nil, err
	}
	for _, p := range programs {
		a, l, err := attach(cfg, cgid, p, p.get(&s.objs), log)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.links = append(s.links, l)
		s.attachments = append(s.attachments, a)
	}
	return s, nil
}

// attach swaps prog into a pinned link for p if one exists and still points
// at the right cgroup, and otherwise creates and pins a new link.
func attach(cfg Config, cgid uint64, p program, prog *ebpf.Program, log *slog.Logger) (Attachment, link.Link, error) {
	pin := filepath.Join(cfg.PinDir, p.name)
	a := Attachment{Program: p.name, Attach: p.attach.String(), Pin: pin}

	if l, err := link.LoadPinnedLink(pin, nil); err == nil {
		if sameCgroup(l, cgid) {
			if err := l.Update(prog); err == nil {
				a.Reused = true
				fillIDs(&a, l)
				return a, l, nil
			} else {
				log.Warn("replace stale pinned link", "pin", pin, "err", err)
			}
		}
		// Wrong cgroup (it was removed and recreated) or not updatable:
		// drop the old link and attach afresh.
		_ = l.Unpin()
		_ = l.Close()
	} else if !errors.Is(err, fs.ErrNotExist) {
		log.Warn("ignore unreadable pin", "pin", pin, "err", err)
		_ = os.Remove(pin)
	}

	l, err := link.AttachCgroup(link.CgroupOptions{Path: cfg.Cgroup, Attach: p.attach, Program: prog})
	if err != nil {
		return a, nil, fmt.Errorf("attach %s to %s: %w", p.name, cfg.Cgroup, err)
	}
	if err := l.Pin(pin); err != nil {
		_ = l.Close()
		return a, nil, fmt.Errorf("pin %s at %s: %w", p.name, pin, err)
	}
	fillIDs(&a, l)
	return a, l, nil
}

func sameCgroup(l link.Link, cgid uint64) bool {
	info, err := l.Info()
	if err != nil {
		return false
	}
	cg := info.Cgroup()
	return cg != nil && cg.CgroupId == cgid
}

func fillIDs(a *Attachment, l link.Link) {
	if info, err := l.Info(); err == nil {
		a.LinkID = uint32(info.ID)
		a.ProgID = uint32(info.Program)
	}
}

// Attachments lists the attached programs.
func (s *Steering) Attachments() []Attachment {
	return append([]Attachment(nil), s.attachments...)
}

// SetResolvers replaces the set of DNS resolvers UDP may reach.
func (s *Steering) SetResolvers(resolvers []netip.AddrPort) error {
	want := make(map[steerResolverKey]bool, len(resolvers))
	for _, r := range resolvers {
		want[steerResolverKey{Addr: r.Addr().As16(), Port: r.Port()}] = true
	}
	var (
		key   steerResolverKey
		val   uint8
		stale []steerResolverKey
	)
	it := s.objs.Resolvers.Iterate()
	for it.Next(&key, &val) {
		if !want[key] {
			stale = append(stale, key)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read resolvers map: %w", err)
	}
	for k := range want {
		if err := s.objs.Resolvers.Put(k, uint8(1)); err != nil {
			return fmt.Errorf("add resolver: %w", err)
		}
	}
	for i := range stale {
		if err := s.objs.Resolvers.Delete(&stale[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("remove resolver: %w", err)
		}
	}
	return nil
}

// Stats are the kernel-side counters, summed over CPUs.
type Stats struct {
	Redirected   uint64 `json:"redirected"`
	Tracked      uint64 `json:"tracked"`
	RecordFailed uint64 `json:"record_failed"`
	UDPAllowed   uint64 `json:"udp_allowed"`
	UDPDenied    uint64 `json:"udp_denied"`
	SockDenied   uint64 `json:"sock_denied"`
	OtherDenied  uint64 `json:"other_denied"`
}

// Stats reads the counters.
func (s *Steering) Stats() (Stats, error) {
	var st Stats
	fields := map[steerStatIndex]*uint64{
		steerStatIndexSTAT_REDIRECTED:    &st.Redirected,
		steerStatIndexSTAT_TRACKED:       &st.Tracked,
		steerStatIndexSTAT_RECORD_FAILED: &st.RecordFailed,
		steerStatIndexSTAT_UDP_ALLOWED:   &st.UDPAllowed,
		steerStatIndexSTAT_UDP_DENIED:    &st.UDPDenied,
		steerStatIndexSTAT_SOCK_DENIED:   &st.SockDenied,
		steerStatIndexSTAT_OTHER_DENIED:  &st.OtherDenied,
	}
	for idx, dst := range fields {
		var perCPU []uint64
		if err := s.objs.Stats.Lookup(uint32(idx), &perCPU); err != nil {
			return Stats{}, fmt.Errorf("read stat %d: %w", idx, err)
		}
		for _, v := range perCPU {
			*dst += v
		}
	}
	return st, nil
}

// Close releases the daemon's handles. Pinned links stay attached: the
// programs keep steering (to a closed port) until Uninstall.
func (s *Steering) Close() error {
	for _, l := range s.links {
		_ = l.Close()
	}
	s.links = nil
	return s.objs.Close()
}

// Uninstall detaches every link pinned in pinDir and removes the pins.
func Uninstall(pinDir string) ([]string, error) {
	entries, err := os.ReadDir(pinDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", pinDir, err)
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		pin := filepath.Join(pinDir, e.Name())
		l, err := link.LoadPinnedLink(pin, nil)
		if err != nil {
			// Not a link (or unreadable): remove the pin anyway so the
			// directory can go.
			if rerr := os.Remove(pin); rerr != nil {
				errs = append(errs, fmt.Errorf("remove %s: %w", pin, rerr))
			}
			continue
		}
		if err := l.Unpin(); err != nil {
			errs = append(errs, fmt.Errorf("unpin %s: %w", pin, err))
		}
		_ = l.Close()
		removed = append(removed, e.Name())
	}
	if len(errs) == 0 {
		if err := os.Remove(pinDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove %s: %w", pinDir, err))
		}
	}
	sort.Strings(removed)
	return removed, errors.Join(errs...)
}
