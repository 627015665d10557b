package recorder

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// queue applies index writes in the background, in order, as many per
// transaction as have gathered. A connection so never waits for the index:
// opening a session costs the recording file and nothing more, whether
// the index is a local SQLite file (a commit costs a quarter of a
// millisecond) or a PostgreSQL server across the network, and a store
// that is briefly down delays the index, not the agents. What a crash
// loses from the queue, recoverFiles rebuilds from the recordings, which
// are the record of truth.
type queue struct {
	x   *Index
	log *slog.Logger
	// failed counts writes dropped after retries.
	failed func()

	mu      sync.Mutex
	ops     []op
	busy    bool // a batch is being applied
	closed  bool
	wake    chan struct{}
	idle    *sync.Cond // signalled when ops is empty and not busy
	stopped chan struct{}
}

// op is one index write.
type op struct {
	query string // with ? placeholders
	args  []any
}

// maxQueued bounds the queue: beyond it, writes are dropped (and
// counted), as the index is rebuilt from the files at the next start.
const maxQueued = 1 << 16

func newQueue(x *Index, log *slog.Logger, failed func()) *queue {
	q := &queue{x: x, log: log, failed: failed, wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	q.idle = sync.NewCond(&q.mu)
	go q.run()
	return q
}

// add queues a write; after close it is applied at once.
func (q *queue) add(o op) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		q.apply([]op{o})
		return
	}
	if len(q.ops) >= maxQueued {
		q.mu.Unlock()
		q.failed()
		q.log.Error("session index queue full: write dropped (the index is rebuilt from the recordings at the next start)")
		return
	}
	q.ops = append(q.ops, o)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// flush waits until every write queued so far is applied.
func (q *queue) flush() {
	q.mu.Lock()
	for len(q.ops) > 0 || q.busy {
		q.idle.Wait()
	}
	q.mu.Unlock()
}

// close applies what is queued and stops the goroutine.
func (q *queue) close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.closed = true
	q.mu.Unlock()
	close(q.wake)
	<-q.stopped
}

// linger is how long the queue lets writes gather before a transaction:
// a commit costs much more than a row, and under a stream of connections
// a few milliseconds turn one commit per session into one per dozens.
const linger = 5 * time.Millisecond

func (q *queue) run() {
	defer close(q.stopped)
	for range q.wake {
		time.Sleep(linger)
		q.drain()
	}
	q.drain()
}

func (q *queue) drain() {
	for {
		q.mu.Lock()
		batch := q.ops
		q.ops = nil
		q.busy = len(batch) > 0
		if !q.busy {
			q.idle.Broadcast()
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()
		q.apply(batch)
		q.mu.Lock()
		q.busy = false
		q.mu.Unlock()
	}
}

// apply writes a batch in one transaction, retrying a failed one a few
// times (the store may be restarting); then it applies the writes one by
// one, so that one bad write does not hold back the rest.
func (q *queue) apply(batch []op) {
	var err error
	for attempt, wait := 0, 100*time.Millisecond; attempt < 4; attempt, wait = attempt+1, wait*4 {
		if err = q.tx(batch); err == nil {
			return
		}
		q.log.Warn("session index write failed; retrying", "writes", len(batch), "err", err)
		time.Sleep(wait)
	}
	for _, o := range batch {
		if err := q.tx([]op{o}); err != nil {
			q.failed()
			q.log.Error("session index write dropped", "err", err)
		}
	}
}

func (q *queue) tx(batch []op) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tx, err := q.x.Store.DB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, o := range batch {
		if _, err := tx.ExecContext(ctx, q.x.q(o.query), o.args...); err != nil {
			return err
		}
	}
	return tx.Commit()
}
