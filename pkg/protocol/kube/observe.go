package kube

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/sluice-gate/sluice/pkg/policy"
	"github.com/sluice-gate/sluice/pkg/protocol"
	"github.com/sluice-gate/sluice/pkg/protocol/httpproxy"
	"github.com/sluice-gate/sluice/pkg/protocol/kube/remotecmd"
	"github.com/sluice-gate/sluice/pkg/record"
)

// observe records an exec, attach or port-forward session: the terminal
// stream both ways, resizes, and the exit status.
func observe(op policy.Operation, resp *http.Response, rec protocol.Recording) httpproxy.Observer {
	sub, _ := op.Fields["subresource"].(string)
	if sub != "exec" && sub != "attach" && sub != "portforward" {
		return nil
	}
	upgrade := resp.Header.Get("Upgrade")
	proto := resp.Header.Get("Sec-WebSocket-Protocol")
	if strings.HasPrefix(strings.ToLower(upgrade), "spdy/") {
		proto = resp.Header.Get("X-Stream-Protocol-Version")
	}
	o := &streamObserver{rec: rec}
	ob, err := remotecmd.New(remotecmd.Config{Upgrade: upgrade, Protocol: proto, PortForward: sub == "portforward", Emit: o.emit})
	if err != nil {
		_ = rec.Note(fmt.Sprintf("%s stream (%s %s) relayed but not recorded: %v", sub, upgrade, proto, err))
		return nil
	}
	o.ob = ob
	_ = rec.Note(fmt.Sprintf("%s stream started (%s, %s)", sub, upgrade, orDefault(proto)))
	return o
}

func orDefault(p string) string {
	if p == "" {
		return "channel.k8s.io"
	}
	return p
}

// streamObserver turns remotecmd events into recording records.
type streamObserver struct {
	ob  *remotecmd.Observer
	rec protocol.Recording

	// mu guards the fields below (Emit is never concurrent, Close may
	// race with it).
	mu       sync.Mutex
	exited   bool
	code     int
	message  string
	errors   []string
	carry    [2][]byte // an incomplete UTF-8 sequence, per direction
	recorded int64
}

func (o *streamObserver) FromClient(p []byte) { o.ob.FromClient(p) }
func (o *streamObserver) FromServer(p []byte) { o.ob.FromServer(p) }

func (o *streamObserver) emit(ev remotecmd.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch ev.Kind {
	case remotecmd.Stdin:
		o.stream(record.DirInput, 0, ev.Data)
	case remotecmd.Stdout, remotecmd.Stderr:
		o.stream(record.DirOutput, 1, ev.Data)
	case remotecmd.PortData:
		dir, i := record.DirOutput, 1
		if ev.FromClient {
			dir, i = record.DirInput, 0
		}
		o.stream(dir, i, ev.Data)
	case remotecmd.Resize:
		_ = o.rec.Note(fmt.Sprintf("terminal resized to %dx%d", ev.Width, ev.Height))
	case remotecmd.Exit:
		o.exited, o.code, o.message = true, ev.ExitCode, ev.Message
	case remotecmd.Error:
		if len(o.errors) < 8 {
			o.errors = append(o.errors, ev.Message)
		}
	}
}

// stream records data, keeping a UTF-8 sequence split across chunks
// whole (the record stores text).
func (o *streamObserver) stream(dir string, i int, data []byte) {
	b := append(o.carry[i], data...)
	cut := len(b)
	for k := 1; k <= utf8.UTFMax-1 && k <= len(b); k++ {
		c := b[len(b)-k]
		if c < utf8.RuneSelf {
			break
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(b[len(b)-k:]) {
				cut = len(b) - k
			}
			break
		}
	}
	if cut > 0 {
		o.recorded += int64(cut)
		_ = o.rec.Stream(dir, b[:cut])
	}
	// b may share the carry's array: keep the tail only after b is
	// recorded.
	o.carry[i] = append(o.carry[i][:0], b[cut:]...)
}

func (o *streamObserver) Close(res *record.Result) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, c := range o.carry {
		if len(c) > 0 {
			dir := record.DirOutput
			if i == 0 {
				dir = record.DirInput
			}
			_ = o.rec.Stream(dir, c)
		}
	}
	res.Bytes = o.recorded
	switch {
	case o.exited && o.code == 0:
		res.Tag = "exit 0"
	case o.exited:
		res.Tag = "exit " + strconv.Itoa(o.code)
		res.Error = &record.ResultError{Code: "exit " + strconv.Itoa(o.code), Message: o.message}
	case len(o.errors) > 0:
		res.Error = &record.ResultError{Code: "error", Message: strings.Join(o.errors, "; ")}
	}
	if err := o.ob.Err(); err != nil {
		_ = o.rec.Note("the stream could not be followed to its end: " + err.Error())
	}
}
