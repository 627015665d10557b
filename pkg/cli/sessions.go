package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"filippo.io/age"

	"github.com/sluice-gate/sluice/pkg/config"
	"github.com/sluice-gate/sluice/pkg/record"
	"github.com/sluice-gate/sluice/pkg/recorder"
	"github.com/sluice-gate/sluice/pkg/store"
)

// The recording commands read the index and the files directly (as root,
// or as an auditor with a copy of the state directory): no daemon needed.

func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", os.Getenv("SLUICE_CONFIG"), "sluiced configuration ($SLUICE_CONFIG; default /etc/sluice/sluice.yaml or built-in)")
}

func loadConfig(path string) (config.Config, error) {
	if path == "" {
		if _, err := os.Stat("/etc/sluice/sluice.yaml"); err == nil {
			path = "/etc/sluice/sluice.yaml"
		} else {
			return config.Default(), nil
		}
	}
	return config.Load(path)
}

func openIndex(ctx context.Context, cfgPath string) (*recorder.Index, func(), error) {
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Store.Driver == store.SQLite {
		if _, err := os.Stat(cfg.StoreDSN()); err != nil {
			return nil, nil, fmt.Errorf("no session index at %s: %w", cfg.StoreDSN(), err)
		}
	}
	st, err := store.Open(ctx, store.Config{Driver: cfg.Store.Driver, DSN: cfg.StoreDSN()})
	if err != nil {
		return nil, nil, err
	}
	return &recorder.Index{Store: st}, func() { st.Close() }, nil
}

func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want a duration (24h), a date or an RFC 3339 time", s)
}

func cmdSessions(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "sessions", "[--target T] [--sub S] [--since 24h] [--json]")
	target := fs.String("target", "", "only sessions to this target")
	sub := fs.String("sub", "", "only sessions of this token subject")
	since := fs.String("since", "", "only sessions started since (duration, date or time)")
	asJSON := fs.Bool("json", false, "JSON output")
	deleted := fs.Bool("deleted", false, "list the recordings retention deleted, and why")
	cfgPath := configFlag(fs)
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		return exitUsage
	}
	if *deleted {
		return listDeletions(ctx, e, *cfgPath, *asJSON)
	}
	t, err := parseSince(*since, time.Now())
	if err != nil {
		return fail(e, "sessions", err)
	}
	idx, done, err := openIndex(ctx, *cfgPath)
	if err != nil {
		return fail(e, "sessions", err)
	}
	defer done()
	list, err := idx.List(ctx, recorder.Filter{Target: *target, Subject: *sub, Since: t})
	if err != nil {
		return fail(e, "sessions", err)
	}
	if *asJSON {
		if list == nil {
			list = []*recorder.Entry{}
		}
		return printJSON(e, list)
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SESSION\tSTATE\tTARGET\tSUBJECT\tSTART\tDURATION\tREQUESTS\tREFUSED\tPROCESS")
	for _, s := range list {
		dur := "-"
		if s.End != nil {
			dur = s.End.Sub(s.Start).Round(time.Millisecond).String()
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", s.ID, s.State, s.Target, s.Subject,
			s.Start.Local().Format("2006-01-02 15:04:05"), dur, s.Requests, s.Refusals, s.Exe)
	}
	w.Flush()
	return exitOK
}

func listDeletions(ctx context.Context, e env, cfgPath string, asJSON bool) int {
	idx, done, err := openIndex(ctx, cfgPath)
	if err != nil {
		return fail(e, "sessions", err)
	}
	defer done()
	ds, err := idx.Deletions(ctx)
	if err != nil {
		return fail(e, "sessions", err)
	}
	if asJSON {
		return printJSON(e, ds)
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "DELETED\tSESSION\tBYTES\tLAST HASH\tREASON")
	for _, d := range ds {
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", d.At.Local().Format("2006-01-02 15:04:05"), d.Session, d.Bytes, d.LastHash, d.Reason)
	}
	w.Flush()
	return exitOK
}

// findSession looks a session up in the index.
func findSession(ctx context.Context, cfgPath, id string) (*recorder.Entry, error) {
	idx, done, err := openIndex(ctx, cfgPath)
	if err != nil {
		return nil, err
	}
	defer done()
	return idx.Get(ctx, id)
}

func loadIdentity(path string) (age.Identity, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ids, err := age.ParseIdentities(f)
	if err != nil {
		return nil, fmt.Errorf("auditor identity %s: %w", path, err)
	}
	return ids[0], nil
}

