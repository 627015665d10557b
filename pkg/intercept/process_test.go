package intercept

import (
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/sluice-gate/sluice/pkg/bpf"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		in       string
		comm     string
		ppid     int
		start    time.Duration
		wantFail bool
	}{
		{"42 (curl) S 41 42 41 0 -1 4194560 105 0 0 0 0 0 0 0 20 0 1 0 1234 10000 200 0 0", "curl", 41, 12340 * time.Millisecond, false},
		{"7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0", "a (b) c", 1, 50 * time.Millisecond, false},
		{"7 curl S 1", "", 0, 0, true},
		{"7 (x) S 1 2 3", "", 0, 0, true},
		{"7 (x) S notanumber 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5", "", 0, 0, true},
	}
	for _, tt := range tests {
		got, err := parseStat([]byte(tt.in))
		if tt.wantFail {
			if err == nil {
				t.Errorf("parseStat(%q) = %+v, want error", tt.in, got)
			}
			continue
		}
		if err != nil || got.comm != tt.comm || got.ppid != tt.ppid || got.start != tt.start {
			t.Errorf("parseStat(%q) = %+v, %v; want comm %q ppid %d start %v", tt.in, got, err, tt.comm, tt.ppid, tt.start)
		}
	}
}

func TestSplitCmdline(t *testing.T) {
	got := splitCmdline([]byte("curl\x00-s\x00http://x/\x00"))
	want := []string{"curl", "-s", "http://x/"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("splitCmdline = %q, want %q", got, want)
	}
	if got := splitCmdline(nil); got != nil {
		t.Errorf("splitCmdline(nil) = %q, want nil", got)
	}
}

func TestInspectSelf(t *testing.T) {
	pid := os.Getpid()
	p := inspect("/proc", bpf.Origin{PID: uint32(pid), Connected: bootTime(), Comm: "x"}, nil)
	if !p.Verified {
		t.Fatalf("inspect(self) not verified: %+v", p)
	}
	exe, _ := os.Executable()
	if p.Exe != exe {
		t.Errorf("inspect(self).Exe = %q, want %q", p.Exe, exe)
	}
	if len(p.Cmdline) == 0 || len(p.Parents) == 0 || p.Parents[0].PID != os.Getppid() {
		t.Errorf("inspect(self) = %+v: want cmdline and parent %d", p, os.Getppid())
	}
	// A connect() that happened before the process started means the
	// pid was reused: nothing from /proc may be trusted.
	p = inspect("/proc", bpf.Origin{PID: uint32(pid), Connected: time.Millisecond}, nil)
	if p.Verified || p.Exe != "" || p.Cmdline != nil {
		t.Errorf("inspect with connect before start = %+v, want unverified", p)
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("42 (curl) S 41 42 41 0 -1 4194560 105 0 0 0 0 0 0 0 20 0 1 0 1234 10000 200 0 0"))
	f.Add([]byte("1 ()) R"))
	f.Add([]byte(")("))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseStat(b)
		if err == nil && st.start < 0 {
			t.Fatalf("parseStat(%q) = negative start %v", b, st.start)
		}
	})
}

// BenchmarkInspect is the /proc work done for every accepted connection.
func BenchmarkInspect(b *testing.B) {
	o := bpf.Origin{PID: uint32(os.Getpid()), Connected: bootTime()}
	b.ReportAllocs()
	for b.Loop() {
		if p := inspect("/proc", o, nil); !p.Verified {
			b.Fatal("not verified")
		}
	}
}

// TestInspectJobRoot: above the job root, ancestors come from the record
// made at enrollment, not from /proc.
func TestInspectJobRoot(t *testing.T) {
	root, err := Ancestors("/proc", os.Getppid())
	if err != nil {
		t.Fatal(err)
	}
	root.Ancestors = []Parent{{PID: 1, Comm: "recorded-at-enrollment"}}
	p := inspect("/proc", bpf.Origin{PID: uint32(os.Getpid()), Connected: bootTime()}, &root)
	if len(p.Parents) != 2 || p.Parents[0].PID != os.Getppid() || p.Parents[1].Comm != "recorded-at-enrollment" {
		t.Fatalf("parents = %+v, want the parent then the recorded ancestry", p.Parents)
	}
	// The root itself connecting: only the recorded ancestry.
	self, _ := Ancestors("/proc", os.Getpid())
	self.Ancestors = root.Ancestors
	p = inspect("/proc", bpf.Origin{PID: uint32(os.Getpid()), Connected: bootTime()}, &self)
	if len(p.Parents) != 1 || p.Parents[0].Comm != "recorded-at-enrollment" {
		t.Fatalf("root's parents = %+v, want the recorded ancestry", p.Parents)
	}
}
