package httpproxy

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(protocol string, reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "sluice_http_requests_total",
			Help:        "HTTP requests by target and outcome (allowed, denied, held, approved, rejected, error).",
			ConstLabels: prometheus.Labels{"protocol": protocol},
		}, []string{"target", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:        "sluice_http_request_duration_seconds",
			Help:        "Time from a request's arrival to the end of its response, by target.",
			ConstLabels: prometheus.Labels{"protocol": protocol},
			Buckets:     prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"target"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.duration} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
