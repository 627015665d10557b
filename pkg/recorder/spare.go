package recorder

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
)

// spares keeps empty recording files created ahead of need. Creating a
// file is the dearest step of opening a session (an inode allocation: a
// quarter of a millisecond on a virtual disk), renaming one is a tenth of
// that; so a goroutine creates files while connections are idle, and
// Start takes one when there is one.
type spares struct {
	dir   string // under the recordings dir: same file system, so rename works
	files chan *os.File
}

// spareCount is how many files wait: a burst larger than that creates
// files inline.
const spareCount = 32

func newSpares(recordings string) (*spares, error) {
	dir := filepath.Join(recordings, ".spare")
	// Files left by an earlier run were never used: empty, never indexed.
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("clear spare recordings: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create spare recordings dir: %w", err)
	}
	return &spares{dir: dir, files: make(chan *os.File, spareCount)}, nil
}

// take returns a spare file, or nil when none is ready.
func (s *spares) take() *os.File {
	select {
	case f := <-s.files:
		return f
	default:
		return nil
	}
}

// fill keeps the pool full until ctx ends, then removes what is left.
func (s *spares) fill(ctx context.Context) error {
	defer s.drain()
	for {
		f, err := s.create()
		if err != nil {
			return err
		}
		select {
		case s.files <- f:
		case <-ctx.Done():
			f.Close()
			os.Remove(f.Name())
			return nil
		}
	}
}

func (s *spares) create() (*os.File, error) {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	f, err := os.OpenFile(filepath.Join(s.dir, hex.EncodeToString(b)), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create spare recording: %w", err)
	}
	return f, nil
}

func (s *spares) drain() {
	for {
		select {
		case f := <-s.files:
			f.Close()
			os.Remove(f.Name())
		default:
			return
		}
	}
}
