package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/sluice-gate/sluice/pkg/api"
	"github.com/sluice-gate/sluice/pkg/client"
)

// Exit codes besides a command's own.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
	// exitCannotExec and exitNotFound follow the shell convention.
	exitCannotExec = 126
	exitNotFound   = 127
)

// env is what commands read and write, so tests can capture it.
type env struct {
	stdout, stderr io.Writer
}

type command struct {
	name, summary string
	run           func(ctx context.Context, e env, args []string) int
}

func commands() []command {
	return []command{
		{"token", "mint a token from the embedded issuer", cmdToken},
		{"run", "enroll with a token and run a command inside a new job", cmdRun},
		{"status", "show daemon health, kernel programs, targets and jobs", cmdStatus},
		{"ca", "print the host CA certificate agents can trust", cmdCA},
		{"kubeconfig", "print a kubeconfig (no credentials) for a kubernetes target", cmdKubeconfig},
		{"approvals", "list, show, approve, deny or watch requests held for approval", cmdApprovals},
		{"sessions", "list recorded sessions", cmdSessions},
		{"replay", "show a recorded session as a transcript (or play a terminal session)", cmdReplay},
		{"verify", "check recordings' hash chains against the index", cmdVerify},
		{"export", "write a recorded session as JSON lines", cmdExport},
		{"uninstall", "detach sluice's kernel programs and remove its cgroups", cmdUninstall},
		{"version", "print the version", cmdVersion},
	}
}

// Main runs the sluice command line and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	e := env{stdout: stdout, stderr: stderr}
	if len(args) < 2 || args[1] == "help" || args[1] == "-h" || args[1] == "--help" {
		usage(e.stderr)
		if len(args) < 2 {
			return exitUsage
		}
		return exitOK
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, c := range commands() {
		if c.name == args[1] {
			return c.run(ctx, e, args[2:])
		}
	}
	fmt.Fprintf(e.stderr, "sluice: unknown command %q\n\n", args[1])
	usage(e.stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: sluice <command> [flags]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "The daemon is found at --socket or $SLUICE_SOCKET (default "+client.DefaultSocket+").")
}

// newFlags returns a flag set that reports errors on e.stderr.
func newFlags(e env, name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet("sluice "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: sluice %s %s\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

func socketFlag(fs *flag.FlagSet) *string {
	return fs.String("socket", client.SocketFromEnv(), "sluiced API socket ($SLUICE_SOCKET)")
}

// fail prints an error in the "sluice <cmd>: ..." form and returns 1.
func fail(e env, cmd string, err error) int {
	fmt.Fprintf(e.stderr, "sluice %s: %v\n", cmd, err)
	return exitFailure
}

func cmdCA(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "ca", "")
	sock := socketFlag(fs)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	pem, err := client.New(*sock).CA(ctx)
	if err != nil {
		return fail(e, "ca", err)
	}
	_, _ = e.stdout.Write(pem)
	return exitOK
}

func cmdVersion(_ context.Context, e env, _ []string) int {
	fmt.Fprintln(e.stdout, "sluice", api.Version)
	return exitOK
}
