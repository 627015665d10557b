package remotecmd

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the fuzz seed corpus in testdata/fuzz from recorded sessions")

var (
	wsFuzzConfigs = []Config{
		{Upgrade: "websocket", Protocol: "v5.channel.k8s.io"},
		{Upgrade: "websocket", Protocol: "v4.channel.k8s.io"},
		{Upgrade: "websocket", Protocol: "v4.base64.channel.k8s.io"},
		{Upgrade: "websocket", Protocol: "channel.k8s.io"},
		{Upgrade: "websocket", Protocol: "base64.channel.k8s.io"},
		{Upgrade: "websocket", Protocol: "v4.channel.k8s.io", PortForward: true},
		{Upgrade: "websocket", Protocol: "SPDY/3.1+portforward.k8s.io"},
	}
	spdyFuzzConfigs = []Config{
		{Upgrade: "SPDY/3.1", Protocol: "v4.channel.k8s.io"},
		{Upgrade: "SPDY/3.1", Protocol: "v2.channel.k8s.io"},
		{Upgrade: "SPDY/3.1", Protocol: "portforward.k8s.io", PortForward: true},
	}
	// fuzzPieces are the piece sizes the two directions are interleaved
	// in; 0 means all of the client's bytes, then all of the server's.
	fuzzPieces = []int{0, 1, 3, 64, 4096}
)

// FuzzWebSocket feeds arbitrary bytes as both directions of a WebSocket
// session: the observer must neither panic nor hold more than its limits,
// and must report bad input as a *ParseError.
func FuzzWebSocket(f *testing.F) {
	seed := func(cfg int, frames ...[]byte) { f.Add(uint8(cfg), bytes.Join(frames, nil), []byte(nil)) }
	seed(0, wsFrame(true, opBinary, true, msg(0, "ls\n")), wsFrame(true, opBinary, true, msg(4, `{"Width":80,"Height":24}`)), wsFrame(true, opBinary, true, []byte{255, 0}))
	seed(2, wsFrame(false, opText, true, []byte("0aGVs")), wsFrame(true, opPing, true, nil), wsFrame(true, opContinuation, true, []byte("bG8=")))
	f.Add(uint8(1), []byte(nil), bytes.Join([][]byte{wsFrame(true, opBinary, false, msg(1, "out")), wsFrame(true, opBinary, false, msg(3, exitStatus)), wsFrame(true, opClose, false, nil)}, nil))
	f.Add(uint8(5), wsFrame(true, opBinary, true, msg(0, "GET /")), wsFrame(true, opBinary, false, []byte{0, 0x90, 0x1f, 'x'}))
	f.Fuzz(func(t *testing.T, mode uint8, client, server []byte) {
		fuzzObserve(t, wsFuzzConfigs, mode, client, server)
	})
}

// FuzzSPDY does the same for SPDY sessions; the committed corpus holds
// real spdystream sessions, whose compressed headers a fuzzer would not
// find by itself.
func FuzzSPDY(f *testing.F) {
	hc, sc := newHeaderCompressor(), newHeaderCompressor()
	f.Add(uint8(0),
		bytes.Join([][]byte{synStream(1, 0, hc.block(true, "streamtype", "error")), synStream(3, 0, hc.block(true, "streamtype", "stdout")), spdyData(1, flagFin, nil)}, nil),
		bytes.Join([][]byte{spdyControl(typeSynReply, 0, append([]byte{0, 0, 0, 1}, sc.block(true)...)), spdyData(3, 0, []byte("out")), spdyData(1, flagFin, []byte(exitStatus))}, nil))
	f.Fuzz(func(t *testing.T, mode uint8, client, server []byte) {
		fuzzObserve(t, spdyFuzzConfigs, mode, client, server)
	})
}

