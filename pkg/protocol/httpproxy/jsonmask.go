package httpproxy

import (
	"io"

	"github.com/sluice-gate/sluice/pkg/jsonmask"
	"github.com/sluice-gate/sluice/pkg/mask"
)

// newJSONMasker masks a JSON body (or a stream of JSON values, as in
// newline-delimited JSON and Kubernetes watches) by path rule and by
// detector, token by token. A body that is not JSON after all stops the
// masker: what cannot be masked is not sent on.
func newJSONMasker(dst io.Writer, m *mask.Masker, st *mask.Stats) io.WriteCloser {
	return jsonmask.New(dst, m, jsonmask.Options{Stats: st})
}
