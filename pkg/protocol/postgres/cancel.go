package postgres

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
)

// cancelKey is what the agent received in BackendKeyData.
type cancelKey struct {
	pid    uint32
	secret [4]byte
}

// cancelTarget is where a cancel request for a key goes.
type cancelTarget struct {
	job    string
	pid    uint32 // upstream backend pid
	secret []byte // upstream key
	// dial opens a connection to the upstream server.
	send func(pid uint32, secret []byte) error
	// hold, when set, refuses the request being held for approval.
	hold func()
}

// cancels maps the keys sluice gave agents to the upstream keys. The
// agent never learns the upstream key, so it cannot cancel other sessions
// on the server by guessing; it can only cancel its own.
type cancels struct {
	// mu guards m.
	mu sync.Mutex
	m  map[cancelKey]*cancelTarget
}

func newCancels() *cancels { return &cancels{m: map[cancelKey]*cancelTarget{}} }

// add registers t under a fresh key and returns it.
func (c *cancels) add(pid uint32, t *cancelTarget) cancelKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		var k cancelKey
		k.pid = pid
		_, _ = rand.Read(k.secret[:])
		if _, dup := c.m[k]; !dup && binary.BigEndian.Uint32(k.secret[:]) != 0 {
			c.m[k] = t
			return k
		}
	}
}

func (c *cancels) remove(k cancelKey) {
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}

func (c *cancels) lookup(pid uint32, secret []byte) (*cancelTarget, bool) {
	if len(secret) != 4 {
		return nil, false
	}
	var k cancelKey
	k.pid = pid
	copy(k.secret[:], secret)
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.m[k]
	return t, ok
}
