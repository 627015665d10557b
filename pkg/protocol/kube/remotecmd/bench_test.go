package remotecmd

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"testing"
)

// benchObserve feeds stream to a new Observer in 32 KiB reads, as the
// proxy's copy loop would, b.N times, and checks that all of want's data
// bytes came out.
func benchObserve(b *testing.B, c Config, fromClient bool, setup, stream []byte, want int) {
	var got int
	c.Emit = func(e Event) { got += len(e.Data) }
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		got = 0
		o, err := New(c)
		if err != nil {
			b.Fatal(err)
		}
		o.FromClient(setup)
		feed := o.FromServer
		if fromClient {
			feed = o.FromClient
		}
		for p := stream; len(p) > 0; {
			n := min(len(p), 32<<10)
			feed(p[:n])
			p = p[n:]
		}
		if err := o.Err(); err != nil || got != want {
			b.Fatalf("%d data bytes, %v; want %d", got, err, want)
		}
	}
}

const benchSize = 16 << 20

// wsStream is benchSize bytes of data on one channel, in messages of
// msgSize bytes.
func wsStream(ch byte, masked, b64 bool, msgSize int) (stream []byte, data int) {
	payload := pattern(msgSize, 5)
	m := append([]byte{ch}, payload...)
	op := byte(opBinary)
	if b64 {
		m = append([]byte{'0' + ch}, base64.StdEncoding.EncodeToString(payload)...)
		op = opText
	}
	f := wsFrame(true, op, masked, m)
	n := benchSize / len(f)
	return bytes.Repeat(f, n), n * msgSize
}

func BenchmarkWebSocketStdout(b *testing.B) {
	for _, size := range []int{1 << 10, 32 << 10, 1 << 20} {
		b.Run(byteSize(size), func(b *testing.B) {
			stream, want := wsStream(1, false, false, size)
			benchObserve(b, Config{Upgrade: "websocket", Protocol: "v5.channel.k8s.io"}, false, nil, stream, want)
		})
	}
}

func BenchmarkWebSocketStdinMasked(b *testing.B) {
	stream, want := wsStream(0, true, false, 32<<10)
	benchObserve(b, Config{Upgrade: "websocket", Protocol: "v5.channel.k8s.io"}, true, nil, stream, want)
}

func BenchmarkWebSocketBase64Stdout(b *testing.B) {
	stream, want := wsStream(1, false, true, 32<<10)
	benchObserve(b, Config{Upgrade: "websocket", Protocol: "v4.base64.channel.k8s.io"}, false, nil, stream, want)
}

func BenchmarkSPDYStdout(b *testing.B) {
	for _, size := range []int{1 << 10, 32 << 10, 1 << 20} {
		b.Run(byteSize(size), func(b *testing.B) {
			hc := newHeaderCompressor()
			setup := synStream(1, 0, hc.block(true, "streamtype", "stdout"))
			f := spdyData(1, 0, pattern(size, 6))
			n := benchSize / len(f)
			benchObserve(b, Config{Upgrade: "SPDY/3.1", Protocol: "v4.channel.k8s.io"}, false, setup, bytes.Repeat(f, n), n*size)
		})
	}
}

func byteSize(n int) string {
	switch {
	case n >= 1<<20:
		return strconv.Itoa(n>>20) + "MiB"
	case n >= 1<<10:
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}
