package remotecmd

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// chunk is one read of one direction, as the proxy saw it.
type chunk struct {
	fromClient bool
	b          []byte
}

// tee is a loopback TCP proxy in front of upstream that records every
// chunk it forwards, in order, and feeds a live Observer with it before
// forwarding, as the kube handler will.
type tee struct {
	addr string
	obs  *Observer
	ev   *events

	mu     sync.Mutex // guards chunks
	chunks []chunk
	done   chan struct{}
}

// startTee proxies one connection to upstream. With httpUpgrade it first
// passes the HTTP request and response heads through unobserved, as the
// handler does before the upgrade.
func startTee(t *testing.T, upstream string, httpUpgrade bool, c Config) *tee {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tee{addr: ln.Addr().String(), ev: &events{}, done: make(chan struct{})}
	c.Emit = p.ev.add
	if p.obs, err = New(c); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		defer ln.Close()
		cc, err := ln.Accept()
		if err != nil {
			t.Error(err)
			return
		}
		defer cc.Close()
		uc, err := net.Dial("tcp", upstream)
		if err != nil {
			t.Error(err)
			return
		}
		defer uc.Close()
		var cr, ur io.Reader = cc, uc
		if httpUpgrade {
			cb, ub := bufio.NewReader(cc), bufio.NewReader(uc)
			if err := copyHead(uc, cb); err != nil {
				t.Error(err)
				return
			}
			if err := copyHead(cc, ub); err != nil {
				t.Error(err)
				return
			}
			cr, ur = cb, ub
		}
		var wg sync.WaitGroup
		wg.Go(func() { p.pump(uc, cr, true) })
		wg.Go(func() { p.pump(cc, ur, false) })
		wg.Wait()
	}()
	return p
}

// copyHead forwards an HTTP message head, up to the empty line.
func copyHead(dst io.Writer, src *bufio.Reader) error {
	for {
		line, err := src.ReadSlice('\n')
		if err != nil {
			return err
		}
		if _, err := dst.Write(line); err != nil {
			return err
		}
		if string(line) == "\r\n" {
			return nil
		}
	}
}

func (p *tee) pump(dst net.Conn, src io.Reader, fromClient bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			b := bytes.Clone(buf[:n])
			p.mu.Lock()
			p.chunks = append(p.chunks, chunk{fromClient, b})
			p.mu.Unlock()
			if fromClient {
				p.obs.FromClient(b)
			} else {
				p.obs.FromServer(b)
			}
			if _, werr := dst.Write(b); werr != nil {
				return
			}
		}
		if err != nil {
			if tc, ok := dst.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			return
		}
	}
}

// wait waits for both directions to end.
func (p *tee) wait(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("proxy still copying after 30s")
	}
}

// events collects what an Observer emits, merging consecutive data events
// of one stream so that how the bytes were chunked does not matter.
type events struct {
	mu   sync.Mutex // guards list
	list []Event
}

func (e *events) add(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ev.Data != nil && len(ev.Data) == 0 {
		panic("empty data event")
	}
	if n := len(e.list); n > 0 && ev.Data != nil {
		last := &e.list[n-1]
		if last.Kind == ev.Kind && last.FromClient == ev.FromClient && last.Port == ev.Port && last.Data != nil {
			last.Data = append(last.Data, ev.Data...)
			return
		}
	}
	ev.Data = bytes.Clone(ev.Data)
	ev.Time = time.Time{}
	e.list = append(e.list, ev)
}

func (e *events) strings() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, len(e.list))
	for i, ev := range e.list {
		out[i] = describe(ev)
	}
	return out
}

// describe renders an event for comparison; long data is summarised.
func describe(ev Event) string {
	var b strings.Builder
	if ev.FromClient {
		b.WriteString("client ")
	}
	b.WriteString(ev.Kind.String())
	if ev.Port != 0 {
		fmt.Fprintf(&b, " port=%d", ev.Port)
	}
	switch ev.Kind {
	case Stdin, Stdout, Stderr, PortData:
		if len(ev.Data) > 64 {
			fmt.Fprintf(&b, " %d bytes sha256=%x", len(ev.Data), sha256.Sum256(ev.Data))
		} else {
			fmt.Fprintf(&b, " %q", ev.Data)
		}
	case Resize:
		fmt.Fprintf(&b, " %dx%d", ev.Width, ev.Height)
	case Exit:
		fmt.Fprintf(&b, " %d %q", ev.ExitCode, ev.Message)
	case Error:
		fmt.Fprintf(&b, " %q", ev.Message)
	case Close:
		fmt.Fprintf(&b, " %s", ev.Stream)
	}
	return b.String()
}

// replay feeds recorded chunks to a new Observer, each cut into pieces
// by split, and returns its events.
func replay(t *testing.T, c Config, chunks []chunk, split func([]byte) [][]byte) ([]string, error) {
	t.Helper()
	ev := &events{}
	c.Emit = ev.add
	o, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range chunks {
		for _, piece := range split(ch.b) {
			if ch.fromClient {
				o.FromClient(piece)
			} else {
				o.FromServer(piece)
			}
		}
	}
	return ev.strings(), o.Err()
}

func whole(b []byte) [][]byte { return [][]byte{b} }

func bytewise(b []byte) [][]byte {
	out := make([][]byte, len(b))
	for i := range b {
		out[i] = b[i : i+1]
	}
	return out
}

