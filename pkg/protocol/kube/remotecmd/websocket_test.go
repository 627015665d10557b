package remotecmd

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// exitStatus is what kubelet writes on the error channel for "exit 3".
const exitStatus = `{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}`

// wsPeer speaks the Kubernetes channel protocol over a gorilla
// connection, binary or base64.
type wsPeer struct {
	t   *testing.T
	c   *websocket.Conn
	b64 bool
}

func (p wsPeer) send(ch byte, data []byte) {
	p.t.Helper()
	var err error
	if p.b64 {
		err = p.c.WriteMessage(websocket.TextMessage, append([]byte{'0' + ch}, base64.StdEncoding.EncodeToString(data)...))
	} else {
		err = p.c.WriteMessage(websocket.BinaryMessage, append([]byte{ch}, data...))
	}
	if err != nil {
		p.t.Error(err)
	}
}

// sendFragmented sends one message large enough to need several frames,
// with a ping after the first ones.
func (p wsPeer) sendFragmented(ch byte, data []byte) {
	p.t.Helper()
	typ, msg := websocket.BinaryMessage, append([]byte{ch}, data...)
	if p.b64 {
		typ, msg = websocket.TextMessage, append([]byte{'0' + ch}, base64.StdEncoding.EncodeToString(data)...)
	}
	w, err := p.c.NextWriter(typ)
	if err != nil {
		p.t.Fatal(err)
	}
	half := max(len(msg)-1000, len(msg)/2)
	if _, err := w.Write(msg[:half]); err != nil {
		p.t.Fatal(err)
	}
	if err := p.c.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(5*time.Second)); err != nil {
		p.t.Fatal(err)
	}
	if _, err := w.Write(msg[half:]); err != nil {
		p.t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		p.t.Fatal(err)
	}
}

func (p wsPeer) recv() (byte, []byte) {
	p.t.Helper()
	_, m, err := p.c.ReadMessage()
	if err != nil {
		p.t.Fatalf("read: %v", err)
	}
	if len(m) == 0 {
		p.t.Fatal("empty message")
	}
	if !p.b64 {
		return m[0], m[1:]
	}
	d, err := base64.StdEncoding.DecodeString(string(m[1:]))
	if err != nil {
		p.t.Fatal(err)
	}
	return m[0] - '0', d
}

func (p wsPeer) expect(ch byte, data []byte) {
	p.t.Helper()
	gotCh, got := p.recv()
	if gotCh != ch || !bytes.Equal(got, data) {
		p.t.Fatalf("recv() = %d %q, want %d %q", gotCh, trim(got), ch, trim(data))
	}
}

func trim(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}

// drain reads until the connection fails, answering the close handshake.
func drain(c *websocket.Conn) {
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return
		}
	}
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
	}
	return b
}

// wsExecCase is one subprotocol's exec session.
type wsExecCase struct {
	proto      string
	b64, close bool
	status     string // what the server writes on the error channel
	wantExit   string
}

var wsExecCases = []wsExecCase{
	{"v5.channel.k8s.io", false, true, exitStatus, `exit 3 "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3"`},
	{"v4.channel.k8s.io", false, false, `{"metadata":{},"status":"Success"}`, `exit 0 ""`},
	{"v4.base64.channel.k8s.io", true, false, exitStatus, `exit 3 "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3"`},
	{"channel.k8s.io", false, false, "command terminated with non-zero exit code: exit 3", `error "command terminated with non-zero exit code: exit 3"`},
	{"base64.channel.k8s.io", true, false, "boom", `error "boom"`},
}

