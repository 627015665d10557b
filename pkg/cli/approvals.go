package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluice-gate/sluice/pkg/approval"
	"github.com/sluice-gate/sluice/pkg/client"
)

const approvalsUsage = `usage: sluice approvals <list|show|approve|deny|watch> --token-file F [flags]

  list [--all] [--json]          requests waiting for a decision (--all: with outcomes)
  show ID [--json]               one request in full
  approve ID [--reason R] [--window 30m]
                                 release it (--window: also the same statement by
                                 the same identity on the same target until then)
  deny ID --reason R             refuse it with a reason the agent sees
  watch [--json]                 print requests and outcomes as they happen

The token (--token-file, or $SLUICE_REVIEWER_TOKEN_FILE) says who the reviewer
is; only members of the groups a request names may decide it, never the
identity that made it.
`

// cmdApprovals is the reviewer's command line.
func cmdApprovals(ctx context.Context, e env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(e.stderr, approvalsUsage)
		return exitUsage
	}
	sub, args := args[0], args[1:]
	fs := newFlags(e, "approvals "+sub, "")
	fs.Usage = func() { fmt.Fprint(e.stderr, approvalsUsage) }
	tokenFile := fs.String("token-file", os.Getenv("SLUICE_REVIEWER_TOKEN_FILE"), "the reviewer's OIDC token")
	asJSON := fs.Bool("json", false, "JSON output")
	all := fs.Bool("all", false, "list: include decided requests")
	reason := fs.String("reason", "", "approve/deny: the reason (required to deny)")
	window := fs.String("window", "", "approve: also approve the same statement until this long from now (e.g. 30m)")
	sock := socketFlag(fs)
	// Flags may follow the ID: sluice approvals approve ID --reason R.
	var pos []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return exitUsage
		}
		args = fs.Args()
		if len(args) > 0 {
			pos = append(pos, args[0])
			args = args[1:]
		}
	}
	if *tokenFile == "" {
		fmt.Fprintln(e.stderr, "sluice approvals: --token-file is required (the reviewer's token)")
		return exitUsage
	}
	tok, err := os.ReadFile(*tokenFile)
	if err != nil {
		return fail(e, "approvals", fmt.Errorf("read token: %w", err))
	}
	c := client.New(*sock).WithToken(strings.TrimSpace(string(tok)))
	needID := func() (string, bool) {
		if len(pos) != 1 {
			fmt.Fprintf(e.stderr, "sluice approvals %s: want exactly one request ID\n", sub)
			return "", false
		}
		return pos[0], true
	}
	switch sub {
	case "list":
		status := ""
		if *all {
			status = "all"
		}
		rs, err := c.Approvals(ctx, status)
		if err != nil {
			return fail(e, "approvals", err)
		}
		if *asJSON {
			return printJSON(e, rs)
		}
		printRequests(e, rs)
	case "show":
		id, ok := needID()
		if !ok {
			return exitUsage
		}
		r, err := c.Approval(ctx, id)
		if err != nil {
			return fail(e, "approvals", err)
		}
		if *asJSON {
			return printJSON(e, r)
		}
		printRequest(e, r)
	case "approve", "deny":
		id, ok := needID()
		if !ok {
			return exitUsage
		}
		if sub == "deny" && strings.TrimSpace(*reason) == "" {
			fmt.Fprintln(e.stderr, "sluice approvals deny: --reason is required")
			return exitUsage
		}
		r, err := c.Decide(ctx, id, sub == "approve", *reason, *window)
		if err != nil {
			return fail(e, "approvals", err)
		}
		if *asJSON {
			return printJSON(e, r)
		}
		fmt.Fprintf(e.stdout, "%s %s by %s\n", r.ID, r.Status, r.DecidedBy)
	case "watch":
		err := c.WatchApprovals(ctx, func(r approval.Request) {
			if *asJSON {
				b, _ := json.Marshal(r)
				fmt.Fprintln(e.stdout, string(b))
				return
			}
			fmt.Fprintf(e.stdout, "%s %s %s %s: %s\n", time.Now().Format(time.TimeOnly), r.ID, r.Status, r.Target, oneLine(r.Operation))
		})
		if err != nil {
			return fail(e, "approvals", err)
		}
	default:
		fmt.Fprint(e.stderr, approvalsUsage)
		return exitUsage
	}
	return exitOK
}

func printJSON(e env, v any) int {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
	return exitOK
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

func printRequests(e env, rs []approval.Request) {
	if len(rs) == 0 {
		fmt.Fprintln(e.stdout, "nothing is waiting for a decision")
		return
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tSTATUS\tTARGET\tREQUESTER\tAGE\tOPERATION")
	for _, r := range rs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Status, r.Target, r.Requester,
			time.Since(r.Created).Round(time.Second), oneLine(r.Operation))
	}
	w.Flush()
}

func printRequest(e env, r approval.Request) {
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "id\t%s\nstatus\t%s\ntarget\t%s (%s)\nrequester\t%s (%s)\njob\t%s\n", r.ID, r.Status, r.Target, r.Protocol, r.Requester, r.Issuer, r.Job)
	fmt.Fprintf(w, "created\t%s\ndeadline\t%s\nreason\t%s\nreviewers\t%s\n", r.Created.Format(time.RFC3339), r.Deadline.Format(time.RFC3339), r.Reason, strings.Join(r.Reviewers, ", "))
	if p, ok := r.Detail["process"].(map[string]any); ok {
		fmt.Fprintf(w, "process\tpid %v uid %v %v\n", p["pid"], p["uid"], p["exe"])
		if cl, ok := p["cmdline"].([]any); ok {
			parts := make([]string, len(cl))
			for i, a := range cl {
				parts[i] = fmt.Sprint(a)
			}
			fmt.Fprintf(w, "command\t%s\n", strings.Join(parts, " "))
		}
	}
	if r.DecidedBy != "" {
		fmt.Fprintf(w, "decided\t%s by %s: %s\n", r.Status, r.DecidedBy, r.OutcomeReason)
	}
	w.Flush()
	fmt.Fprintf(e.stdout, "\n%s\n", r.Operation)
}
