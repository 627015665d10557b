package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sluice-gate/sluice/pkg/api"
	"github.com/sluice-gate/sluice/pkg/client"
)

func cmdToken(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "token", "--sub NAME [--groups a,b] [--ttl 15m] [--audience A]")
	sub := fs.String("sub", "", "subject (who the token is for)")
	groups := fs.String("groups", "", "comma-separated groups claim")
	ttl := fs.String("ttl", "15m", "lifetime")
	aud := fs.String("audience", "", "audience (default: the daemon's)")
	sock := socketFlag(fs)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *sub == "" || fs.NArg() != 0 {
		fs.Usage()
		return exitUsage
	}
	var gs []string
	for _, g := range strings.Split(*groups, ",") {
		if g = strings.TrimSpace(g); g != "" {
			gs = append(gs, g)
		}
	}
	r, err := client.New(*sock).Token(ctx, api.TokenRequest{Subject: *sub, Groups: gs, TTL: *ttl, Audience: *aud})
	if err != nil {
		return fail(e, "token", err)
	}
	if r.Token == "" {
		return fail(e, "token", errors.New("daemon returned no token"))
	}
	fmt.Fprintln(e.stdout, r.Token)
	return exitOK
}