// wsExecSession runs an exec session between a gorilla client and a
// gorilla server playing kubelet, through a tee: stdin, stdout, stderr,
// resize, a big stdout and a big stdin sent as several frames with a ping
// among them, the v5 close signal and the exit status. It returns the tee
// and the events the session should give.
func wsExecSession(t *testing.T, tt wsExecCase, big int) (*tee, Config, []string) {
	bigOut, bigIn := pattern(big, 1), pattern(big, 2)
	up := websocket.Upgrader{Subprotocols: []string{tt.proto}, WriteBufferSize: 1 << 18}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		p := wsPeer{t, c, tt.b64}
		p.send(1, nil) // kubelet's "connection established"
		p.expect(0, []byte("hello\n"))
		p.send(1, []byte("hello\n"))
		p.send(2, []byte("warn\n"))
		p.expect(4, []byte(`{"Width":80,"Height":24}`))
		p.sendFragmented(1, bigOut)
		p.expect(0, bigIn)
		p.send(1, []byte("got it\n"))
		if tt.close {
			if _, m, err := c.ReadMessage(); err != nil || !bytes.Equal(m, []byte{255, 0}) {
				t.Errorf("close signal: %x, %v", m, err)
			}
		}
		p.send(3, []byte(tt.status))
		_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(5*time.Second))
		drain(c)
	}))
	defer srv.Close()
	c := Config{Upgrade: "websocket", Protocol: tt.proto}
	p := startTee(t, srv.Listener.Addr().String(), true, c)

	d := websocket.Dialer{Subprotocols: []string{tt.proto}, WriteBufferSize: 1 << 17}
	conn, resp, err := d.Dial("ws://"+p.addr+"/api/v1/namespaces/ns/pods/p/exec", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != tt.proto {
		t.Fatalf("negotiated %q, want %q", got, tt.proto)
	}
	cl := wsPeer{t, conn, tt.b64}
	cl.expect(1, nil)
	cl.send(0, []byte("hello\n"))
	cl.expect(1, []byte("hello\n"))
	cl.expect(2, []byte("warn\n"))
	cl.send(4, []byte(`{"Width":80,"Height":24}`))
	cl.expect(1, bigOut)
	cl.sendFragmented(0, bigIn)
	cl.expect(1, []byte("got it\n"))
	if tt.close {
		if err := conn.WriteMessage(websocket.BinaryMessage, []byte{255, 0}); err != nil {
			t.Fatal(err)
		}
	}
	cl.expect(3, []byte(tt.status))
	drain(conn)
	conn.Close()
	p.wait(t)

	want := []string{
		`client stdin "hello\n"`,
		`stdout "hello\n"`,
		`stderr "warn\n"`,
		`client resize 80x24`,
		describe(Event{Kind: Stdout, Data: bigOut}),
		describe(Event{Kind: Stdin, FromClient: true, Data: bigIn}),
		`stdout "got it\n"`,
	}
	if tt.close {
		want = append(want, `client close stdin`)
	}
	return p, c, append(want, tt.wantExit)
}

func TestWebSocketExec(t *testing.T) {
	for _, tt := range wsExecCases {
		t.Run(tt.proto, func(t *testing.T) {
			p, c, want := wsExecSession(t, tt, 300_000)
			checkSession(t, c, p, want)

			// The session is only worth its name if gorilla really framed
			// it that way.
			var cb, sb []byte
			for _, ch := range p.chunks {
				if ch.fromClient {
					cb = append(cb, ch.b...)
				} else {
					sb = append(sb, ch.b...)
				}
			}
			wantFrames := map[string][]string{
				"client": {"len16", "len64", "cont", "ping", "pong", "close"},
				"server": {"len64", "cont", "ping", "pong", "close"},
			}
			for side, stats := range map[string]map[string]int{"client": frameStats(cb), "server": frameStats(sb)} {
				for _, k := range wantFrames[side] {
					if stats[k] == 0 {
						t.Errorf("%s sent no %s frame: %v", side, k, stats)
					}
				}
			}
		})
	}
}

