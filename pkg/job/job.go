package job

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/sluice-gate/sluice/pkg/cgroup"
	"github.com/sluice-gate/sluice/pkg/identity"
	"github.com/sluice-gate/sluice/pkg/intercept"
)

// Binding ties a job cgroup to the identity that enrolled it.
type Binding struct {
	ID       string            `json:"id"`
	Cgroup   string            `json:"cgroup"` // below the cgroup2 mount, e.g. /sluice/job-x
	CgroupID uint64            `json:"cgroup_id"`
	Identity identity.Identity `json:"identity"`
	// PID and UID are those of the enrolling process.
	PID      int       `json:"pid"`
	UID      int       `json:"uid"`
	Enrolled time.Time `json:"enrolled"`
	// Root is the enrolling process with its ancestors at enrollment.
	Root intercept.JobRoot `json:"root"`
}

// Expired reports whether the binding's token has expired at now.
func (b *Binding) Expired(now time.Time) bool { return !now.Before(b.Identity.Expiry) }

// Config configures a Registry.
type Config struct {
	// StateDir holds the bindings (in StateDir/jobs).
	StateDir string
	// Mount is the cgroup2 mount point; Root the agents cgroup below it.
	Mount string
	Root  string
	// SweepEvery is how often cgroups are checked for emptiness in
	// addition to cgroup.events notifications (0: 30s).
	SweepEvery time.Duration
	Log        *slog.Logger
}

// Validate reports a missing field.
func (c Config) Validate() error {
	switch {
	case c.StateDir == "":
		return errors.New("job: state dir is empty")
	case c.Mount == "" || c.Root == "":
		return errors.New("job: cgroup mount or root is empty")
	case c.Log == nil:
		return errors.New("job: no logger")
	}
	return nil
}

// Registry holds the bindings.
type Registry struct {
	cfg     Config
	dir     string // where binding files live
	rootAbs string // absolute agents cgroup dir

	// mu guards byCgroup, byID and moving.
	mu       sync.RWMutex
	byCgroup map[uint64]*Binding
	byID     map[string]*Binding
	// moving holds jobs whose first process is not in their cgroup yet;
	// their empty cgroup must not be reaped.
	moving map[string]bool

	watcher *fsnotify.Watcher
}

// Open creates the agents cgroup if needed, loads persisted bindings and
// drops those whose job has ended while the daemon was away.
func Open(cfg Config) (*Registry, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.SweepEvery == 0 {
		cfg.SweepEvery = 30 * time.Second
	}
	r := &Registry{
		cfg:      cfg,
		dir:      filepath.Join(cfg.StateDir, "jobs"),
		rootAbs:  filepath.Join(cfg.Mount, cfg.Root),
		byCgroup: map[uint64]*Binding{},
		byID:     map[string]*Binding{},
		moving:   map[string]bool{},
	}
	if err := os.MkdirAll(r.rootAbs, 0o755); err != nil {
		return nil, fmt.Errorf("create agents cgroup: %w", err)
	}
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return nil, fmt.Errorf("create job state dir: %w", err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch job cgroups: %w", err)
	}
	r.watcher = w
	if err := r.load(); err != nil {
		w.Close()
		return nil, err
	}
	return r, nil
}

// RootDir is the absolute path of the agents cgroup.
func (r *Registry) RootDir() string { return r.rootAbs }

// Contains reports whether a cgroup path (relative to the mount, as in
// /proc/<pid>/cgroup) is the agents cgroup or inside it.
func (r *Registry) Contains(rel string) bool { return cgroup.Within(rel, r.cfg.Root) }

func (r *Registry) load() error {
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		return fmt.Errorf("read job state: %w", err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		path := filepath.Join(r.dir, e.Name())
		b, err := readBinding(path)
		if err != nil {
			r.cfg.Log.Warn("drop unreadable job binding", "file", path, "err", err)
			_ = os.Remove(path)
			continue
		}
		dir := filepath.Join(r.cfg.Mount, b.Cgroup)
		id, err := cgroup.ID(dir)
		if err != nil || id != b.CgroupID {
			r.cfg.Log.Info("job cgroup gone, dropping binding", "job", b.ID)
			_ = os.Remove(path)
			continue
		}
		r.byCgroup[b.CgroupID] = b
		r.byID[b.ID] = b
		if err := r.watch(b); err != nil {
			r.cfg.Log.Warn("cannot watch job cgroup", "job", b.ID, "err", err)
		}
		r.reap(b)
	}
	// Job cgroups nobody knows about: remove the empty ones. Populated
	// ones stay (their connections are refused as unknown).
	dirs, _ := os.ReadDir(r.rootAbs)
	for _, d := range dirs {
		if !d.IsDir() || !strings.HasPrefix(d.Name(), "job-") {
			continue
		}
		if _, ok := r.byID[d.Name()]; ok {
			continue
		}
		dir := filepath.Join(r.rootAbs, d.Name())
		if pop, err := cgroup.Populated(dir); err == nil && !pop {
			_ = cgroup.Remove(dir)
		} else {
			r.cfg.Log.Warn("unbound job cgroup has processes; their connections are refused", "cgroup", dir)
		}
	}
	return nil
}

func readBinding(path string) (*Binding, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var b Binding
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, err
	}
	if b.ID == "" || b.CgroupID == 0 {
		return nil, errors.New("incomplete binding")
	}
	return &b, nil
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "job-" + idEncoding.EncodeToString(b)
}

