package record

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func sshHeader() Header {
	h := pgHeader()
	h.Session = "s-0002"
	h.Protocol = "ssh"
	h.Target = Target{Name: "bastion", Address: "198.18.0.9:22"}
	h.Process = Process{PID: 5151, UID: 1001, Exe: "/usr/bin/ssh", Comm: "ssh", Cmdline: []string{"ssh", "bastion"}}
	h.Terminal = &Terminal{Width: 120, Height: 40, Term: "xterm-256color"}
	return h
}

func terminalSession() []entry {
	out := func(gap time.Duration, s string) entry {
		return entry{gap, KindStream, Stream{Dir: DirOutput, Data: s}, false}
	}
	in := func(gap time.Duration, s string) entry {
		return entry{gap, KindStream, Stream{Dir: DirInput, Data: s}, false}
	}
	return []entry{
		out(300*time.Millisecond, "Welcome to bastion\r\n$ "),
		in(1500*time.Millisecond, "l"),
		out(0, "l"),
		in(120*time.Millisecond, "s\r"),
		out(0, "s\r\n"),
		out(10*time.Millisecond, "\x1b[1;34mlogs\x1b[0m  <notes> & \"todo\"\r\n$ "),
		{time.Second, KindNote, Note{Text: "resized"}, false},
		in(time.Hour, "exit\r"),
		out(0, "exit\r\nlogout\r\n"),
	}
}

func TestAsciicastGolden(t *testing.T) {
	path, _ := writeSession(t, sshHeader(), terminalSession(), Options{}, false)
	var out bytes.Buffer
	if err := Asciicast(&out, Records(bytes.NewReader(mustRead(t, path)), nil)); err != nil {
		t.Fatal(err)
	}
	golden(t, "session.cast.golden", out.Bytes())
}

func TestAsciicastErrors(t *testing.T) {
	id := auditor(t)
	path, _ := writeSession(t, sshHeader(), terminalSession(), Options{Recipient: id.Recipient()}, false)
	b := mustRead(t, path)
	if err := Asciicast(io.Discard, Records(bytes.NewReader(b), nil)); !errors.Is(err, ErrEncrypted) {
		t.Errorf("Asciicast(encrypted, no identity) = %v, want ErrEncrypted", err)
	}
	if err := Asciicast(io.Discard, Records(bytes.NewReader(b), id)); err != nil {
		t.Errorf("Asciicast(encrypted, identity) = %v, want nil", err)
	}
	recs := readAll(t, b, id)
	if err := Asciicast(io.Discard, seqOf(recs[1:])); err == nil {
		t.Error("Asciicast(no header) = nil, want error")
	}
	if err := Asciicast(io.Discard, seqOf(nil)); err == nil {
		t.Error("Asciicast(nothing) = nil, want error")
	}
}

func TestPlay(t *testing.T) {
	path, _ := writeSession(t, sshHeader(), terminalSession(), Options{}, false)
	recs := readAll(t, mustRead(t, path), nil)
	want := "Welcome to bastion\r\n$ ls\r\n\x1b[1;34mlogs\x1b[0m  <notes> & \"todo\"\r\n$ exit\r\nlogout\r\n"

	// Recorded gaps: 1.5s, 0.12s, 0.01s, and an hour capped at MaxGap:
	// about 3.6s of playback, 3.6ms at 1000x.
	var out bytes.Buffer
	start := time.Now()
	if err := Play(context.Background(), &out, seqOf(recs), 1000); err != nil {
		t.Fatal(err)
	}
	if out.String() != want {
		t.Errorf("Play() wrote %q, want %q", out.String(), want)
	}
	if d := time.Since(start); d < 3*time.Millisecond || d > 2*time.Second {
		t.Errorf("Play(1000x) took %v, want about 3.6ms (the hour-long gap capped at %v)", d, MaxGap)
	}

	for _, speed := range []float64{0, -1} {
		if err := Play(context.Background(), io.Discard, seqOf(recs), speed); err == nil {
			t.Errorf("Play(speed %v) = nil, want error", speed)
		}
	}
}

func TestPlayCancel(t *testing.T) {
	path, _ := writeSession(t, sshHeader(), terminalSession(), Options{}, false)
	recs := readAll(t, mustRead(t, path), nil)
	ctx, cancel := context.WithCancel(context.Background())
	w := &cancelWriter{cancel: cancel}
	done := make(chan error, 1)
	go func() { done <- Play(ctx, w, seqOf(recs), 1) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Play(cancelled) = %v, want nil", err)
		}
		if !strings.HasPrefix(w.String(), "Welcome") || strings.Contains(w.String(), "logout") {
			t.Errorf("Play(cancelled) wrote %q, want only the first chunk", w.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Play did not return after cancellation")
	}
}

// cancelWriter cancels playback once the first chunk is written.
type cancelWriter struct {
	buf    bytes.Buffer
	cancel func()
}

func (w *cancelWriter) Write(p []byte) (int, error) {
	defer w.cancel()
	return w.buf.Write(p)
}

func (w *cancelWriter) String() string { return w.buf.String() }
