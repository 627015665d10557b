// Package testdaemon runs a private sluiced from built binaries for the
// end-to-end tests, the benchmark and the demo: start it on a
// configuration file, wait until its API answers, run the sluice CLI
// against it, stop or kill it, and uninstall what it left in the kernel.
package testdaemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/sluice-gate/sluice/pkg/client"
	"github.com/sluice-gate/sluice/test/testhost"
)

// Daemon is a running (or stopped) sluiced.
type Daemon struct {
	// Bin holds sluiced and sluice.
	Bin        string
	ConfigPath string
	Socket     string
	Logs       *LogBuffer

	cmd    *exec.Cmd
	exited chan error
}

// New describes a daemon; Start runs it.
func New(bin, configPath, socket string) *Daemon {
	return &Daemon{Bin: bin, ConfigPath: configPath, Socket: socket, Logs: &LogBuffer{}}
}

// Start runs sluiced and waits until its API answers. The daemon dies with
// the calling process (PDEATHSIG).
func (d *Daemon) Start() error {
	cmd := exec.Command(filepath.Join(d.Bin, "sluiced"), "--config", d.ConfigPath)
	cmd.Stdout, cmd.Stderr = d.Logs, d.Logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	d.cmd = cmd
	d.exited = make(chan error, 1)
	go func(ch chan error) { ch <- cmd.Wait() }(d.exited)
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := client.New(d.Socket).Status(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case werr := <-d.exited:
			d.cmd = nil
			return fmt.Errorf("sluiced exited during start-up: %v", werr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sluiced not ready: %v", err)
		}
	}
}

// Pid is the daemon's process id (0 when it is not running).
func (d *Daemon) Pid() int {
	if d.cmd == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

// Running reports whether the daemon process is up.
func (d *Daemon) Running() bool { return d.cmd != nil }

// Signal sends sig to the daemon.
func (d *Daemon) Signal(sig os.Signal) error {
	if d.cmd == nil {
		return errors.New("sluiced is not running")
	}
	return d.cmd.Process.Signal(sig)
}

// Kill ends the daemon with SIGKILL: no clean-up on its side.
func (d *Daemon) Kill() {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.exited
	d.cmd = nil
}

// Stop ends the daemon with SIGTERM and waits for it.
func (d *Daemon) Stop() {
	if d.cmd == nil {
		return
	}
	testhost.Terminate(d.cmd.Process, syscall.SIGTERM, d.exited, 10*time.Second)
	d.cmd = nil
}

// Uninstall detaches the daemon's programs and removes its cgroups.
func (d *Daemon) Uninstall() (string, error) {
	out, err := exec.Command(filepath.Join(d.Bin, "sluice"), "uninstall", "--config", d.ConfigPath).CombinedOutput()
	return string(out), err
}

// Sluice runs the CLI against the daemon. err is set only when the CLI
// could not be run at all; a failing command is a non-zero code.
func (d *Daemon) Sluice(args ...string) (stdout, stderr string, code int, err error) {
	cmd := exec.Command(filepath.Join(d.Bin, "sluice"), args...)
	cmd.Env = append(os.Environ(), "SLUICE_SOCKET="+d.Socket)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if rerr := cmd.Run(); rerr != nil {
		var ee *exec.ExitError
		if !errors.As(rerr, &ee) {
			return "", "", -1, rerr
		}
		code = ee.ExitCode()
	}
	return o.String(), e.String(), code, nil
}

// LogBuffer collects the daemon's output; exec writes to it from its own
// goroutine while callers read.
type LogBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// FreePort returns a TCP port free on both 127.0.0.1 and ::1 right now.
func FreePort() (int, error) {
	for i := 0; i < 50; i++ {
		l4, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l4.Addr().(*net.TCPAddr).Port
		l6, err := net.Listen("tcp6", fmt.Sprintf("[::1]:%d", port))
		l4.Close()
		if err == nil {
			l6.Close()
			return port, nil
		}
	}
	return 0, errors.New("no port free on both loopback addresses")
}
