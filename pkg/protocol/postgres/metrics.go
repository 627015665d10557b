package postgres

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	statements *prometheus.CounterVec
	masked     *prometheus.CounterVec
	decide     prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		statements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_statements_total",
			Help: "SQL statements judged, by target and outcome (allowed, denied, held, approved, rejected).",
		}, []string{"protocol", "target", "outcome"}),
		masked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_masked_values_total",
			Help: "Values masked in results, by target and rule (column rule or detector).",
		}, []string{"protocol", "target", "rule"}),
		decide: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sluice_statement_decision_seconds",
			Help:    "Time to classify a request's statements and decide on them (without approval waits).",
			Buckets: prometheus.ExponentialBuckets(1e-6, 2, 20),
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.statements, m.masked, m.decide} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