func cmdReplay(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "replay", "SESSION [--speed 1] [--rows N] [--asciicast] [--identity F]")
	speed := fs.Float64("speed", 1, "terminal sessions: playback speed factor")
	rows := fs.Int("rows", 0, "rows of each result to show (0: all recorded)")
	cast := fs.Bool("asciicast", false, "terminal sessions: write asciicast v2 instead of playing")
	idPath := fs.String("identity", "", "age identity file of the auditor, for encrypted recordings")
	cfgPath := configFlag(fs)
	id, rest, err := parseWithID(fs, args)
	if err != nil {
		return exitUsage
	}
	_ = rest
	s, err := findSession(ctx, *cfgPath, id)
	if err != nil {
		return fail(e, "replay", err)
	}
	ident, err := loadIdentity(*idPath)
	if err != nil {
		return fail(e, "replay", err)
	}
	f, err := os.Open(s.File)
	if err != nil {
		return fail(e, "replay", err)
	}
	defer f.Close()
	recs := record.Records(f, ident)
	switch {
	case *cast:
		err = record.Asciicast(e.stdout, recs)
	case terminal(s.File):
		err = record.Play(ctx, e.stdout, recs, *speed)
	default:
		err = record.Transcript(e.stdout, recs, record.TranscriptOptions{Rows: *rows})
	}
	if err != nil {
		return fail(e, "replay", err)
	}
	return exitOK
}

// terminal reports whether a recording holds a terminal stream.
func terminal(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	found := false
	stop := errors.New("stop")
	_ = record.Read(f, nil, func(r record.Record) error {
		if r.Kind == record.KindHeader {
			var h record.Header
			if r.Decode(&h) == nil && h.Terminal != nil {
				found = true
			}
			return stop
		}
		return nil
	})
	return found
}

func cmdExport(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "export", "SESSION [--identity F]")
	idPath := fs.String("identity", "", "age identity file of the auditor, for encrypted recordings")
	cfgPath := configFlag(fs)
	id, _, err := parseWithID(fs, args)
	if err != nil {
		return exitUsage
	}
	s, err := findSession(ctx, *cfgPath, id)
	if err != nil {
		return fail(e, "export", err)
	}
	ident, err := loadIdentity(*idPath)
	if err != nil {
		return fail(e, "export", err)
	}
	f, err := os.Open(s.File)
	if err != nil {
		return fail(e, "export", err)
	}
	defer f.Close()
	if err := record.Export(e.stdout, record.Records(f, ident)); err != nil {
		return fail(e, "export", err)
	}
	return exitOK
}

func cmdVerify(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "verify", "SESSION | --all")
	all := fs.Bool("all", false, "verify every session in the index")
	asJSON := fs.Bool("json", false, "JSON output")
	cfgPath := configFlag(fs)
	var ids []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return exitUsage
		}
		args = fs.Args()
		if len(args) > 0 {
			ids = append(ids, args[0])
			args = args[1:]
		}
	}
	if *all == (len(ids) > 0) {
		fs.Usage()
		return exitUsage
	}
	idx, done, err := openIndex(ctx, *cfgPath)
	if err != nil {
		return fail(e, "verify", err)
	}
	defer done()
	var entries []*recorder.Entry
	if *all {
		if entries, err = idx.List(ctx, recorder.Filter{Limit: 1 << 30}); err != nil {
			return fail(e, "verify", err)
		}
	} else {
		for _, id := range ids {
			s, err := idx.Get(ctx, id)
			if err != nil {
				return fail(e, "verify", fmt.Errorf("%s: %w", id, err))
			}
			entries = append(entries, s)
		}
	}
	bad := 0
	type out struct {
		Session  string   `json:"session"`
		OK       bool     `json:"ok"`
		State    string   `json:"state"`
		Records  int      `json:"records"`
		Problems []string `json:"problems,omitempty"`
	}
	var outs []out
	for _, s := range entries {
		rep := recorder.Verify(s)
		o := out{Session: s.ID, OK: rep.OK(), State: rep.State, Records: rep.Records}
		for _, p := range rep.Problems {
			o.Problems = append(o.Problems, p.String())
		}
		if !o.OK {
			bad++
		}
		outs = append(outs, o)
		if !*asJSON {
			fmt.Fprintf(e.stdout, "%s: %s\n", s.ID, rep.String())
			for _, p := range o.Problems {
				fmt.Fprintf(e.stdout, "  %s\n", p)
			}
		}
	}
	if *asJSON {
		printJSON(e, outs)
	}
	if bad > 0 {
		fmt.Fprintf(e.stderr, "sluice verify: %d of %d recordings failed verification\n", bad, len(entries))
		return exitFailure
	}
	return exitOK
}

// parseWithID parses flags around exactly one positional argument.
func parseWithID(fs *flag.FlagSet, args []string) (string, []string, error) {
	var pos []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return "", nil, err
		}
		args = fs.Args()
		if len(args) > 0 {
			pos = append(pos, args[0])
			args = args[1:]
		}
	}
	if len(pos) != 1 {
		fs.Usage()
		return "", nil, errors.New("want one session id")
	}
	return strings.TrimSpace(pos[0]), nil, nil
}
