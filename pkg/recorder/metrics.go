package recorder

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	sessions prometheus.Counter
	records  *prometheus.CounterVec
	errors   prometheus.Counter
	deleted  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		sessions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_recorded_sessions_total", Help: "Sessions recorded (refused connections included).",
		}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_recorded_records_total", Help: "Records written, by kind.",
		}, []string{"kind"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_recording_errors_total", Help: "Recording writes that failed (the request was refused).",
		}),
		deleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_recordings_deleted_total", Help: "Recordings deleted by retention.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.sessions, m.records, m.errors, m.deleted} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