// frameStats counts the frame kinds in one direction's bytes.
func frameStats(b []byte) map[string]int {
	m := map[string]int{}
	for len(b) >= 2 {
		n, h := uint64(b[1]&0x7f), uint64(2)
		switch n {
		case 126:
			n, h = uint64(binary.BigEndian.Uint16(b[2:])), 4
			m["len16"]++
		case 127:
			n, h = binary.BigEndian.Uint64(b[2:]), 10
			m["len64"]++
		}
		if b[1]&0x80 != 0 {
			h += 4
		}
		m[map[byte]string{0: "cont", 1: "text", 2: "bin", 8: "close", 9: "ping", 10: "pong"}[b[0]&0xf]]++
		if uint64(len(b)) < h+n {
			break
		}
		b = b[h+n:]
	}
	return m
}

// wsPortForwardSession forwards one port over v4.channel.k8s.io: the
// server names each channel's port in its first two bytes.
func wsPortForwardSession(t *testing.T) (*tee, Config, []string) {
	const proto = "v4.channel.k8s.io"
	up := websocket.Upgrader{Subprotocols: []string{proto}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		p := wsPeer{t, c, false}
		port := binary.LittleEndian.AppendUint16(nil, 8080)
		p.send(0, port)
		p.send(1, port)
		p.expect(0, []byte("GET / HTTP/1.1\r\n\r\n"))
		p.send(0, []byte("HTTP/1.1 200 OK\r\n\r\n"))
		p.send(1, []byte("connection reset by peer"))
		_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(5*time.Second))
		drain(c)
	}))
	defer srv.Close()
	c := Config{Upgrade: "websocket", Protocol: proto, PortForward: true}
	p := startTee(t, srv.Listener.Addr().String(), true, c)
	d := websocket.Dialer{Subprotocols: []string{proto}}
	conn, _, err := d.Dial("ws://"+p.addr+"/api/v1/namespaces/ns/pods/p/portforward?ports=8080", nil)
	if err != nil {
		t.Fatal(err)
	}
	cl := wsPeer{t, conn, false}
	cl.expect(0, []byte{0x90, 0x1f})
	cl.expect(1, []byte{0x90, 0x1f})
	cl.send(0, []byte("GET / HTTP/1.1\r\n\r\n"))
	cl.expect(0, []byte("HTTP/1.1 200 OK\r\n\r\n"))
	cl.expect(1, []byte("connection reset by peer"))
	drain(conn)
	conn.Close()
	p.wait(t)
	return p, c, []string{
		`client portdata port=8080 "GET / HTTP/1.1\r\n\r\n"`,
		`portdata port=8080 "HTTP/1.1 200 OK\r\n\r\n"`,
		`error port=8080 "connection reset by peer"`,
	}
}

func TestWebSocketPortForward(t *testing.T) {
	p, c, want := wsPortForwardSession(t)
	checkSession(t, c, p, want)
}

