package postgres

import (
	"testing"

	"github.com/sluice-gate/sluice/pkg/ca"
)

func testCA(tb testing.TB) *ca.CA {
	tb.Helper()
	c, err := ca.Load(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	return c
}
