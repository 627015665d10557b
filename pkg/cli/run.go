package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sluice-gate/sluice/pkg/client"
)

// credential is who the job runs as after enrollment.
type credential struct {
	uid, gid uint32
	groups   []uint32
	name     string
	home     string
}

func lookupUser(name string) (*credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if id, aerr := strconv.Atoi(name); aerr == nil {
			u, err = user.LookupId(strconv.Itoa(id))
		}
		if err != nil {
			return nil, fmt.Errorf("unknown user %q", name)
		}
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %q: uid %q", name, u.Uid)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %q: gid %q", name, u.Gid)
	}
	c := &credential{uid: uint32(uid), gid: uint32(gid), name: u.Username, home: u.HomeDir}
	ids, err := u.GroupIds()
	if err != nil {
		ids = []string{u.Gid}
	}
	for _, s := range ids {
		if g, err := strconv.ParseUint(s, 10, 32); err == nil {
			c.groups = append(c.groups, uint32(g))
		}
	}
	return c, nil
}

// cmdRun enrolls the current process into a new job cgroup and execs CMD
// in it, so CMD and all its children are the job. Exec, not fork: the exit
// status the caller sees is CMD's own.
func cmdRun(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "run", "--token-file F [--user U] -- CMD [ARGS...]")
	tokenFile := fs.String("token-file", "", "file holding the job's OIDC token")
	userName := fs.String("user", "", "run CMD as this user (with no_new_privs)")
	sock := socketFlag(fs)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	argv := fs.Args()
	if *tokenFile == "" || len(argv) == 0 {
		fs.Usage()
		return exitUsage
	}
	tok, err := os.ReadFile(*tokenFile)
	if err != nil {
		return fail(e, "run", fmt.Errorf("read token: %w", err))
	}
	var cred *credential
	if *userName != "" {
		if cred, err = lookupUser(*userName); err != nil {
			return fail(e, "run", err)
		}
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		fmt.Fprintf(e.stderr, "sluice run: %s: command not found\n", argv[0])
		return exitNotFound
	}

	// From here the process is the job: enroll moves it into the job
	// cgroup, and everything it starts stays there.
	r, err := client.New(*sock).Enroll(ctx, strings.TrimSpace(string(tok)))
	if err != nil {
		return fail(e, "run", fmt.Errorf("enrollment refused: %w", err))
	}

	envv := append(os.Environ(), "SLUICE_JOB="+r.Job)
	if r.CABundle != "" {
		// Unmodified clients trust sluice's certificates for the targets:
		// OpenSSL and Go (SSL_CERT_FILE), curl, Python requests, Node, git.
		for _, k := range []string{"SSL_CERT_FILE", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "GIT_SSL_CAINFO"} {
			envv = setEnv(envv, k, r.CABundle)
		}
	}
	runtime.LockOSThread()
	if err := dropNetRaw(); err != nil {
		return fail(e, "run", err)
	}
	if cred != nil {
		envv = setEnv(envv, "USER", cred.name)
		envv = setEnv(envv, "LOGNAME", cred.name)
		envv = setEnv(envv, "HOME", cred.home)
		if err := dropPrivileges(cred); err != nil {
			return fail(e, "run", err)
		}
	}
	// no_new_privs: setuid binaries and file capabilities cannot give the
	// job back what --user took away. It is per thread and survives exec,
	// so it is set on the (locked) thread that calls execve.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fail(e, "run", fmt.Errorf("set no_new_privs: %w", err))
	}
	err = syscall.Exec(path, argv, envv)
	fmt.Fprintf(e.stderr, "sluice run: exec %s: %v\n", path, err)
	if errors.Is(err, syscall.ENOENT) {
		return exitNotFound
	}
	return exitCannotExec
}

func dropPrivileges(c *credential) error {
	groups := make([]int, 0, len(c.groups))
	for _, g := range c.groups {
		groups = append(groups, int(g))
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(int(c.gid)); err != nil {
		return fmt.Errorf("setgid %d: %w", c.gid, err)
	}
	if err := syscall.Setuid(int(c.uid)); err != nil {
		return fmt.Errorf("setuid %d: %w", c.uid, err)
	}
	return nil
}

// dropNetRaw removes CAP_NET_RAW from the (locked) thread that will exec
// the job: from the bounding set, so nothing in the job can regain it, and
// from the current sets. The kernel's cgroup sock_create hook only sees
// inet sockets; without CAP_NET_RAW even a root job cannot open AF_PACKET
// sockets, and raw inet sockets are refused twice over.
func dropNetRaw() error {
	if err := unix.Prctl(unix.PR_CAPBSET_DROP, unix.CAP_NET_RAW, 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("drop CAP_NET_RAW from the bounding set: %w", err)
	}
	_ = unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_LOWER, unix.CAP_NET_RAW, 0, 0)
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	bit := uint32(1) << (unix.CAP_NET_RAW % 32)
	i := unix.CAP_NET_RAW / 32
	data[i].Effective &^= bit
	data[i].Permitted &^= bit
	data[i].Inheritable &^= bit
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

func setEnv(env []string, key, val string) []string {
	prefix := key + "="
	out := env[:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, prefix) {
			out = append(out, kv)
		}
	}
	return append(out, prefix+val)
}
