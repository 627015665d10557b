package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluice-gate/sluice/pkg/api"
	"github.com/sluice-gate/sluice/pkg/client"
)

func cmdStatus(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "status", "[--json]")
	asJSON := fs.Bool("json", false, "print the full status as JSON")
	sock := socketFlag(fs)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	st, err := client.New(*sock).Status(ctx)
	if err != nil {
		return fail(e, "status", err)
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(st)
		return exitOK
	}
	printStatus(e, st, time.Now())
	return exitOK
}

func printStatus(e env, st api.Status, now time.Time) {
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	defer w.Flush()
	fmt.Fprintf(w, "sluiced %s\tpid %d, up %s\n", st.Version, st.PID, now.Sub(st.Started).Round(time.Second))
	fmt.Fprintf(w, "config\t%s\n", st.Config)
	if st.ReloadError != "" {
		fmt.Fprintf(w, "last reload\tFAILED: %s\n", st.ReloadError)
	}
	fmt.Fprintf(w, "policy\t%s (revision %s)\n", st.Policy.Source, st.Policy.Revision)
	fmt.Fprintf(w, "proxy\t%s\n", strings.Join(st.Proxy, " "))
	fmt.Fprintf(w, "issuer\t%s\n", st.Issuer)
	if len(st.Issuers) > 1 {
		fmt.Fprintf(w, "external issuers\t%s\n", strings.Join(st.Issuers[1:], " "))
	}
	fmt.Fprintf(w, "agents cgroup\t%s\n", st.Cgroup)
	fmt.Fprintf(w, "dns\t%s\n", strings.Join(st.DNS, " "))

	var missing []string
	for _, f := range st.Features {
		if !f.Available {
			missing = append(missing, f.Name)
		}
	}
	if len(missing) == 0 {
		fmt.Fprintf(w, "kernel features\tall %d present\n", len(st.Features))
	} else {
		fmt.Fprintf(w, "kernel features\tmissing: %s\n", strings.Join(missing, ", "))
	}
	var progs []string
	for _, p := range st.Programs {
		progs = append(progs, fmt.Sprintf("%s(link %d)", p.Program, p.LinkID))
	}
	fmt.Fprintf(w, "programs\t%d attached, pinned in %s\n", len(st.Programs), st.PinDir)
	fmt.Fprintf(w, "\t%s\n", strings.Join(progs, " "))
	k := st.Kernel
	fmt.Fprintf(w, "kernel counters\tredirected %d, udp allowed %d, udp denied %d, sockets denied %d\n",
		k.Redirected, k.UDPAllowed, k.UDPDenied, k.SockDenied)

	fmt.Fprintf(w, "\ntargets (%d)\n", len(st.Targets))
	for _, t := range st.Targets {
		fmt.Fprintf(w, "  %s\t%s\t%s\n", t.Name, t.Address, t.Protocol)
	}
	fmt.Fprintf(w, "\njobs (%d)\n", len(st.Jobs))
	for _, j := range st.Jobs {
		exp := "expires in " + j.Expiry.Sub(now).Round(time.Second).String()
		if j.Expired {
			exp = "EXPIRED"
		}
		fmt.Fprintf(w, "  %s\t%s\tgroups=%s\tpid %d\t%d procs\t%s\n", j.ID, j.Subject, strings.Join(j.Groups, ","), j.PID, j.Procs, exp)
	}
}
