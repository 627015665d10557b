// Package tcp is the opaque protocol handler: once the gate has allowed the
// connection, bytes flow both ways unchanged. Policy sees one operation per
// connection (connect).
package tcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"

	"github.com/sluice-gate/sluice/pkg/protocol"
)

// Handler splices the client to the target.
type Handler struct{}

var _ protocol.Handler = Handler{}

// Serve dials the target and copies both directions until both are done.
// Half-closes are passed on, so request/response protocols that signal the
// end of a request with shutdown(SHUT_WR) work.
func (Handler) Serve(ctx context.Context, s *protocol.Session, client net.Conn) error {
	up, err := s.Dial(ctx)
	if err != nil {
		protocol.Reset(client)
		return fmt.Errorf("dial %s: %w", s.Target.Name, err)
	}
	defer client.Close()
	defer up.Close()

	// Unblock both copies when the daemon shuts down.
	stop := context.AfterFunc(ctx, func() {
		client.Close()
		up.Close()
	})
	defer stop()

	var wg sync.WaitGroup
	var upErr, downErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		n, err := io.Copy(up, client)
		s.BytesUp.Add(n)
		upErr = err
		closeWrite(up)
	}()
	go func() {
		defer wg.Done()
		n, err := io.Copy(client, up)
		s.BytesDown.Add(n)
		downErr = err
		closeWrite(client)
	}()
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return ignoreClosed(errors.Join(upErr, downErr))
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// ignoreClosed drops the errors a normal end of connection produces.
func ignoreClosed(err error) error {
	if err == nil || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
		return nil
	}
	var ne *net.OpError
	if errors.As(err, &ne) && (errors.Is(ne.Err, syscall.ECONNRESET) || errors.Is(ne.Err, syscall.EPIPE)) {
		return nil
	}
	return err
}
