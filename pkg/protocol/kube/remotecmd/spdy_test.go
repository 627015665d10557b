package remotecmd

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/json"
	"hash/adler32"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/moby/spdystream"
)

func TestHeaderDictionary(t *testing.T) {
	// SPDY/3 §2.6.10.1: 1423 bytes; zlib names a dictionary by its Adler-32.
	if n, sum := len(headerDictionary), adler32.Checksum(headerDictionary); n != 1423 || sum != 0xe3c6a7c2 {
		t.Errorf("dictionary is %d bytes with Adler-32 %#x, want 1423 bytes and 0xe3c6a7c2", n, sum)
	}
}

// spdyServe runs a spdystream server on one accepted connection the way
// kubelet does (every stream is answered at once) and hands run the
// streams by streamType once want of them are open.
func spdyServe(t *testing.T, ln net.Listener, want int, run func(conn *spdystream.Connection, s map[string]*spdystream.Stream)) (done chan struct{}) {
	done = make(chan struct{})
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		if err != nil {
			t.Error(err)
			return
		}
		defer nc.Close()
		conn, err := spdystream.NewConnection(nc, true)
		if err != nil {
			t.Error(err)
			return
		}
		opened := make(chan *spdystream.Stream, want)
		go conn.Serve(func(s *spdystream.Stream) {
			if err := s.SendReply(http.Header{}, false); err != nil {
				t.Error(err)
			}
			opened <- s
		})
		streams := map[string]*spdystream.Stream{}
		for range want {
			s := <-opened
			streams[s.Headers().Get("streamType")] = s
		}
		run(conn, streams)
		<-conn.CloseChan()
	}()
	return done
}

// spdyStreams opens kubectl's streams, in kubectl's order, each with its
// streamType header and extra headers.
func openStreams(t *testing.T, conn *spdystream.Connection, extra http.Header, types ...string) map[string]*spdystream.Stream {
	t.Helper()
	out := map[string]*spdystream.Stream{}
	for _, typ := range types {
		h := http.Header{}
		for k, v := range extra {
			h[k] = v
		}
		h.Set("streamType", typ)
		s, err := conn.CreateStream(h, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Wait(); err != nil {
			t.Fatal(err)
		}
		out[typ] = s
	}
	return out
}

func readN(t *testing.T, r io.Reader, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return b
}

func write(t *testing.T, w io.Writer, b []byte) {
	t.Helper()
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
}

// spdyExecSession runs an exec session as kubectl and kubelet do it over
// SPDY (v4.channel.k8s.io), between two spdystream connections, through a
// tee. It returns the tee and the events the session should give.
func spdyExecSession(t *testing.T, big int) (*tee, Config, []string) {
	bigOut, bigIn := pattern(big, 3), pattern(big, 4)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srvDone := spdyServe(t, ln, 5, func(_ *spdystream.Connection, s map[string]*spdystream.Stream) {
		if got := readN(t, s["stdin"], 6); string(got) != "hello\n" {
			t.Errorf("stdin %q", got)
		}
		write(t, s["stdout"], []byte("hello\n"))
		write(t, s["stderr"], []byte("warn\n"))
		var ts terminalSize
		if err := json.NewDecoder(s["resize"]).Decode(&ts); err != nil || ts != (terminalSize{80, 24}) {
			t.Errorf("resize %v, %v", ts, err)
		}
		write(t, s["stdout"], bigOut)
		if got := readN(t, s["stdin"], len(bigIn)); !bytes.Equal(got, bigIn) {
			t.Error("big stdin differs")
		}
		write(t, s["stdout"], []byte("got it\n"))
		if n, err := io.Copy(io.Discard, s["stdin"]); n != 0 || err != nil {
			t.Errorf("stdin after close: %d bytes, %v", n, err)
		}
		write(t, s["error"], []byte(exitStatus))
		// Close errors are not checked: the client may hang up as soon as
		// the last FIN's header is out, before spdystream's write of its
		// empty payload fails. The events show whether the FINs arrived.
		for _, typ := range []string{"error", "stdout", "stderr"} {
			_ = s[typ].Close()
		}
	})

	c := Config{Upgrade: "SPDY/3.1", Protocol: "v4.channel.k8s.io"}
	p := startTee(t, ln.Addr().String(), false, c)
	nc, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := spdystream.NewConnection(nc, false)
	if err != nil {
		t.Fatal(err)
	}
	go conn.Serve(spdystream.NoOpStreamHandler)
	s := openStreams(t, conn, nil, "error", "stdin", "stdout", "stderr", "resize")
	write(t, s["stdin"], []byte("hello\n"))
	if got := readN(t, s["stdout"], 6); string(got) != "hello\n" {
		t.Errorf("stdout %q", got)
	}
	if got := readN(t, s["stderr"], 5); string(got) != "warn\n" {
		t.Errorf("stderr %q", got)
	}
	if err := json.NewEncoder(s["resize"]).Encode(terminalSize{80, 24}); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, s["stdout"], len(bigOut)); !bytes.Equal(got, bigOut) {
		t.Error("big stdout differs")
	}
	write(t, s["stdin"], bigIn)
	if got := readN(t, s["stdout"], 7); string(got) != "got it\n" {
		t.Errorf("stdout %q", got)
	}
	if err := s["stdin"].Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(s["error"]); string(got) != exitStatus || err != nil {
		t.Errorf("error stream %q, %v", got, err)
	}
	if _, err := io.Copy(io.Discard, s["stdout"]); err != nil {
		t.Error(err)
	}
	if _, err := io.Copy(io.Discard, s["stderr"]); err != nil {
		t.Error(err)
	}
	conn.Close()
	nc.Close()
	<-srvDone
	p.wait(t)

	return p, c, []string{
		`client stdin "hello\n"`,
		`stdout "hello\n"`,
		`stderr "warn\n"`,
		`client resize 80x24`,
		describe(Event{Kind: Stdout, Data: bigOut}),
		describe(Event{Kind: Stdin, FromClient: true, Data: bigIn}),
		`stdout "got it\n"`,
		`client close stdin`,
		`exit 3 "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3"`,
		`close stdout`,
		`close stderr`,
	}
}

