package approval

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Webhook posts a Slack-compatible message ({"text": ...}, which Slack,
// Mattermost, Rocket.Chat and most chat tools accept) for every new request
// and every outcome, with a link to the approvals page. Failures are
// retried with backoff, then logged and counted; a notification never
// changes a request.
type Webhook struct {
	URL string
	// PageURL is the approvals page, linked from each message.
	PageURL string
	Client  *http.Client
	Log     *slog.Logger
	// Attempts and Backoff bound retries (0: 5 attempts, 1s doubling).
	Attempts int
	Backoff  time.Duration
	// Sent counts notifications by result (sent, retried, failed,
	// dropped); nil: not counted.
	Sent *prometheus.CounterVec

	wg    sync.WaitGroup
	queue chan *Request
	once  sync.Once
}

// NotificationCounter is the metric a Webhook counts into.
func NotificationCounter(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_approval_notifications_total",
		Help: "Approval webhook notifications, by result (sent, retried, failed, dropped).",
	}, []string{"result"})
	if reg != nil {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Run sends queued notifications until ctx ends, then waits for the ones in
// flight.
func (w *Webhook) Run(ctx context.Context) error {
	w.init()
	for {
		select {
		case <-ctx.Done():
			w.wg.Wait()
			return nil
		case r := <-w.queue:
			w.wg.Add(1)
			go func() {
				defer w.wg.Done()
				w.send(ctx, r)
			}()
		}
	}
}

func (w *Webhook) init() {
	w.once.Do(func() {
		w.queue = make(chan *Request, 256)
		if w.Client == nil {
			w.Client = &http.Client{Timeout: 10 * time.Second}
		}
		if w.Attempts == 0 {
			w.Attempts = 5
		}
		if w.Backoff == 0 {
			w.Backoff = time.Second
		}
	})
}

// Notify queues a notification; when the queue is full it is dropped (and
// counted) rather than stall a held request.
func (w *Webhook) Notify(r *Request) {
	w.init()
	select {
	case w.queue <- r:
	default:
		w.count("dropped")
		w.Log.Warn("approval webhook queue full; notification dropped", "approval", r.ID)
	}
}

func (w *Webhook) count(result string) {
	if w.Sent != nil {
		w.Sent.WithLabelValues(result).Inc()
	}
}

// Message is the text of a notification.
func (w *Webhook) Message(r *Request) string {
	var b strings.Builder
	switch r.Status {
	case Pending:
		fmt.Fprintf(&b, "sluice: %s wants to run on %s:\n```%s```\nReason: %s. Reviewers: %s. Deadline %s.",
			r.Requester, r.Target, r.Operation, r.Reason, strings.Join(r.Reviewers, ", "), r.Deadline.Format(time.RFC3339))
	default:
		fmt.Fprintf(&b, "sluice: request %s by %s on %s is %s", r.ID, r.Requester, r.Target, r.Status)
		if r.DecidedBy != "" {
			fmt.Fprintf(&b, " by %s", r.DecidedBy)
		}
		if r.OutcomeReason != "" {
			fmt.Fprintf(&b, ": %s", r.OutcomeReason)
		}
		b.WriteString(".")
	}
	if w.PageURL != "" {
		fmt.Fprintf(&b, " <%s#%s|Open in sluice>", w.PageURL, r.ID)
	}
	return b.String()
}

func (w *Webhook) send(ctx context.Context, r *Request) {
	body, _ := json.Marshal(map[string]any{"text": w.Message(r), "sluice": map[string]any{
		"id": r.ID, "status": r.Status, "target": r.Target, "requester": r.Requester, "operation": r.Operation,
	}})
	delay := w.Backoff
	for attempt := 1; attempt <= w.Attempts; attempt++ {
		err := w.post(ctx, body)
		if err == nil {
			w.count("sent")
			return
		}
		if attempt == w.Attempts || ctx.Err() != nil {
			w.count("failed")
			w.Log.Error("approval webhook failed", "approval", r.ID, "attempts", attempt, "err", err)
			return
		}
		w.count("retried")
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			w.count("failed")
			return
		}
		delay *= 2
	}
}

func (w *Webhook) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.Client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}