func fuzzObserve(t *testing.T, configs []Config, mode uint8, client, server []byte) {
	c := configs[int(mode)%len(configs)]
	piece := fuzzPieces[int(mode)/len(configs)%len(fuzzPieces)]
	c.Emit = func(e Event) {
		switch {
		case e.Kind < Stdin || e.Kind > Close:
			t.Fatalf("event of kind %d", e.Kind)
		case e.Data != nil && len(e.Data) == 0:
			t.Fatalf("empty %s event", e.Kind)
		case len(e.Message) > MaxStatus:
			t.Fatalf("%s message of %d bytes", e.Kind, len(e.Message))
		case e.Kind == Exit && (e.FromClient || e.ExitCode < 0 || e.ExitCode > 255):
			t.Fatalf("exit event %+v", e)
		}
	}
	o, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	feed := func(b []byte, fromClient bool) {
		if fromClient {
			o.FromClient(b)
		} else {
			o.FromServer(b)
		}
		if err := checkBounds(o); err != nil {
			t.Fatal(err)
		}
	}
	if piece == 0 {
		feed(client, true)
		feed(server, false)
	} else {
		for len(client) > 0 || len(server) > 0 {
			n := min(piece, len(client))
			feed(client[:n], true)
			client = client[n:]
			n = min(piece, len(server))
			feed(server[:n], false)
			server = server[n:]
		}
	}
	if err := o.Err(); err != nil {
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Fatalf("Err() = %T %v, want a *ParseError", err, err)
		}
	}
}

// checkBounds checks what an Observer holds between feeds against the
// limits it documents.
func checkBounds(o *Observer) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, st := range o.sess.chans {
		if err := streamBounds(st); err != nil {
			return err
		}
	}
	for _, p := range []parser{o.client, o.server} {
		if w, ok := p.(*wsReader); ok {
			if cap(w.scratch) > scratchSize {
				return fmt.Errorf("websocket scratch of %d bytes", cap(w.scratch))
			}
			switch s := w.sink.(type) {
			case *channelSink:
				if len(s.b64.in) > 3 || len(s.sigArg) > 1 {
					return fmt.Errorf("channel sink holds %d base64 bytes, %d signal bytes", len(s.b64.in), len(s.sigArg))
				}
			case *tunnelSink:
				p = s.spdy
			}
		}
		r, ok := p.(*spdyReader)
		if !ok {
			continue
		}
		if len(r.ctl) > MaxControlFrame || len(r.headers.src.b) > 2*MaxControlFrame || cap(r.headers.buf) > MaxHeaderBlock {
			return fmt.Errorf("spdy reader holds %d control, %d compressed, %d header bytes", len(r.ctl), len(r.headers.src.b), cap(r.headers.buf))
		}
		if n := len(r.streams.m); n > MaxStreams {
			return fmt.Errorf("%d spdy streams", n)
		}
		for _, s := range r.streams.m {
			if err := streamBounds(s.st); err != nil {
				return err
			}
		}
	}
	return nil
}

func streamBounds(st *stream) error {
	if st != nil && (len(st.status) > MaxStatus || len(st.resize) > MaxResize) {
		return fmt.Errorf("stream holds %d status, %d resize bytes", len(st.status), len(st.resize))
	}
	return nil
}

// TestUpdateCorpus records small real sessions as the committed seed
// corpus of the fuzz targets.
func TestUpdateCorpus(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite testdata/fuzz")
	}
	write := func(target, name string, configs []Config, c Config, p *tee) {
		mode := -1
		for i, fc := range configs {
			if fc.Protocol == c.Protocol && fc.PortForward == c.PortForward {
				mode = i
			}
		}
		if mode < 0 {
			t.Fatalf("no fuzz config for %+v", c)
		}
		var client, server []byte
		for _, ch := range p.chunks {
			if ch.fromClient {
				client = append(client, ch.b...)
			} else {
				server = append(server, ch.b...)
			}
		}
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		body := fmt.Sprintf("go test fuzz v1\nbyte(%d)\n[]byte(%q)\n[]byte(%q)\n", mode, client, server)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, tt := range wsExecCases {
		p, c, _ := wsExecSession(t, tt, 300+i)
		write("FuzzWebSocket", "exec-"+tt.proto, wsFuzzConfigs, c, p)
	}
	p, c, _ := wsPortForwardSession(t)
	write("FuzzWebSocket", "portforward", wsFuzzConfigs, c, p)
	p, c = tunnelPortForwardSession(t)
	write("FuzzWebSocket", "tunnel", wsFuzzConfigs, c, p)
	p, c, _ = spdyExecSession(t, 300)
	write("FuzzSPDY", "exec", spdyFuzzConfigs, c, p)
	p, c = spdyPortForwardSession(t)
	write("FuzzSPDY", "portforward", spdyFuzzConfigs, c, p)
}