func TestSPDYExec(t *testing.T) {
	p, c, want := spdyExecSession(t, 300_000)
	checkSession(t, c, p, want)
}

// portForwardSession plays kubectl port-forward and kubelet over two
// SPDY connections: one forwarded connection to port 8080 with an error.
func portForwardSession(t *testing.T, client, server net.Conn) {
	srv, err := spdystream.NewConnection(server, true)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		opened := make(chan *spdystream.Stream, 2)
		go srv.Serve(func(s *spdystream.Stream) {
			if err := s.SendReply(http.Header{}, false); err != nil {
				t.Error(err)
			}
			opened <- s
		})
		s := map[string]*spdystream.Stream{}
		for range 2 {
			st := <-opened
			if p := st.Headers().Get("port"); p != "8080" {
				t.Errorf("port header %q", p)
			}
			s[st.Headers().Get("streamType")] = st
		}
		if got := readN(t, s["data"], 18); string(got) != "GET / HTTP/1.1\r\n\r\n" {
			t.Errorf("data %q", got)
		}
		write(t, s["data"], []byte("HTTP/1.1 200 OK\r\n\r\n"))
		_ = s["data"].Close()
		write(t, s["error"], []byte("an error occurred forwarding 8080 -> 8080"))
		_ = s["error"].Close()
		<-srv.CloseChan()
	})

	conn, err := spdystream.NewConnection(client, false)
	if err != nil {
		t.Fatal(err)
	}
	go conn.Serve(spdystream.NoOpStreamHandler)
	h := http.Header{}
	h.Set("port", "8080")
	h.Set("requestID", "0")
	s := openStreams(t, conn, h, "error", "data")
	// kubectl never writes to the error stream.
	if err := s["error"].Close(); err != nil {
		t.Fatal(err)
	}
	write(t, s["data"], []byte("GET / HTTP/1.1\r\n\r\n"))
	if got, err := io.ReadAll(s["data"]); string(got) != "HTTP/1.1 200 OK\r\n\r\n" || err != nil {
		t.Errorf("data %q, %v", got, err)
	}
	if got, err := io.ReadAll(s["error"]); string(got) != "an error occurred forwarding 8080 -> 8080" || err != nil {
		t.Errorf("error %q, %v", got, err)
	}
	if err := s["data"].Close(); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	client.Close()
}

