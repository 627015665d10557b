package gate

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	connections    *prometheus.CounterVec
	upstreamErrors *prometheus.CounterVec
	bytes          *prometheus.CounterVec
	active         prometheus.Gauge
	decision       prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		connections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_connections_total",
			Help: "Connections accepted by the proxy, by target and outcome.",
		}, []string{"target", "outcome"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_upstream_errors_total",
			Help: "Allowed connections that ended in an upstream or handler error.",
		}, []string{"target"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_bytes_total",
			Help: "Bytes relayed, by target and direction (up: agent to target).",
		}, []string{"target", "direction"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_connections_active",
			Help: "Connections being handled.",
		}),
		decision: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sluice_connection_decision_seconds",
			Help:    "Time from accept to the connect decision (attribution, identity, target, policy).",
			Buckets: prometheus.ExponentialBuckets(10e-6, 2, 16),
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.connections, m.upstreamErrors, m.bytes, m.active, m.decision} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
