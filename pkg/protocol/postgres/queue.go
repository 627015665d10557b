package postgres

import (
	"fmt"
	"sync"
	"time"

	"github.com/sluice-gate/sluice/pkg/mask"
)

// kind is the type of a request whose responses are still to come.
type kind uint8

const (
	kParse kind = iota + 1
	kBind
	kDescribeStmt
	kDescribePortal
	kExecute
	kClose
	kSync
	kQuery
)

func (k kind) String() string {
	return [...]string{"?", "Parse", "Bind", "Describe(S)", "Describe(P)", "Execute", "Close", "Sync", "Query"}[k]
}

// pending is one request sent upstream, in order. The server answers
// requests strictly in order, so the head of the queue says what an
// incoming response belongs to.
type pending struct {
	kind kind
	// hidden: sluice sent it for itself; its responses are not forwarded.
	hidden bool
	// refused: the agent's request was refused; whatever the server says
	// to it, the agent gets this error instead.
	refused *refusal
	// stmt and portal carry row descriptions for masking.
	stmt   *prepared
	portal *portal
	// masker masks the rows of an Execute or a Query; nil: none.
	masker *mask.Masker
	// statements of a Query, for per-statement masking and COPY.
	query []*queryStmt
	// answered: a refusal has been sent for this request.
	answered bool
	// req is the Execute's request id in the recording; started is when
	// the request went upstream.
	req     string
	started time.Time
}

// queryStmt is one statement of a simple Query, as planned.
type queryStmt struct {
	masker *mask.Masker
	copy   *copyPlan
	reads  []string
	req    string // request id in the recording
}

// queue is the FIFO of pending requests, shared by the two directions.
type queue struct {
	// mu guards items and empty.
	mu    sync.Mutex
	items []*pending
	// empty is closed when items becomes empty (see drained).
	empty chan struct{}
}

func (q *queue) push(p *pending) {
	q.mu.Lock()
	q.items = append(q.items, p)
	q.mu.Unlock()
}

// drained returns a channel that is closed once nothing is pending.
func (q *queue) drained() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	ch := make(chan struct{})
	if len(q.items) == 0 {
		close(ch)
		return ch
	}
	q.empty = ch
	return ch
}

// signal closes the drained channel if the queue is empty; callers hold
// mu.
func (q *queue) signal() {
	if len(q.items) == 0 && q.empty != nil {
		close(q.empty)
		q.empty = nil
	}
}

func (q *queue) head() *pending {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return nil
	}
	return q.items[0]
}

// pop removes the head, which must be of kind k.
func (q *queue) pop(k kind) (*pending, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return nil, fmt.Errorf("server answered %s with nothing pending", k)
	}
	p := q.items[0]
	if p.kind != k {
		return nil, fmt.Errorf("server answered %s while %s was pending", k, p.kind)
	}
	q.items[0] = nil
	q.items = q.items[1:]
	q.signal()
	return p, nil
}

// skipToSync drops the requests the server skips after an error in the
// extended protocol: everything up to (not including) the next Sync.
func (q *queue) skipToSync() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) > 0 && q.items[0].kind != kSync && q.items[0].kind != kQuery {
		q.items[0] = nil
		q.items = q.items[1:]
	}
	q.signal()
}