// ErrEnroll marks enrollment failures that are the caller's fault.
var ErrEnroll = errors.New("enrollment refused")

// Enroll creates a job cgroup for id, records the binding durably, then
// moves pid into the cgroup. When it returns, every connection pid (and its
// future children) opens is attributed to id.
func (r *Registry) Enroll(pid, uid int, id identity.Identity, root intercept.JobRoot) (*Binding, error) {
	jobID := newID()
	dir := filepath.Join(r.rootAbs, jobID)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create job cgroup: %w", err)
	}
	cgid, err := cgroup.ID(dir)
	if err != nil {
		_ = cgroup.Remove(dir)
		return nil, err
	}
	b := &Binding{
		ID:       jobID,
		Cgroup:   "/" + filepath.Join(r.cfg.Root, jobID),
		CgroupID: cgid,
		Identity: id,
		PID:      pid,
		UID:      uid,
		Enrolled: time.Now().UTC(),
		Root:     root,
	}
	// Binding first: the first connect after the move must find it.
	if err := r.persist(b); err != nil {
		_ = cgroup.Remove(dir)
		return nil, err
	}
	r.mu.Lock()
	r.byCgroup[cgid] = b
	r.byID[jobID] = b
	r.moving[jobID] = true
	r.mu.Unlock()

	err = cgroup.Move(dir, pid)
	r.mu.Lock()
	delete(r.moving, jobID)
	r.mu.Unlock()
	if err != nil {
		r.forget(b)
		return nil, fmt.Errorf("%w: %v", ErrEnroll, err)
	}
	if err := r.watch(b); err != nil {
		r.cfg.Log.Warn("cannot watch job cgroup; relying on periodic sweep", "job", jobID, "err", err)
	}
	return b, nil
}

func (r *Registry) persist(b *Binding) error {
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	final := filepath.Join(r.dir, b.ID+".json")
	tmp, err := os.CreateTemp(r.dir, "."+b.ID+"-*")
	if err != nil {
		return fmt.Errorf("write binding: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), final)
	}
	if err == nil {
		err = syncDir(r.dir)
	}
	if err != nil {
		return fmt.Errorf("write binding %s: %w", final, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (r *Registry) watch(b *Binding) error {
	return r.watcher.Add(filepath.Join(r.cfg.Mount, b.Cgroup, "cgroup.events"))
}

// forget removes a binding and its cgroup.
func (r *Registry) forget(b *Binding) {
	r.mu.Lock()
	delete(r.byCgroup, b.CgroupID)
	delete(r.byID, b.ID)
	r.mu.Unlock()
	dir := filepath.Join(r.cfg.Mount, b.Cgroup)
	_ = r.watcher.Remove(filepath.Join(dir, "cgroup.events"))
	if err := cgroup.Remove(dir); err != nil {
		r.cfg.Log.Warn("remove job cgroup", "job", b.ID, "err", err)
	}
	if err := os.Remove(filepath.Join(r.dir, b.ID+".json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.cfg.Log.Warn("remove job binding", "job", b.ID, "err", err)
	}
}

// reap removes the job if its cgroup has no processes left.
func (r *Registry) reap(b *Binding) {
	r.mu.RLock()
	moving := r.moving[b.ID]
	r.mu.RUnlock()
	if moving {
		return
	}
	dir := filepath.Join(r.cfg.Mount, b.Cgroup)
	pop, err := cgroup.Populated(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err == nil && pop {
		return
	}
	r.forget(b)
	r.cfg.Log.Info("job ended", "job", b.ID, "subject", b.Identity.Subject)
}

// Root returns the job root recorded for a cgroup id
// (intercept.Attributor.Root).
func (r *Registry) Root(cgroupID uint64) (intercept.JobRoot, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	b, ok := r.byCgroup[cgroupID]
	if !ok {
		return intercept.JobRoot{}, false
	}
	return b.Root, true
}

// Lookup returns the binding for a cgroup id.
func (r *Registry) Lookup(cgroupID uint64) (Binding, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	b, ok := r.byCgroup[cgroupID]
	if !ok {
		return Binding{}, false
	}
	return *b, true
}

// List returns all bindings, oldest first.
func (r *Registry) List() []Binding {
	r.mu.RLock()
	out := make([]Binding, 0, len(r.byID))
	for _, b := range r.byID {
		out = append(out, *b)
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Enrolled.Before(out[j].Enrolled) })
	return out
}

// Run removes jobs whose last process exited, until ctx ends.
func (r *Registry) Run(ctx context.Context) error {
	defer r.watcher.Close()
	tick := time.NewTicker(r.cfg.SweepEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-r.watcher.Events:
			if !ok {
				return nil
			}
			r.reapDir(filepath.Dir(ev.Name))
		case err, ok := <-r.watcher.Errors:
			if !ok {
				return nil
			}
			r.cfg.Log.Warn("job cgroup watch", "err", err)
		case <-tick.C:
			r.sweep()
		}
	}
}

func (r *Registry) reapDir(dir string) {
	r.mu.RLock()
	b := r.byID[filepath.Base(dir)]
	r.mu.RUnlock()
	if b != nil {
		r.reap(b)
	}
}

func (r *Registry) sweep() {
	for _, b := range r.List() {
		r.mu.RLock()
		cur := r.byID[b.ID]
		r.mu.RUnlock()
		if cur != nil {
			r.reap(cur)
		}
	}
}
