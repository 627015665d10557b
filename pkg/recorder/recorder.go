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

	spares *spares
	q      *queue // index writes

	// mu guards open and day.
	mu   sync.Mutex
	open map[string]*Session
	day  string // the dated directory known to exist
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
	sp, err := newSpares(cfg.Dir)
	if err != nil {
		return nil, err
	}
	r := &Recorder{cfg: cfg, idx: &Index{Store: cfg.Store}, metrics: m, spares: sp, open: map[string]*Session{}}
	n, err := r.idx.interruptOthers(ctx, cfg.Instance, cfg.Now())
	if err != nil {
		return nil, fmt.Errorf("mark interrupted sessions: %w", err)
	}
	if n > 0 {
		cfg.Log.Info("sessions left open by an earlier run marked interrupted", "sessions", n)
	}
	if _, err := r.recoverFiles(ctx); err != nil {
		return nil, fmt.Errorf("index recordings left unindexed: %w", err)
	}
	r.q = newQueue(r.idx, cfg.Log, func() { m.errors.Inc() })
	return r, nil
}

// Close applies the index writes still queued. Sessions closed after it
// update the index directly.
func (r *Recorder) Close() { r.q.close() }

// Flush waits until the index holds every write made so far.
func (r *Recorder) Flush() { r.q.flush() }

// Index is the session index the recorder writes.
func (r *Recorder) Index() *Index { return r.idx }

func newSessionID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return "s-" + hex.EncodeToString(b)
}

// create makes the recording file for session id in the directory of
// the day t: a spare one renamed into place when one is ready.
func (r *Recorder) create(id string, t time.Time, h record.Header) (*record.Writer, string, error) {
	day := t.UTC().Format("2006/01/02")
	dir := filepath.Join(r.cfg.Dir, day)
	r.mu.Lock()
	known := r.day == day
	r.mu.Unlock()
	if !known {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, "", fmt.Errorf("create recording dir: %w", err)
		}
		r.mu.Lock()
		r.day = day
		r.mu.Unlock()
	}
	file := filepath.Join(dir, id+".jsonl")
	opts := record.Options{ResultCap: r.cfg.ResultCap, Recipient: r.cfg.Recipient, Now: r.cfg.Now}
	f := r.spares.take()
	if f == nil {
		w, err := record.Create(file, h, opts)
		return w, file, err
	}
	if err := os.Rename(f.Name(), file); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, "", fmt.Errorf("create recording: %w", err)
	}
	w, err := record.NewWriter(f, file, h, opts)
	if err != nil {
		f.Close()
		os.Remove(file)
		return nil, "", err
	}
	return w, file, nil
}

// Start opens the recording of a connection. h describes it; its Session,
// Host and Start are filled in.
func (r *Recorder) Start(ctx context.Context, h record.Header) (*Session, error) {
	now := r.cfg.Now()
	h.Session, h.Host, h.Start = newSessionID(), r.cfg.Host, now.UTC()
	w, file, err := r.create(h.Session, now, h)
	if err != nil {
		r.metrics.errors.Inc()
		return nil, err
	}
	// The index learns of the session at its close, or at the next
	// index tick if it lasts (Run); a crash before either leaves the
	// file, which the next start indexes (recoverFiles).
	s := &Session{r: r, id: h.Session, file: file, w: w, header: h}
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

// Run keeps spare files ready, the index current for open sessions (once
// a second) and enforces retention (at start, then hourly), until ctx
// ends.
func (r *Recorder) Run(ctx context.Context) error {
	filled := make(chan struct{})
	go func() {
		defer close(filled)
		if err := r.spares.fill(ctx); err != nil {
			// Start creates files itself meanwhile.
			r.cfg.Log.Warn("spare recordings", "err", err)
		}
	}()
	defer func() { <-filled }()
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
				s.syncIndex()
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