var portForwardEvents = []string{
	`client portdata port=8080 "GET / HTTP/1.1\r\n\r\n"`,
	`portdata port=8080 "HTTP/1.1 200 OK\r\n\r\n"`,
	`close port=8080 portdata`,
	`error port=8080 "an error occurred forwarding 8080 -> 8080"`,
	`client close port=8080 portdata`,
}

func spdyPortForwardSession(t *testing.T) (*tee, Config) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c := Config{Upgrade: "SPDY/3.1", Protocol: "portforward.k8s.io", PortForward: true}
	p := startTee(t, ln.Addr().String(), false, c)
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- nc
	}()
	client, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	server := <-accepted
	defer server.Close()
	portForwardSession(t, client, server)
	server.Close()
	p.wait(t)
	return p, c
}

func TestSPDYPortForward(t *testing.T) {
	p, c := spdyPortForwardSession(t)
	checkSession(t, c, p, portForwardEvents)
}

// wsNetConn is SPDY's view of a WebSocket in client-go's tunnelling
// dialer: binary messages make one byte stream.
type wsNetConn struct {
	*websocket.Conn
	r io.Reader
}

func (c *wsNetConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			_, r, err := c.NextReader()
			if err != nil {
				return 0, err
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if err == io.EOF {
			c.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (c *wsNetConn) Write(p []byte) (int, error) {
	if err := c.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *wsNetConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// tunnelPortForwardSession runs the port-forward session through
// client-go's newer transport: SPDY inside WebSocket binary messages.
func tunnelPortForwardSession(t *testing.T) (*tee, Config) {
	const proto = "SPDY/3.1+portforward.k8s.io"
	serverConn := make(chan net.Conn, 1)
	up := websocket.Upgrader{Subprotocols: []string{proto}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		serverConn <- &wsNetConn{Conn: c}
	}))
	defer srv.Close()
	c := Config{Upgrade: "websocket", Protocol: proto}
	p := startTee(t, srv.Listener.Addr().String(), true, c)
	d := websocket.Dialer{Subprotocols: []string{proto}}
	cc, _, err := d.Dial("ws://"+p.addr+"/api/v1/namespaces/ns/pods/p/portforward", nil)
	if err != nil {
		t.Fatal(err)
	}
	sc := <-serverConn
	defer sc.Close()
	portForwardSession(t, &wsNetConn{Conn: cc}, sc)
	sc.Close()
	p.wait(t)
	return p, c
}

func TestSPDYTunnelPortForward(t *testing.T) {
	p, c := tunnelPortForwardSession(t)
	checkSession(t, c, p, portForwardEvents)
}

// spdyControl builds a control frame.
func spdyControl(typ uint16, flags byte, payload []byte) []byte {
	f := binary.BigEndian.AppendUint32(nil, 0x80030000|uint32(typ))
	f = binary.BigEndian.AppendUint32(f, uint32(flags)<<24|uint32(len(payload)))
	return append(f, payload...)
}

func spdyData(id uint32, flags byte, payload []byte) []byte {
	f := binary.BigEndian.AppendUint32(nil, id)
	f = binary.BigEndian.AppendUint32(f, uint32(flags)<<24|uint32(len(payload)))
	return append(f, payload...)
}

// headerCompressor compresses one direction's header blocks as SPDY does.
type headerCompressor struct {
	buf bytes.Buffer
	zw  *zlib.Writer
}

func newHeaderCompressor() *headerCompressor {
	hc := &headerCompressor{}
	hc.zw, _ = zlib.NewWriterLevelDict(&hc.buf, zlib.BestCompression, headerDictionary)
	return hc
}

// block compresses name/value pairs; flush false leaves the block without
// its sync flush.
func (hc *headerCompressor) block(flush bool, kv ...string) []byte {
	var raw []byte
	raw = binary.BigEndian.AppendUint32(raw, uint32(len(kv)/2))
	for _, s := range kv {
		raw = binary.BigEndian.AppendUint32(raw, uint32(len(s)))
		raw = append(raw, s...)
	}
	hc.buf.Reset()
	hc.zw.Write(raw)
	if flush {
		hc.zw.Flush()
	}
	return bytes.Clone(hc.buf.Bytes())
}

func synStream(id uint32, flags byte, block []byte) []byte {
	p := binary.BigEndian.AppendUint32(nil, id)
	p = append(p, 0, 0, 0, 0, 0, 0)
	return spdyControl(typeSynStream, flags, append(p, block...))
}

// TestSPDYFrames covers cases spdystream does not produce.
func TestSPDYFrames(t *testing.T) {
	cat := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	type dir struct{ client, server []byte }
	tests := []struct {
		name    string
		proto   string
		build   func() dir
		want    []string
		wantErr string
	}{
		{
			name:  "data on unknown, refused and finished streams is dropped",
			proto: "v4.channel.k8s.io",
			build: func() dir {
				hc := newHeaderCompressor()
				return dir{client: cat(
					spdyData(9, 0, []byte("unknown")),
					synStream(5, 0, hc.block(true, "streamtype", "stdin")),
					synStream(3, 0, hc.block(true, "streamtype", "stdin")), // lower ID: refused
					spdyData(3, 0, []byte("refused")),
					spdyData(5, flagFin, []byte("last")),
					spdyData(5, 0, []byte("after fin")),
				)}
			},
			want: []string{`client stdin "last"`, `client close stdin`},
		},
		{
			name:  "multi-valued, upper-case and duplicate headers",
			proto: "v4.channel.k8s.io",
			build: func() dir {
				hc := newHeaderCompressor()
				return dir{
					client: cat(synStream(1, flagFin, hc.block(true, "x", "y", "StreamType", "stdout\x00stdin", "streamtype", "stderr"))),
					server: spdyData(1, flagFin, []byte("out")),
				}
			},
			want: []string{`stdout "out"`, `close stdout`},
		},
		{
			name:  "unidirectional stream, reset",
			proto: "v4.channel.k8s.io",
			build: func() dir {
				hc := newHeaderCompressor()
				return dir{
					client: cat(
						synStream(1, flagUnidirectional, hc.block(true, "streamtype", "stdin")),
						spdyData(1, 0, []byte("in")),
						spdyControl(typeRstStream, 0, []byte{0, 0, 0, 1, 0, 0, 0, 5}),
						spdyData(1, 0, []byte("gone")),
					),
				}
			},
			want: []string{`client stdin "in"`, `client close stdin`},
		},
		{
			name:  "error stream of an old protocol is text",
			proto: "v2.channel.k8s.io",
			build: func() dir {
				hc := newHeaderCompressor()
				return dir{
					client: synStream(1, 0, hc.block(true, "streamtype", "error")),
					server: cat(spdyData(1, 0, []byte("command terminated")), spdyData(1, flagFin, nil)),
				}
			},
			want: []string{`error "command terminated"`},
		},
		{
			name:  "unfinished status flushed at FIN",
			proto: "v4.channel.k8s.io",
			build: func() dir {
				hc := newHeaderCompressor()
				return dir{
					client: synStream(1, 0, hc.block(true, "streamtype", "error")),
					server: cat(spdyData(1, 0, []byte(`{"status":"Succ`)), spdyData(1, flagFin, nil)),
				}
			},
			want: []string{`error "{\"status\":\"Succ"`},
		},
		{
			name:  "control frames with no events",
			proto: "v4.channel.k8s.io",
			build: func() dir {
				return dir{
					client: cat(spdyControl(typeSettings, 0, []byte{0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0, 100}), spdyControl(typePing, 0, []byte{0, 0, 0, 1})),
					server: cat(spdyControl(typeWindowUpdate, 0, make([]byte, 8)), spdyControl(typeGoAway, 0, make([]byte, 8))),
				}
			},
		},
		{name: "unknown control frame", proto: "v4.channel.k8s.io", build: func() dir { return dir{server: spdyControl(5, 0, nil)} }, wantErr: "unknown control frame type 5"},
		{name: "control frame too long", proto: "v4.channel.k8s.io", build: func() dir { return dir{server: spdyControl(typeHeaders, 0, make([]byte, MaxControlFrame+1))} }, wantErr: "limit exceeded"},
		{name: "data on stream 0", proto: "v4.channel.k8s.io", build: func() dir { return dir{server: spdyData(0, 0, nil)} }, wantErr: "stream 0"},
		{name: "short SYN_STREAM", proto: "v4.channel.k8s.io", build: func() dir { return dir{client: spdyControl(typeSynStream, 0, make([]byte, 9))} }, wantErr: "SYN_STREAM of 9 bytes"},
		{name: "long RST_STREAM", proto: "v4.channel.k8s.io", build: func() dir { return dir{client: spdyControl(typeRstStream, 0, make([]byte, 12))} }, wantErr: "RST_STREAM of 12 bytes"},
		{name: "bad SETTINGS count", proto: "v4.channel.k8s.io", build: func() dir {
			return dir{client: spdyControl(typeSettings, 0, []byte{0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0})}
		}, wantErr: "SETTINGS of 12 bytes"},
		{name: "uncompressed headers", proto: "v4.channel.k8s.io", build: func() dir { return dir{client: synStream(1, 0, []byte{0, 0, 0, 0})} }, wantErr: "header compression"},
		{
			name:  "header block not flushed",
			proto: "v4.channel.k8s.io",
			build: func() dir {
				hc := newHeaderCompressor()
				return dir{client: synStream(1, 0, hc.block(false, "streamtype", "stdin"))}
			},
			wantErr: "truncated or not flushed",
		},
		{
			name:  "header field too long",
			proto: "v4.channel.k8s.io",
			build: func() dir {
				hc := newHeaderCompressor()
				return dir{client: synStream(1, 0, hc.block(true, "streamtype", strings.Repeat("x", MaxHeaderBlock)))}
			},
			wantErr: "limit exceeded",
		},
		{
			name:  "too many pairs",
			proto: "v4.channel.k8s.io",
			build: func() dir {
				hc := newHeaderCompressor()
				kv := make([]string, 2*(MaxHeaders+1))
				return dir{client: synStream(1, 0, hc.block(true, kv...))}
			},
			wantErr: "1001 pairs",
		},
		{
			name:  "stream zero",
			proto: "v4.channel.k8s.io",
			build: func() dir {
				hc := newHeaderCompressor()
				return dir{client: synStream(0, 0, hc.block(true, "streamtype", "stdin"))}
			},
			wantErr: "SYN_STREAM for stream 0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.build()
			c := Config{Upgrade: "SPDY/3.1", Protocol: tt.proto}
			chunks := []chunk{{true, d.client}, {false, d.server}}
			for name, split := range map[string]func([]byte) [][]byte{"whole": whole, "bytewise": bytewise} {
				got, err := replay(t, c, chunks, split)
				if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
					t.Errorf("%s: Err() = %v, want %q", name, err, tt.wantErr)
				}
				compare(t, name, got, tt.want)
			}
		})
	}
}

func TestSPDYStreamLimit(t *testing.T) {
	hc := newHeaderCompressor()
	var client []byte
	for i := range MaxStreams + 1 {
		client = append(client, synStream(uint32(2*i+1), 0, hc.block(true, "streamtype", "stdin"))...)
	}
	_, err := replay(t, Config{Upgrade: "SPDY/3.1", Protocol: "v4.channel.k8s.io"}, []chunk{{true, client}}, whole)
	if err == nil || !strings.Contains(err.Error(), "1024 open streams") {
		t.Errorf("Err() = %v, want the stream limit", err)
	}
}
