package intercept

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

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
	PID  int
	Comm string
	Exe  string
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

func inspect(proc string, o bpf.Origin) Process {
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
	p.Exe, _ = os.Readlink(filepath.Join(proc, strconv.Itoa(p.PID), "exe"))
	p.Cmdline = readCmdline(proc, p.PID)
	// Re-check: if the pid was recycled while we read, drop what we read.
	if again, err := readStat(proc, p.PID); err != nil || again.start != st.start {
		p.Exe, p.Cmdline, p.Start = "", nil, 0
		return p
	}
	p.Verified = true
	ppid := st.ppid
	for i := 0; i < maxParents && ppid > 0; i++ {
		ps, err := readStat(proc, ppid)
		if err != nil || ps.start > st.start {
			break
		}
		exe, _ := os.Readlink(filepath.Join(proc, strconv.Itoa(ppid), "exe"))
		p.Parents = append(p.Parents, Parent{PID: ppid, Comm: ps.comm, Exe: exe})
		st = ps
		ppid = ps.ppid
	}
	return p
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
	b, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "stat"))
	if err != nil {
		return stat{}, err
	}
	return parseStat(b)
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
	f, err := os.Open(filepath.Join(proc, strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return nil
	}
	defer f.Close()
	buf := make([]byte, maxCmdline)
	n, _ := f.Read(buf)
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
