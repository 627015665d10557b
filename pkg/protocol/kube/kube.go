package kube

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-gate/sluice/pkg/ca"
	"github.com/sluice-gate/sluice/pkg/mask"
	"github.com/sluice-gate/sluice/pkg/policy"
	"github.com/sluice-gate/sluice/pkg/protocol/httpproxy"
)

// Config configures the handler.
type Config struct {
	// CA issues the certificates agents see.
	CA *ca.CA
	// MaskKey keys the "hash" masking strategy.
	MaskKey []byte
	Log     *slog.Logger
	// Registerer receives the handler's metrics; nil means none.
	Registerer prometheus.Registerer
}

// New builds the Kubernetes API handler.
func New(cfg Config) (*httpproxy.Handler, error) {
	return httpproxy.New(httpproxy.Config{
		CA: cfg.CA, MaskKey: cfg.MaskKey, Log: cfg.Log, Registerer: cfg.Registerer,
		Protocol: "kubernetes",
		Classify: classify,
		Refuse:   refuse,
		Prepare:  prepare,
		Observe:  observe,
	})
}

// prepare asks the server for JSON: protobuf would pass masking unread.
// Tables are JSON too, and detectors see their cells; but path rules
// name an object's fields, which a Table's cells no longer carry, so
// when path rules are in force the objects themselves are asked for
// (kubectl then prints them with its own columns).
func prepare(out *http.Request, _ policy.Operation, m *mask.Masker) {
	tables := m == nil || !m.HasPaths()
	out.Header.Set("Accept", jsonOnly(out.Header.Values("Accept"), tables))
}
