package intercept

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sluice-gate/sluice/pkg/bpf"
)

// Process describes the process that connected.
type Process struct {
	PID, TID int
	UID, GID int
	// Comm is the kernel's task name at connect time.
	Comm string
	// Exe, Cmdline and Parents come from /proc at accept time, and only
	// when Verified: the pid still names the process that connected.
	Exe      string
	Cmdline  []string
	Start    time.Duration // since boot
	Verified bool
	Parents  []Parent
}

// Parent is one ancestor.
type Parent struct {
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
	Exe  string `json:"exe"`
}

// Limits on what is read from /proc.
const (
	maxParents    = 16
	maxCmdline    = 8 << 10
	maxCmdlineArg = 256
)

// userHZ is the unit of /proc/<pid>/stat times. It is 100 on every Linux
// architecture sluice supports (USER_HZ, not CONFIG_HZ).
const userHZ = 100

// JobRoot is what is known about the first process of a job: its pid and
// start time, and its ancestors as they were at enrollment (the runner
// that launched the job, outside the job).
type JobRoot struct {
	PID       int           `json:"pid"`
	Start     time.Duration `json:"start_ns"`
	Ancestors []Parent      `json:"ancestors"`
}

func inspect(proc string, o bpf.Origin, root *JobRoot) Process {
	p := Process{
		PID: int(o.PID), TID: int(o.TID),
		UID: int(o.UID), GID: int(o.GID),
		Comm: o.Comm,
	}
	st, err := readStat(proc, p.PID)
	if err != nil {
		return p
	}
	// The process must have started before it called connect(); a later
	// start means the pid was reused and /proc describes someone else.
	if st.start > o.Connected+time.Second/userHZ {
		return p
	}
	p.Start = st.start
	p.Exe = readLink(filepath.Join(proc, strconv.Itoa(p.PID), "exe"))
	p.Cmdline = readCmdline(proc, p.PID)
	// Re-check: if the pid was recycled while we read, drop what we read.
	if again, err := readStat(proc, p.PID); err != nil || again.start != st.start {
		p.Exe, p.Cmdline, p.Start = "", nil, 0
		return p
	}
	p.Verified = true
	p.Parents = walk(proc, p.PID, st, root)
	return p
}

// walk lists the ancestors of pid (whose stat is st), nearest first. Inside
// a job it reads /proc; once it reaches the job's root process it appends
// the root's ancestors recorded at enrollment instead of reading them again
// for every connection.
func walk(proc string, pid int, st stat, root *JobRoot) []Parent {
	var out []Parent
	if root != nil && pid == root.PID && st.start == root.Start {
		return append(out, root.Ancestors...)
	}
	ppid := st.ppid
	for i := 0; i < maxParents && ppid > 0; i++ {
		ps, err := readStat(proc, ppid)
		if err != nil || ps.start > st.start {
			break
		}
		exe := readLink(filepath.Join(proc, strconv.Itoa(ppid), "exe"))
		out = append(out, Parent{PID: ppid, Comm: ps.comm, Exe: exe})
		if root != nil && ppid == root.PID && ps.start == root.Start {
			return append(out, root.Ancestors...)
		}
		st = ps
		ppid = ps.ppid
	}
	return out
}

// Ancestors reads a live process's start time and ancestors, for
// enrollment (JobRoot).
func Ancestors(proc string, pid int) (JobRoot, error) {
	if proc == "" {
		proc = "/proc"
	}
	st, err := readStat(proc, pid)
	if err != nil {
		return JobRoot{}, err
	}
	return JobRoot{PID: pid, Start: st.start, Ancestors: walk(proc, pid, st, nil)}, nil
}

type stat struct {
	comm  string
	ppid  int
	start time.Duration
}

// readStat parses /proc/<pid>/stat (proc(5)). comm is in parentheses and
// may itself contain spaces and parentheses, so fields are counted from the
// last ')'.
func readStat(proc string, pid int) (stat, error) {
	var buf [1024]byte
	n, err := readSmall(filepath.Join(proc, strconv.Itoa(pid), "stat"), buf[:])
	if err != nil {
		return stat{}, err
	}
	return parseStat(buf[:n])
}

// readSmall reads up to len(buf) bytes of a procfs file with plain
// syscalls: this runs for every accepted connection, and os.File's poller
// registration would double the syscalls for files that never block.
func readSmall(path string, buf []byte) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	total := 0
	for total < len(buf) {
		n, err := unix.Read(fd, buf[total:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return total, err
		}
		if n == 0 {
			break
		}
		total += n
	}
	return total, nil
}

// readLink reads a symlink such as /proc/<pid>/exe.
func readLink(path string) string {
	var buf [unix.PathMax]byte
	n, err := unix.Readlink(path, buf[:])
	if err != nil || n <= 0 {
		return ""
	}
	return string(buf[:n])
}

func parseStat(b []byte) (stat, error) {
	open := bytes.IndexByte(b, '(')
	closing := bytes.LastIndexByte(b, ')')
	if open < 0 || closing < open {
		return stat{}, errors.New("malformed stat: no comm")
	}
	fields := strings.Fields(string(b[closing+1:]))
	// fields[0] is field 3 (state); ppid is field 4, starttime field 22.
	if len(fields) < 20 {
		return stat{}, fmt.Errorf("malformed stat: %d fields after comm", len(fields))
	}
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		return stat{}, fmt.Errorf("malformed stat ppid: %w", err)
	}
	ticks, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return stat{}, fmt.Errorf("malformed stat starttime: %w", err)
	}
	return stat{
		comm:  string(b[open+1 : closing]),
		ppid:  ppid,
		start: time.Duration(ticks) * (time.Second / userHZ),
	}, nil
}

func readCmdline(proc string, pid int) []string {
	buf := make([]byte, maxCmdline)
	n, _ := readSmall(filepath.Join(proc, strconv.Itoa(pid), "cmdline"), buf)
	return splitCmdline(buf[:n])
}

func splitCmdline(b []byte) []string {
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil
	}
	parts := bytes.Split(b, []byte{0})
	out := make([]string, 0, len(parts))
	for _, a := range parts {
		if len(a) > maxCmdlineArg {
			a = append(a[:maxCmdlineArg:maxCmdlineArg], "…"...)
		}
		out = append(out, string(a))
	}
	return out
}
