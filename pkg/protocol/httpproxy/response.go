package httpproxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-gate/sluice/pkg/mask"
	"github.com/sluice-gate/sluice/pkg/record"
)

// sampleRow is the size of a row of a response sample: the body in lines,
// long lines cut.
const sampleRow = 1 << 10

// modifyResponse masks the body as it streams back and arranges for the
// result to be recorded when it ends.
func (c *conn) modifyResponse(resp *http.Response) error {
	ex, _ := resp.Request.Context().Value(exchangeKey{}).(*exchange)
	if ex == nil {
		return errors.New("response without a recorded request")
	}
	res := &record.Result{Request: ex.req, Tag: resp.Status}
	if resp.StatusCode >= 400 {
		res.Error = &record.ResultError{Code: strconv.Itoa(resp.StatusCode), Message: http.StatusText(resp.StatusCode)}
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		rwc, ok := resp.Body.(io.ReadWriteCloser)
		if !ok {
			return errors.New("upgraded response without a connection")
		}
		var obs Observer
		if c.h.cfg.Observe != nil {
			obs = c.h.cfg.Observe(ex.op, resp, c.s.Rec)
		}
		ex.up = &upgraded{rwc: rwc, c: c, obs: obs, ex: ex, res: res}
		resp.Body = ex.up
		return nil
	}
	body := resp.Body
	var st *mask.Stats
	if ex.masker != nil && resp.Body != http.NoBody {
		if enc := resp.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
			return fmt.Errorf("the response is %s-encoded and cannot be masked", enc)
		}
		st = &mask.Stats{}
		ct := resp.Header.Get("Content-Type")
		mb, ok := newMaskedBody(ct, resp.Body, ex.masker, st)
		switch {
		case ok && resp.ContentLength >= 0 && resp.ContentLength <= smallBody:
			// A small body of known length is masked whole, so that it
			// keeps an exact Content-Length (and goes out in one write).
			buf := bytes.NewBuffer(make([]byte, 0, resp.ContentLength+resp.ContentLength/8+64))
			if _, err := buf.ReadFrom(io.LimitReader(mb, maskedLimit+1)); err != nil {
				return err
			}
			masked := buf.Bytes()
			if len(masked) > maskedLimit {
				// Masking made it balloon: stream the rest.
				body = readCloser{io.MultiReader(bytes.NewReader(masked), mb), resp.Body}
				resp.Header.Del("Content-Length")
				resp.ContentLength = -1
				break
			}
			body = readCloser{bytes.NewReader(masked), resp.Body}
			resp.ContentLength = int64(len(masked))
			resp.Header.Set("Content-Length", strconv.Itoa(len(masked)))
		case ok:
			body = mb
			resp.Header.Del("Content-Length")
			resp.ContentLength = -1
		default:
			_ = c.s.Rec.Note(fmt.Sprintf("request %s: response of content type %q passed unmasked (masking covers JSON and text)", ex.req, ct))
		}
	}
	resp.Body = &recordedBody{src: body, c: c, ex: ex, res: res, st: st, sample: c.s.Rec.Sample()}
	return nil
}

const (
	// smallBody is the largest body of known length masked whole, to
	// keep its Content-Length; longer ones stream, chunked.
	smallBody = 64 << 10
	// maskedLimit bounds what a small body can grow to once masked
	// (a partial mask can lengthen short values).
	maskedLimit = 8 * smallBody
)

// readCloser reads from a buffer and closes the body it came from.
type readCloser struct {
	io.Reader
	io.Closer
}

// maskable reports which masker a content type gets: JSON (and
// +json types), text, or none.
func maskable(ct string) string {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		// No or a broken content type: treat the body as text, so that
		// detectors still run over it.
		return "text"
	}
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json") || mt == "application/json-seq" || mt == "application/x-ndjson":
		return "json"
	case strings.HasPrefix(mt, "text/") || mt == "application/xml" || strings.HasSuffix(mt, "+xml") ||
		mt == "application/yaml" || mt == "application/x-yaml" || mt == "application/javascript":
		return "text"
	}
	return ""
}

// maskedBody runs the body through a masking writer as it is read.
type maskedBody struct {
	src   io.ReadCloser
	w     io.WriteCloser // writes masked bytes into out
	out   bytes.Buffer
	chunk *[]byte // from chunks, until the body ends
	eof   bool
	err   error
}

// chunks are maskedBody read buffers, reused across responses.
var chunks = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func newMaskedBody(ct string, src io.ReadCloser, m *mask.Masker, st *mask.Stats) (*maskedBody, bool) {
	b := &maskedBody{src: src}
	switch maskable(ct) {
	case "json":
		b.w = newJSONMasker(&b.out, m, st)
	case "text":
		b.w = newTextMasker(&b.out, m, st)
	default:
		return nil, false
	}
	b.chunk = chunks.Get().(*[]byte)
	return b, true
}

