package mask

import (
	"fmt"
	"sync"
)

// maxCached bounds each of a Cache's maps; a full map starts over.
const maxCached = 256

// Cache compiles the mask rules of policy decisions, once per distinct
// set. A decision served from a policy session's cache carries the same
// rules slice every time, so the slice's address finds the compiled
// Masker without reading the rules (no allocation on the per-request
// path); other slices are compared by their text. It is safe for
// concurrent use.
type Cache struct {
	key []byte

	mu     sync.Mutex
	byText map[string]*Masker
	// byAddr is keyed by the first rule of a slice: holding the key keeps
	// the slice alive, so its address cannot be reused for other rules.
	byAddr map[*map[string]any]*Masker
}

// NewCache returns a Cache that compiles with key (see New).
func NewCache(key []byte) *Cache {
	return &Cache{key: key, byText: map[string]*Masker{}, byAddr: map[*map[string]any]*Masker{}}
}

// Masker returns the compiled Masker for a decision's rules, or nil when
// there are none. Rules are checked as ParseRules checks them.
func (c *Cache) Masker(list []map[string]any) (*Masker, error) {
	if len(list) == 0 {
		return nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if m, ok := c.byAddr[&list[0]]; ok {
		return m, nil
	}
	text := fmt.Sprint(list)
	m, ok := c.byText[text]
	if !ok {
		rules, err := ParseRules(list)
		if err != nil {
			return nil, err
		}
		if m, err = New(rules, c.key); err != nil {
			return nil, err
		}
		if len(c.byText) >= maxCached {
			clear(c.byText)
		}
		c.byText[text] = m
	}
	if len(c.byAddr) >= maxCached {
		clear(c.byAddr)
	}
	c.byAddr[&list[0]] = m
	return m, nil
}
