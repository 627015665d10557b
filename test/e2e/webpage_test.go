package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sluice-gate/sluice/test/testenv"
)

// TestApprovalWebPage: a reviewer in a real (headless) Chromium logs in
// with a token, sees the held statement with the process that sent it,
// clicks Approve, and the held psql finishes.
func TestApprovalWebPage(t *testing.T) {
	testenv.Command(t, "chromium")
	a := newApprovalsDaemon(t, "15m")
	table := fmt.Sprintf("page_%d", time.Now().UnixNano())
	sql := "CREATE TABLE " + table + " (i int)"
	id, cmd, out := a.heldPsql(t, sql)
	token := readFile(t, a.alice)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath()),
		chromedp.NoSandbox,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()

	// The browser lives as long as the first Run's context: no timeout
	// on that one.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	page := fmt.Sprintf("http://127.0.0.1:%d/approvals/", a.apiPort)
	card := fmt.Sprintf(`article[data-id=%q]`, id)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	if err := chromedp.Do(ctx,
		chromedp.Navigate(page),
		chromedp.WaitVisible(css(`[data-testid="token"]`)),
		chromedp.SendKeys(css(`[data-testid="token"]`), token),
		chromedp.Click(css(`[data-testid="login"]`)),
		chromedp.WaitVisible(css(card)),
	); err != nil {
		t.Fatalf("log in and find the request: %v", err)
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(css(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return v
	}
	who, operation, process := text(`[data-testid="who"]`), text(card+" .operation"), text(card+" .process")
	if !strings.Contains(who, "alice") || operation != sql || !strings.Contains(process, "bin/psql") {
		t.Errorf("page shows who %q, operation %q, process %q", who, operation, process)
	}
	if err := chromedp.Do(ctx, chromedp.Click(css(card+" button.approve"))); err != nil {
		t.Fatalf("click approve: %v", err)
	}
	if code := waitExit(t, cmd); code != 0 {
		t.Fatalf("psql after approval in the page: exit %d: %s", code, out)
	}
	// The page updates by itself: the request moves to the outcomes.
	recent := `[data-testid="recent"] ` + card
	if err := chromedp.Do(ctx, chromedp.WaitVisible(css(recent))); err != nil {
		t.Fatalf("page did not update: %v", err)
	}
	if outcome := text(recent + " .outcome"); !strings.Contains(outcome, "approved by alice") {
		t.Errorf("outcome on the page: %q", outcome)
	}
	if n, _ := a.pw.pg.PsqlAs("sluice_app", "shop", "SELECT count(*) FROM pg_class WHERE relname = '"+table+"'"); n != "1" {
		t.Errorf("table approved in the page exists %s times", n)
	}
}

func chromiumPath() string {
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "chromium"
}