func (b *maskedBody) Read(p []byte) (int, error) {
	for b.out.Len() == 0 && !b.eof && b.err == nil {
		if b.chunk == nil {
			b.err = errors.New("mask response: read after close")
			break
		}
		n, err := b.src.Read(*b.chunk)
		if n > 0 {
			if _, werr := b.w.Write((*b.chunk)[:n]); werr != nil {
				// Fail closed: what cannot be masked is not sent on.
				b.err = fmt.Errorf("mask response: %w", werr)
				break
			}
		}
		if err == io.EOF {
			if cerr := b.w.Close(); cerr != nil {
				b.err = fmt.Errorf("mask response: %w", cerr)
			}
			b.eof = true
		} else if err != nil {
			b.err = err
		}
	}
	if b.eof || b.err != nil {
		b.release()
	}
	if b.out.Len() > 0 {
		return b.out.Read(p)
	}
	if b.err != nil {
		return 0, b.err
	}
	return 0, io.EOF
}

func (b *maskedBody) Close() error {
	b.release()
	return b.src.Close()
}

func (b *maskedBody) release() {
	if b.chunk != nil {
		chunks.Put(b.chunk)
		b.chunk = nil
	}
}

// recordedBody counts and samples the body as the agent receives it, and
// records the result when the body ends.
type recordedBody struct {
	src    io.ReadCloser
	c      *conn
	ex     *exchange
	res    *record.Result
	st     *mask.Stats
	sample *record.Sample
	line   []byte // the sample row being filled
	n      int64
	once   sync.Once
}

func (b *recordedBody) Read(p []byte) (int, error) {
	n, err := b.src.Read(p)
	if n > 0 {
		b.n += int64(n)
		b.addSample(p[:n])
	}
	if err != nil {
		var rerr *record.ResultError
		if err != io.EOF {
			rerr = &record.ResultError{Code: "aborted", Message: err.Error()}
		}
		b.finish(rerr)
	}
	return n, err
}

func (b *recordedBody) addSample(p []byte) {
	if b.sample.Truncated() {
		return
	}
	for len(p) > 0 && !b.sample.Truncated() {
		i := bytes.IndexByte(p, '\n')
		take := len(p)
		if i >= 0 {
			take = i + 1
		}
		if room := sampleRow - len(b.line); take > room {
			take = room
		}
		b.line = append(b.line, p[:take]...)
		p = p[take:]
		if len(b.line) == sampleRow || b.line[len(b.line)-1] == '\n' {
			b.sample.Add([]string{strings.TrimSuffix(string(b.line), "\n")})
			b.line = b.line[:0]
		}
	}
}

func (b *recordedBody) Close() error {
	b.finish(nil)
	return b.src.Close()
}

func (b *recordedBody) finish(rerr *record.ResultError) {
	b.once.Do(func() {
		if len(b.line) > 0 {
			b.sample.Add([]string{string(b.line)})
		}
		res := b.res
		res.Duration = time.Since(b.ex.start)
		res.Bytes = b.n
		res.Columns = []string{"body"}
		res.RowsSample, res.Truncated = b.sample.Rows(), b.sample.Truncated()
		res.Rows = int64(len(res.RowsSample))
		if b.st != nil {
			res.Masked = b.st.Map()
		}
		if rerr != nil && res.Error == nil {
			res.Error = rerr
		}
		if err := b.c.s.Rec.Result(*res); err != nil {
			b.c.log.Error("record result", "err", err)
		}
	})
}

// upgraded relays an upgraded connection (its body is the target's
// connection), counting and observing both directions.
type upgraded struct {
	rwc  io.ReadWriteCloser
	c    *conn
	obs  Observer
	ex   *exchange
	res  *record.Result
	once sync.Once
	err  error
}

func (u *upgraded) Read(p []byte) (int, error) {
	n, err := u.rwc.Read(p)
	if n > 0 && u.obs != nil {
		u.obs.FromServer(p[:n])
	}
	return n, err
}

func (u *upgraded) Write(p []byte) (int, error) {
	if u.obs != nil {
		u.obs.FromClient(p)
	}
	return u.rwc.Write(p)
}

func (u *upgraded) Close() error {
	u.once.Do(func() {
		res := u.res
		if u.obs != nil {
			u.obs.Close(res)
		}
		res.Duration = time.Since(u.ex.start)
		if err := u.c.s.Rec.Result(*res); err != nil {
			u.c.log.Error("record result", "err", err)
		}
		u.err = u.rwc.Close()
	})
	return u.err
}
