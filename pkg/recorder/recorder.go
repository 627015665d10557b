package recorder

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"filippo.io/age"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-gate/sluice/pkg/record"
	"github.com/sluice-gate/sluice/pkg/store"
)

// Session states in the index.
const (
	StateOpen        = "open"
	StateClosed      = "closed"
	StateInterrupted = "interrupted" // the daemon recording it died
	StateRefused     = "refused"     // refused before a handler ran
)

// Config configures a Recorder.
type Config struct {
	// Dir holds the recordings (created 0700).
	Dir   string
	Store *store.Store
	// Instance names this daemon run; Host is the machine.
	Instance, Host string
	// ResultCap bounds each request's result sample.
	ResultCap int
	// Recipient, if set, encrypts recordings to an auditor's key.
	Recipient age.Recipient
	// MaxAge and MaxBytes bound what retention keeps (0: unbounded).
	MaxAge   time.Duration
	MaxBytes int64
	Log      *slog.Logger
	// Registerer receives the recorder's metrics; nil means none.
	Registerer prometheus.Registerer
	Now        func() time.Time // nil: time.Now
}

// Recorder records sessions.
type Recorder struct {
	cfg     Config
	idx     *Index
	metrics *metrics

	// mu guards open.
	mu   sync.Mutex
	open map[string]*Session
}

// New opens the recordings directory and marks sessions that an earlier
// daemon run left open as interrupted.
func New(ctx context.Context, cfg Config) (*Recorder, error) {
	if cfg.Dir == "" || cfg.Store == nil || cfg.Instance == "" || cfg.Log == nil {
		return nil, errors.New("recorder: dir, store, instance and logger are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create recordings dir: %w", err)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	r := &Recorder{cfg: cfg, idx: &Index{Store: cfg.Store}, metrics: m, open: map[string]*Session{}}
	n, err := r.idx.interruptOthers(ctx, cfg.Instance, cfg.Now())
	if err != nil {
		return nil, fmt.Errorf("mark interrupted sessions: %w", err)
	}
	if n > 0 {
		cfg.Log.Info("sessions left open by an earlier run marked interrupted", "sessions", n)
	}
	return r, nil
}

// Index is the session index the recorder writes.
func (r *Recorder) Index() *Index { return r.idx }

func newSessionID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return "s-" + hex.EncodeToString(b)
}

func (r *Recorder) path(id string, t time.Time) string {
	return filepath.Join(r.cfg.Dir, t.UTC().Format("2006/01/02"), id+".jsonl")
}

// Start opens the recording of a connection. h describes it; its Session,
// Host and Start are filled in.
func (r *Recorder) Start(ctx context.Context, h record.Header) (*Session, error) {
	now := r.cfg.Now()
	h.Session, h.Host, h.Start = newSessionID(), r.cfg.Host, now.UTC()
	file := r.path(h.Session, now)
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return nil, fmt.Errorf("create recording dir: %w", err)
	}
	w, err := record.Create(file, h, record.Options{ResultCap: r.cfg.ResultCap, Recipient: r.cfg.Recipient, Now: r.cfg.Now})
	if err != nil {
		r.metrics.errors.Inc()
		return nil, err
	}
	s := &Session{r: r, id: h.Session, file: file, w: w, header: h}
	if err := r.idx.insert(ctx, s, r.cfg.Instance); err != nil {
		w.Close()
		r.metrics.errors.Inc()
		return nil, fmt.Errorf("index session: %w", err)
	}
	r.mu.Lock()
	r.open[s.id] = s
	r.mu.Unlock()
	r.metrics.sessions.Inc()
	return s, nil
}

// Refused records a connection refused before any handler ran: a session
// of its own with the header (as far as it is known), the refusal, and the
// end.
func (r *Recorder) Refused(ctx context.Context, h record.Header, ref record.Refusal) error {
	s, err := r.Start(ctx, h)
	if err != nil {
		return err
	}
	if err := s.Refusal(ref); err != nil {
		s.Close()
		return err
	}
	return s.close(StateRefused)
}

// Run keeps the index current for open sessions (once a second) and
// enforces retention (at start, then hourly), until ctx ends.
func (r *Recorder) Run(ctx context.Context) error {
	r.retain(ctx)
	pos := time.NewTicker(time.Second)
	defer pos.Stop()
	ret := time.NewTicker(time.Hour)
	defer ret.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-pos.C:
			r.mu.Lock()
			open := make([]*Session, 0, len(r.open))
			for _, s := range r.open {
				open = append(open, s)
			}
			r.mu.Unlock()
			for _, s := range open {
				s.syncIndex(ctx)
			}
		case <-ret.C:
			r.retain(ctx)
		}
	}
}

func (r *Recorder) retain(ctx context.Context) {
	if r.cfg.MaxAge <= 0 && r.cfg.MaxBytes <= 0 {
		return
	}
	n, err := r.idx.retain(ctx, r.cfg.Now(), r.cfg.MaxAge, r.cfg.MaxBytes, r.cfg.Log)
	if err != nil {
		r.cfg.Log.Error("retention", "err", err)
	}
	r.metrics.deleted.Add(float64(n))
}
