package cgroup

import (
	"strings"
	"testing"
)

func TestParseMountinfo(t *testing.T) {
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{
			name: "hybrid",
			in: `30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`,
			want: "/sys/fs/cgroup/unified",
		},
		{
			name: "unified with optional fields",
			in:   "25 30 0:22 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n",
			want: "/sys/fs/cgroup",
		},
		{
			name: "escaped space",
			in:   `25 30 0:22 / /mnt/cg\040two rw - cgroup2 none rw` + "\n",
			want: "/mnt/cg two",
		},
		{
			name:    "v1 only",
			in:      "31 30 0:28 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n",
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMountinfo(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseMountinfo(%q) = %q, %v; want %q (error %v)", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseProcCgroup(t *testing.T) {
	in := "12:pids:/user.slice\n0::/sluice/job-abc\n"
	got, err := parseProcCgroup([]byte(in))
	if err != nil || got != "/sluice/job-abc" {
		t.Errorf("parseProcCgroup(%q) = %q, %v; want /sluice/job-abc", in, got, err)
	}
	if _, err := parseProcCgroup([]byte("1:name=systemd:/\n")); err == nil {
		t.Error("parseProcCgroup without a v2 line: want error")
	}
}

func TestWithin(t *testing.T) {
	tests := []struct {
		p, dir string
		want   bool
	}{
		{"/sluice/job-1", "/sluice", true},
		{"/sluice", "/sluice", true},
		{"/sluice-other/job", "/sluice", false},
		{"/", "/sluice", false},
		{"/a/sluice/job", "/sluice", false},
	}
	for _, tt := range tests {
		if got := Within(tt.p, tt.dir); got != tt.want {
			t.Errorf("Within(%q, %q) = %v, want %v", tt.p, tt.dir, got, tt.want)
		}
	}
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add("40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n")
	f.Add(`25 30 0:22 / /mnt/a\040b rw - cgroup2 none rw` + "\n")
	f.Add(" - cgroup2\n")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseMountinfo(strings.NewReader(s))
		if err == nil && got == "" {
			t.Fatalf("parseMountinfo(%q) returned an empty mount point", s)
		}
	})
}
