package testhost

import (
	"os"
	"time"
)

// Terminate asks a process to stop with sig and waits for exited (closed
// or sent to when the process has been waited for); after grace it kills
// the process and waits again.
func Terminate[T any](p *os.Process, sig os.Signal, exited <-chan T, grace time.Duration) {
	_ = p.Signal(sig)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = p.Kill()
		<-exited
	}
}
