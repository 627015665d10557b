package httpproxy

import (
	"io"

	"github.com/sluice-gate/sluice/pkg/mask"
)

// newJSONMasker masks a JSON body (TODO: pkg/jsonmask).
func newJSONMasker(dst io.Writer, m *mask.Masker, st *mask.Stats) io.WriteCloser {
	return newTextMasker(dst, m, st)
}
