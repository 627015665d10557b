package daemon

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-gate/sluice/pkg/bpf"
)

type metrics struct {
	enrollments *prometheus.CounterVec
	tokens      *prometheus.CounterVec
	reloads     *prometheus.CounterVec
	apiRefused  *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		enrollments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_enrollments_total",
			Help: "Job enrollment requests, by result.",
		}, []string{"result"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_tokens_minted_total",
			Help: "Tokens minted by the embedded issuer, by result.",
		}, []string{"result"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_reloads_total",
			Help: "Configuration reloads, by result.",
		}, []string{"result"}),
		apiRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_api_refused_total",
			Help: "Local API calls refused, by reason.",
		}, []string{"reason"}),
	}
	reg.MustRegister(m.enrollments, m.tokens, m.reloads, m.apiRefused)
	return m
}

// registerKernel exports the BPF programs' counters.
func (m *metrics) registerKernel(reg *prometheus.Registry, s *bpf.Steering) {
	stat := func(name, help string, get func(bpf.Stats) uint64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 {
			st, err := s.Stats()
			if err != nil {
				return 0
			}
			return float64(get(st))
		}))
	}
	stat("sluice_kernel_redirected_total", "TCP connects steered to the proxy.", func(s bpf.Stats) uint64 { return s.Redirected })
	stat("sluice_kernel_tracked_total", "Client ports recorded for attribution.", func(s bpf.Stats) uint64 { return s.Tracked })
	stat("sluice_kernel_record_failed_total", "Connects refused because the kernel record failed.", func(s bpf.Stats) uint64 { return s.RecordFailed })
	stat("sluice_kernel_udp_allowed_total", "UDP sends/connects to a configured resolver.", func(s bpf.Stats) uint64 { return s.UDPAllowed })
	stat("sluice_kernel_udp_denied_total", "UDP sends/connects refused.", func(s bpf.Stats) uint64 { return s.UDPDenied })
	stat("sluice_kernel_socket_denied_total", "socket() calls refused (raw, packet, ICMP, other protocols).", func(s bpf.Stats) uint64 { return s.SockDenied })
}