// wsFrame builds one frame. Masked frames use a fixed key.
func wsFrame(fin bool, op byte, masked bool, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	f := []byte{b0}
	var mb byte
	if masked {
		mb = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		f = append(f, mb|byte(n))
	case n <= 0xffff:
		f = append(f, mb|126)
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	default:
		f = append(f, mb|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	if !masked {
		return append(f, payload...)
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	f = append(f, key[:]...)
	for i, c := range payload {
		f = append(f, c^key[i&3])
	}
	return f
}

func msg(ch byte, s string) []byte { return append([]byte{ch}, s...) }

// TestWebSocketFrames covers framing cases the gorilla sessions do not
// produce, fed as a client byte stream then a server byte stream.
func TestWebSocketFrames(t *testing.T) {
	cat := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	tests := []struct {
		name           string
		proto          string
		portForward    bool
		client, server []byte
		want           []string
		wantErr        string // in the error, "" for none
	}{
		{
			name:   "fragment with empty first frame",
			proto:  "v4.channel.k8s.io",
			client: cat(wsFrame(false, opBinary, true, nil), wsFrame(false, opContinuation, true, []byte{0}), wsFrame(true, opContinuation, true, []byte("ls\n"))),
			want:   []string{`client stdin "ls\n"`},
		},
		{
			name:   "empty messages and unknown channels are skipped",
			proto:  "v4.channel.k8s.io",
			client: cat(wsFrame(true, opBinary, true, nil), wsFrame(true, opBinary, true, msg(7, "x")), wsFrame(true, opBinary, true, msg(1, "not read"))),
			server: cat(wsFrame(true, opBinary, false, msg(0, "not read")), wsFrame(true, opBinary, false, msg(2, "e"))),
			want:   []string{`stderr "e"`},
		},
		{
			name:   "control frames between fragments",
			proto:  "v4.channel.k8s.io",
			server: cat(wsFrame(false, opText, false, msg(1, "a")), wsFrame(true, opPing, false, []byte("p")), wsFrame(true, opPong, false, nil), wsFrame(true, opContinuation, false, []byte("b"))),
			want:   []string{`stdout "ab"`},
		},
		{
			name:   "nothing after close",
			proto:  "v4.channel.k8s.io",
			server: cat(wsFrame(true, opBinary, false, msg(1, "a")), wsFrame(true, opClose, false, []byte{3, 232}), wsFrame(true, opBinary, false, msg(1, "b")), []byte{0xff, 0xff}),
			want:   []string{`stdout "a"`},
		},
		{
			name:   "resize split over messages, several in one",
			proto:  "v5.channel.k8s.io",
			client: cat(wsFrame(true, opBinary, true, msg(4, `{"Width":1`)), wsFrame(true, opBinary, true, msg(4, `00,"Height":5} {"Width":2,"Height":3}`))),
			want:   []string{`client resize 100x5`, `client resize 2x3`},
		},
		{
			name:   "bad resize stops resizes",
			proto:  "v5.channel.k8s.io",
			client: cat(wsFrame(true, opBinary, true, msg(4, `{"Width":70000}`)), wsFrame(true, opBinary, true, msg(4, `{"Width":1,"Height":1}`)), wsFrame(true, opBinary, true, msg(0, "x"))),
			want:   []string{`client error "resize stream: json: cannot unmarshal number 70000 into Go struct field terminalSize.Width of type uint16"`, `client stdin "x"`},
		},
		{
			name:   "status split over messages",
			proto:  "v4.channel.k8s.io",
			server: cat(wsFrame(true, opBinary, false, msg(3, `{"status":`)), wsFrame(true, opBinary, false, msg(3, `"Success"}`))),
			want:   []string{`exit 0 ""`},
		},
		{
			name:   "text on a v4 error channel",
			proto:  "v4.channel.k8s.io",
			server: cat(wsFrame(true, opBinary, false, msg(3, "  oops")), wsFrame(true, opBinary, false, msg(3, " ")), wsFrame(true, opBinary, false, msg(3, `{"status":"Success"} `))),
			want:   []string{`error "  oops"`, `exit 0 ""`},
		},
		{
			name:        "port named after data",
			proto:       "v4.base64.channel.k8s.io",
			client:      wsFrame(true, opText, true, []byte("0"+base64.StdEncoding.EncodeToString([]byte("early")))),
			server:      cat(wsFrame(true, opText, false, []byte("0"+base64.StdEncoding.EncodeToString([]byte{0x50, 0, 'h', 'i'})))),
			want:        []string{`client portdata "early"`, `portdata port=80 "hi"`},
			portForward: true,
		},
		{
			name:   "base64 with line breaks",
			proto:  "base64.channel.k8s.io",
			server: wsFrame(true, opText, false, []byte("1aGVs\r\nbG8=")),
			want:   []string{`stdout "hello"`},
		},
		{name: "reserved bits", proto: "v4.channel.k8s.io", server: []byte{0xc2, 0}, wantErr: "reserved bits 0x40"},
		{name: "reserved opcode", proto: "v4.channel.k8s.io", server: []byte{0x83, 0}, wantErr: "reserved opcode 0x3"},
		{name: "fragmented ping", proto: "v4.channel.k8s.io", server: []byte{0x09, 0}, wantErr: "fragmented control frame"},
		{name: "long ping", proto: "v4.channel.k8s.io", server: []byte{0x89, 126, 0, 126}, wantErr: "limit exceeded"},
		{name: "stray continuation", proto: "v4.channel.k8s.io", server: []byte{0x80, 0}, wantErr: "continuation frame outside"},
		{name: "message inside message", proto: "v4.channel.k8s.io", server: []byte{0x02, 0, 0x82, 0}, wantErr: "new message inside"},
		{name: "64-bit length top bit", proto: "v4.channel.k8s.io", server: []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}, wantErr: "top bit"},
		{name: "bad base64", proto: "v4.base64.channel.k8s.io", server: wsFrame(true, opText, false, []byte("1a*==")), wantErr: "base64"},
		{name: "base64 after padding", proto: "v4.base64.channel.k8s.io", server: cat(wsFrame(false, opText, false, []byte("1aA==")), wsFrame(true, opContinuation, false, []byte("aGVs"))), wantErr: "after padding",
			want: []string{`stdout "h"`}}, // the server drops the whole message: the error says the record is wrong
		{name: "base64 stray bytes", proto: "v4.base64.channel.k8s.io", server: wsFrame(true, opText, false, []byte("1aGVsb")), wantErr: "stray", want: []string{`stdout "hel"`}},
		{name: "long close signal", proto: "v5.channel.k8s.io", client: wsFrame(true, opBinary, true, []byte{255, 0, 1}), wantErr: "more than one channel"},
		{name: "empty close signal", proto: "v5.channel.k8s.io", client: wsFrame(true, opBinary, true, []byte{255}), wantErr: "names no channel"},
		{name: "close signal unknown channel", proto: "v5.channel.k8s.io", client: wsFrame(true, opBinary, true, []byte{255, 9}), wantErr: "unknown channel 9"},
		{name: "text in tunnel", proto: "SPDY/3.1+portforward.k8s.io", client: wsFrame(true, opText, true, []byte("x")), wantErr: "text message in a SPDY tunnel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Upgrade: "websocket", Protocol: tt.proto, PortForward: tt.portForward}
			chunks := []chunk{{true, tt.client}, {false, tt.server}}
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

// TestWebSocketErrorStopsOneDirection checks that a bad server stream
// stops only the server side, and says where.
func TestWebSocketErrorStopsOneDirection(t *testing.T) {
	ev := &events{}
	o, err := New(Config{Upgrade: "websocket", Protocol: "v4.channel.k8s.io", Emit: ev.add})
	if err != nil {
		t.Fatal(err)
	}
	o.FromServer(wsFrame(true, opBinary, false, msg(1, "ok")))
	o.FromServer([]byte{0x8f, 0})
	o.FromServer(wsFrame(true, opBinary, false, msg(1, "ignored")))
	o.FromClient(wsFrame(true, opBinary, true, msg(0, "still seen")))
	compare(t, "events", ev.strings(), []string{`stdout "ok"`, `client stdin "still seen"`})
	var pe *ParseError
	if !errors.As(o.Err(), &pe) || pe.FromClient || pe.Offset != 7 {
		t.Errorf("Err() = %#v, want server ParseError at offset 7", o.Err())
	}
}

func TestUnmask(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	for pos := range 4 {
		for n := range 40 {
			src := pattern(n, 9)
			want := make([]byte, n)
			for i := range src {
				want[i] = src[i] ^ key[(pos+i)&3]
			}
			got := make([]byte, n)
			if end := unmask(got, src, key, pos); end != (pos+n)&3 || !bytes.Equal(got, want) {
				t.Fatalf("unmask(%d bytes, pos %d) = %x, %d, want %x, %d", n, pos, got, end, want, (pos+n)&3)
			}
		}
	}
}
