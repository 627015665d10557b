package recorder

import (
	"fmt"
	"sync"
	"time"

	"github.com/sluice-gate/sluice/pkg/record"
)

// Session is one connection's recording. It implements
// protocol.Recording; every method is safe for concurrent use.
type Session struct {
	r      *Recorder
	id     string
	file   string
	w      *record.Writer
	header record.Header

	// mu guards next, requests, refusals, closed, indexed.
	mu                 sync.Mutex
	next               int
	requests, refusals int
	closed             bool
	indexed            bool // the index has the session's row (or it is queued)
}

// ID is the session id.
func (s *Session) ID() string { return s.id }

// Request records a request before it goes on: durably (fsync) when it is
// critical. It returns the request's id for its result and approval.
func (s *Session) Request(req record.Request) (string, error) {
	s.mu.Lock()
	s.next++
	req.ID = fmt.Sprintf("r%d", s.next)
	s.requests++
	s.mu.Unlock()
	if req.Started.IsZero() {
		req.Started = s.r.cfg.Now().UTC()
	}
	if !req.Decision.Allowed {
		s.mu.Lock()
		s.refusals++
		s.mu.Unlock()
	}
	if _, err := s.w.Append(record.KindRequest, req, req.Critical); err != nil {
		s.r.metrics.errors.Inc()
		return "", err
	}
	s.r.metrics.records.WithLabelValues(string(record.KindRequest)).Inc()
	return req.ID, nil
}

// Result records a request's outcome.
func (s *Session) Result(res record.Result) error { return s.append(record.KindResult, res, false) }

// Refusal records a refusal.
func (s *Session) Refusal(ref record.Refusal) error { return s.append(record.KindRefusal, ref, true) }

// Approval records the fate of a held request, durably.
func (s *Session) Approval(a record.Approval) error { return s.append(record.KindApproval, a, true) }

// Stream records terminal traffic.
func (s *Session) Stream(dir string, data []byte) error {
	return s.append(record.KindStream, record.Stream{Dir: dir, Data: string(data)}, false)
}

// Note records a remark from the daemon.
func (s *Session) Note(text string) error {
	return s.append(record.KindNote, record.Note{Text: text}, false)
}

// Sample starts a result sample within the recording's cap.
func (s *Session) Sample() *record.Sample { return s.w.NewSample() }

func (s *Session) append(kind record.Kind, data any, durable bool) error {
	if _, err := s.w.Append(kind, data, durable); err != nil {
		s.r.metrics.errors.Inc()
		return err
	}
	s.r.metrics.records.WithLabelValues(string(kind)).Inc()
	return nil
}

// Close seals the recording and updates the index.
func (s *Session) Close() error { return s.close(StateClosed) }

func (s *Session) close(state string) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.r.mu.Lock()
	delete(s.r.open, s.id)
	s.r.mu.Unlock()
	err := s.w.Close()
	end := s.r.cfg.Now()
	s.mu.Lock()
	s.index(state, &end)
	s.mu.Unlock()
	if err != nil {
		s.r.metrics.errors.Inc()
		s.r.cfg.Log.Error("close recording", "session", s.id, "err", err)
	}
	return err
}

// syncIndex records the file's current position, so that an interrupted
// recording can be checked against what the index last saw.
func (s *Session) syncIndex() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.index(StateOpen, nil)
	}
}

// index queues the session's index row as it stands: inserted the first
// time (a session shorter than the index tick costs one write, at its
// close), updated after. s.mu must be held, which keeps the writes of one
// session in order.
func (s *Session) index(state string, end *time.Time) {
	seal := s.w.Seal()
	row := row{state: state, end: end, records: seal.Records, hash: seal.LastHash, size: s.w.Size(), reqs: s.requests, refs: s.refusals}
	if s.indexed {
		s.r.q.add(updateOp(s.id, row))
		return
	}
	s.indexed = true
	s.r.q.add(insertOp(s.id, s.r.cfg.Instance, s.file, s.header, row))
}