func randomly(seed uint64) func([]byte) [][]byte {
	r := rand.New(rand.NewPCG(seed, seed))
	return func(b []byte) [][]byte {
		var out [][]byte
		for len(b) > 0 {
			n := min(len(b), 1+r.IntN(300))
			out = append(out, b[:n])
			b = b[n:]
		}
		return out
	}
}

// checkSession compares the live observer's events with want, then
// replays the recorded traffic whole, one byte at a time and in random
// pieces, expecting the same.
func checkSession(t *testing.T, c Config, p *tee, want []string) {
	t.Helper()
	if err := p.obs.Err(); err != nil {
		t.Errorf("live observer: Err() = %v", err)
	}
	compare(t, "live", p.ev.strings(), want)
	splits := []struct {
		name  string
		split func([]byte) [][]byte
	}{{"whole", whole}, {"bytewise", bytewise}, {"random", randomly(1)}}
	for _, s := range splits {
		got, err := replay(t, c, p.chunks, s.split)
		if err != nil {
			t.Errorf("%s replay: Err() = %v", s.name, err)
		}
		compare(t, s.name, got, want)
	}
}

func compare(t *testing.T, name string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") == strings.Join(want, "\n") {
		return
	}
	t.Errorf("%s: events differ\ngot:\n\t%s\nwant:\n\t%s", name, strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
}

func TestConfigValidate(t *testing.T) {
	emit := func(Event) {}
	tests := []struct {
		c  Config
		ok bool
	}{
		{Config{Upgrade: "websocket", Protocol: "v5.channel.k8s.io", Emit: emit}, true},
		{Config{Upgrade: "WebSocket", Protocol: "v4.base64.channel.k8s.io", Emit: emit}, true},
		{Config{Upgrade: "websocket", Protocol: "", Emit: emit}, true},
		{Config{Upgrade: "websocket", Protocol: "SPDY/3.1+portforward.k8s.io", Emit: emit}, true},
		{Config{Upgrade: "SPDY/3.1", Protocol: "v4.channel.k8s.io", Emit: emit}, true},
		{Config{Upgrade: "spdy/3.1", Protocol: "portforward.k8s.io", Emit: emit}, true},
		{Config{Upgrade: "websocket", Protocol: "v4.channel.k8s.io"}, false},
		{Config{Upgrade: "websocket", Protocol: "v6.channel.k8s.io", Emit: emit}, false},
		{Config{Upgrade: "SPDY/3.1", Protocol: "v4.base64.channel.k8s.io", Emit: emit}, false},
		{Config{Upgrade: "h2c", Protocol: "v4.channel.k8s.io", Emit: emit}, false},
	}
	for _, tt := range tests {
		t.Run(tt.c.Upgrade+" "+tt.c.Protocol, func(t *testing.T) {
			err := tt.c.Validate()
			if (err == nil) != tt.ok {
				t.Errorf("Validate(%+v) = %v, want ok=%v", tt.c, err, tt.ok)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{`{"metadata":{},"status":"Success"}`, `exit 0 ""`, true},
		{`{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: exit 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}`,
			`exit 3 "command terminated with non-zero exit code: exit 3"`, true},
		{`{"status":"Failure","reason":"NonZeroExitCode","message":"m","details":{"causes":[{"reason":"Other","message":"x"},{"reason":"ExitCode","message":"255"}]}}`, `exit 255 "m"`, true},
		{`{"status":"Failure","reason":"NonZeroExitCode","message":"m","details":{"causes":[{"reason":"ExitCode","message":"256"}]}}`, `error "invalid exit code \"256\": m"`, true},
		{`{"status":"Failure","reason":"NonZeroExitCode","message":"m"}`, `error "m"`, true},
		{`{"status":"Failure","reason":"InternalError","message":"error executing command in container: not found"}`, `error "error executing command in container: not found"`, true},
		{`{"status":"Failure"}`, `error "{\"status\":\"Failure\"}"`, true},
		{`{"kind":"Status"}`, ``, false},
		{`not json`, ``, false},
	}
	for _, tt := range tests {
		e, ok := parseStatus([]byte(tt.in))
		got := ""
		if ok {
			got = describe(e)
		}
		if ok != tt.ok || got != tt.want {
			t.Errorf("parseStatus(%q) = %s, %v, want %s, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// TestConcurrentFeeds feeds both directions from two goroutines: the race
// detector checks the locking.
func TestConcurrentFeeds(t *testing.T) {
	var n int
	o, err := New(Config{Upgrade: "websocket", Protocol: "v5.channel.k8s.io", Emit: func(Event) { n++ }})
	if err != nil {
		t.Fatal(err)
	}
	client := wsFrame(true, opBinary, true, append([]byte{0}, "x"...))
	server := wsFrame(true, opBinary, false, append([]byte{1}, "y"...))
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 1000 {
			o.FromClient(client)
		}
	})
	wg.Go(func() {
		for range 1000 {
			o.FromServer(server)
		}
	})
	wg.Wait()
	if err := o.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 2000 {
		t.Errorf("%d events, want 2000", n)
	}
}

func TestParseErrorUnwrap(t *testing.T) {
	o, err := New(Config{Upgrade: "websocket", Protocol: "v4.channel.k8s.io", Emit: func(Event) {}})
	if err != nil {
		t.Fatal(err)
	}
	o.FromServer([]byte{0x89, 126, 0, 200})
	var pe *ParseError
	if err := o.Err(); !errors.As(err, &pe) || pe.FromClient || !errors.Is(err, ErrLimit) {
		t.Errorf("Err() = %v, want a server-side ParseError wrapping ErrLimit", err)
	}
}
