package approval

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	pending   prometheus.Gauge
	decisions *prometheus.CounterVec
	refusals  *prometheus.CounterVec
	wait      prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_approvals_pending",
			Help: "Requests held for approval right now.",
		}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_approval_decisions_total",
			Help: "Approval outcomes: approved, denied, expired, cancelled, abandoned, window.",
		}, []string{"outcome"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_approval_refusals_total",
			Help: "Reviewer decisions refused: self (own request), group (not a reviewer), auth.",
		}, []string{"reason"}),
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sluice_approval_wait_seconds",
			Help:    "How long held requests waited for their outcome.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 14),
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.pending, m.decisions, m.refusals, m.wait} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
