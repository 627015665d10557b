package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// runtime stands in for a container runtime: "containers" are this
// machine. It implements remotecommand.Executor and Attacher and
// portforward.PortForwarder.
type runtime struct {
	dir string // working directory of exec'd commands
}

// ExecInContainer runs cmd as a local process. A non-zero exit comes back
// as a utilexec.ExitError, which the streaming library turns into the
// NonZeroExitCode status that kubectl reports as "command terminated with
// exit code N".
func (rt *runtime) ExecInContainer(ctx context.Context, pod, _, container string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	c := exec.CommandContext(ctx, cmd[0], cmd[1:]...)
	c.Dir = rt.dir
	c.Env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root",
		"HOSTNAME=" + pod,
		"KUBERNETES_CONTAINER=" + container,
	}
	// Bound the wait for output pipes held open by the command's own
	// background children.
	c.WaitDelay = 2 * time.Second

	var err error
	if tty {
		err = runTTY(c, in, out, resize)
	} else {
		err = runPlain(c, in, out, errOut)
	}
	return exitError(err, errOut, out, cmd[0])
}

// exitError maps the outcome of a command to what the streaming library
// understands: exit statuses as utilexec.ExitError, and a command that
// cannot be started as exit code 127 or 126 with a message on stderr (or
// stdout when there is no stderr), the way a container runtime reports it.
func exitError(err error, errOut, out io.Writer, name string) error {
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ee.Exited() {
			return utilexec.ExitErrorWrapper{ExitError: ee}
		}
		return err // killed by a signal: reported as an internal error
	}
	code := 126
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		code = 127
	}
	w := errOut
	if w == nil {
		w = out
	}
	if w != nil {
		fmt.Fprintf(w, "exec: %q: %v\r\n", name, err)
	}
	return utilexec.CodeExitError{Err: err, Code: code}
}

// runPlain runs c with separate stdin, stdout and stderr streams. Stdin is
// copied by hand so that a client that keeps stdin open does not keep the
// exec alive after the command exits.
func runPlain(c *exec.Cmd, in io.Reader, out, errOut io.Writer) error {
	if out != nil {
		c.Stdout = out
	}
	if errOut != nil {
		c.Stderr = errOut
	}
	var stdin io.WriteCloser
	if in != nil {
		var err error
		if stdin, err = c.StdinPipe(); err != nil {
			return err
		}
	}
	if err := c.Start(); err != nil {
		return err
	}
	if stdin != nil {
		go func() {
			_, _ = io.Copy(stdin, in)
			_ = stdin.Close()
		}()
	}
	return c.Wait()
}

// runTTY runs c on a new pseudo-terminal as its session leader; stdout
// carries everything the terminal prints.
func runTTY(c *exec.Cmd, in io.Reader, out io.Writer, resize <-chan remotecommand.TerminalSize) error {
	ptm, pts, err := openPTY()
	if err != nil {
		return err
	}
	defer ptm.Close()
	c.Env = append(c.Env, "TERM=xterm")
	c.Stdin, c.Stdout, c.Stderr = pts, pts, pts
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	err = c.Start()
	pts.Close() // the child has its own copy
	if err != nil {
		return err
	}
	go func() {
		for size := range resize {
			_ = unix.IoctlSetWinsize(int(ptm.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: size.Height, Col: size.Width})
		}
	}()
	if in != nil {
		go func() { _, _ = io.Copy(ptm, in) }()
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if out == nil {
			out = io.Discard
		}
		// Reading the master fails with EIO once every holder of the
		// terminal has closed it.
		_, _ = io.Copy(out, ptm)
	})
	err = c.Wait()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second): // a background child kept the terminal
	}
	return err
}

// openPTY allocates a pseudo-terminal pair from /dev/ptmx.
func openPTY() (master, slave *os.File, err error) {
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	master = os.NewFile(uintptr(fd), "/dev/ptmx")
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("unlockpt: %w", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("ptsname: %w", err)
	}
	name := "/dev/pts/" + strconv.Itoa(n)
	slave, err = os.OpenFile(name, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	return master, slave, nil
}

// AttachContainer joins the stand-in main process of every container: it
// greets, then echoes whatever arrives on stdin to stdout until stdin ends
// or the client goes away.
func (rt *runtime) AttachContainer(ctx context.Context, pod, _, container string, in io.Reader, out, _ io.WriteCloser, _ bool, _ <-chan remotecommand.TerminalSize) error {
	if out != nil {
		fmt.Fprintf(out, "attached to %s/%s\n", pod, container)
	}
	if in == nil {
		<-ctx.Done()
		return nil
	}
	if out == nil {
		_, err := io.Copy(io.Discard, in)
		return err
	}
	_, err := io.Copy(out, in)
	return err
}

// PortForward connects stream to port on this machine's loopback address.
func (rt *runtime) PortForward(ctx context.Context, _, _ string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
	if err != nil {
		return err
	}
	defer conn.Close()
	go func() {
		_, _ = io.Copy(conn, stream)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	// The forward ends when the server has said all it has to say.
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(stream, conn)
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return nil
}
