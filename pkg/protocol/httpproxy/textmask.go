package httpproxy

import (
	"bytes"
	"io"

	"github.com/sluice-gate/sluice/pkg/mask"
)

// maxTextPiece bounds what the text masker holds. Detectors run over
// whole lines, as many as fit in a piece (so that a PEM block, which
// spans lines, is seen whole); a line longer than a piece is cut, and a
// value split by the cut could escape its detector. Such lines are rare
// in text; JSON, where they are common, has its own masker.
const maxTextPiece = 64 << 10

// textMasker runs the detectors over text, a piece of whole lines at a
// time.
type textMasker struct {
	dst io.Writer
	m   *mask.Masker
	st  *mask.Stats
	buf []byte
	out []byte
}

func newTextMasker(dst io.Writer, m *mask.Masker, st *mask.Stats) io.WriteCloser {
	return &textMasker{dst: dst, m: m, st: st}
}

func (t *textMasker) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		take := min(len(p), maxTextPiece-len(t.buf))
		t.buf = append(t.buf, p[:take]...)
		p = p[take:]
		if len(t.buf) < maxTextPiece {
			break
		}
		cut := bytes.LastIndexByte(t.buf, '\n') + 1
		if cut == 0 {
			cut = len(t.buf)
		}
		if err := t.flush(cut); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// flush masks and writes the first n bytes held.
func (t *textMasker) flush(n int) error {
	if n == 0 {
		return nil
	}
	t.out, _ = t.m.Text(t.out[:0], t.buf[:n], t.st)
	t.buf = t.buf[:copy(t.buf, t.buf[n:])]
	_, err := t.dst.Write(t.out)
	return err
}

func (t *textMasker) Close() error { return t.flush(len(t.buf)) }
