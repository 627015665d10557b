package mask

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// MaxPathName is the longest member name a path rule can hold, in bytes.
// A longer name matches only wildcards, so a walker that meets a longer
// key need not decode it: see PathWalker.EnterMember.
const MaxPathName = maxPattern

// pathStep is one step of a compiled path.
type pathStep struct {
	name string
	any  bool  // wildcard: any member or element
	deep bool  // after "..": any number of steps may come first
	last bool  // the path's last step: a value reached through it is covered
	path int32 // index in Masker.paths
}

// pathRule is a compiled Rule.Path of the rule at index rule; its steps
// are Masker.steps[first:first+len(path's steps)].
type pathRule struct {
	first int
	empty bool // the path is "$"
	rule  int
}

// compilePath parses a Rule.Path.
func compilePath(s string) ([]pathStep, error) {
	if len(s) > maxPattern {
		return nil, fmt.Errorf("path is %d bytes, limit %d", len(s), maxPattern)
	}
	if len(s) == 0 || s[0] != '$' {
		return nil, fmt.Errorf("path %q does not start with $", s)
	}
	var steps []pathStep
	for i := 1; i < len(s); {
		var st pathStep
		dot := false
		switch {
		case len(s)-i >= 2 && s[i] == '.' && s[i+1] == '.':
			st.deep, dot = true, true
			i += 2
		case s[i] == '.':
			dot = true
			i++
		case s[i] != '[':
			return nil, fmt.Errorf("path %q: unexpected %q at byte %d, want '.' or '['", s, s[i], i)
		}
		var err error
		switch {
		case i == len(s):
			return nil, fmt.Errorf("path %q ends after '.'", s)
		case s[i] == '[' && dot && !st.deep:
			return nil, fmt.Errorf("path %q: '.' before '[' at byte %d", s, i)
		case s[i] == '[':
			i, err = parseBracket(s, i, &st)
		case s[i] == '*':
			st.any = true
			i++
		default:
			i, err = parseName(s, i, &st)
		}
		if err != nil {
			return nil, err
		}
		steps = append(steps, st)
	}
	return steps, nil
}

// parseBracket parses `[*]` or `["name"]` at s[i] == '['.
func parseBracket(s string, i int, st *pathStep) (int, error) {
	rest := s[i+1:]
	switch {
	case len(rest) >= 2 && rest[0] == '*' && rest[1] == ']':
		st.any = true
		return i + 3, nil
	case len(rest) > 0 && rest[0] == '"':
		// Find the closing quote; json.Unmarshal then checks the escapes.
		j := 1
		for j < len(rest) && rest[j] != '"' {
			if rest[j] == '\\' {
				j++
			}
			j++
		}
		if j >= len(rest) || j+1 >= len(rest) || rest[j+1] != ']' {
			return 0, fmt.Errorf("path %q: unterminated [\"name\"] at byte %d", s, i)
		}
		if err := json.Unmarshal([]byte(rest[:j+1]), &st.name); err != nil || !utf8.ValidString(rest[:j+1]) {
			return 0, fmt.Errorf("path %q: bad name %s at byte %d", s, rest[:j+1], i)
		}
		return i + j + 3, nil
	case len(rest) > 0 && rest[0] == '\'':
		return 0, fmt.Errorf("path %q: quote names with double quotes, at byte %d", s, i)
	case len(rest) > 0 && (rest[0] >= '0' && rest[0] <= '9' || rest[0] == '-' || rest[0] == ':'):
		return 0, fmt.Errorf("path %q: array indexes and slices are not supported, use [*], at byte %d", s, i)
	}
	return 0, fmt.Errorf("path %q: want [*] or [\"name\"] at byte %d", s, i)
}

// parseName parses a member-name-shorthand (RFC 9535 section 2.5.1.1).
func parseName(s string, i int, st *pathStep) (int, error) {
	j := i
	for j < len(s) {
		c := s[j]
		if c == '_' || c >= 0x80 || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || j > i && c >= '0' && c <= '9' {
			j++
			continue
		}
		break
	}
	if j == i {
		return 0, fmt.Errorf("path %q: unexpected %q at byte %d; write names other than letters, digits and '_' as [\"name\"]", s, s[i], i)
	}
	if !utf8.ValidString(s[i:j]) {
		return 0, fmt.Errorf("path %q: name at byte %d is not UTF-8", s, i)
	}
	st.name = s[i:j]
	return j, nil
}

// PathWalker follows a walk through a JSON document and says which path
// rule covers the value the walk is at, without building path strings:
// each step down costs one pass over the rule positions still alive,
// usually none or one. A JSON walker calls EnterMember or EnterElement
// before each value inside an object or array and Leave after it, and
// asks Rule about the value in between.
//
// A PathWalker comes from Masker.PathWalker. It is not safe for
// concurrent use; its memory grows with the depth of the walk and the
// number of "..": the caller bounds the depth.
type PathWalker struct {
	m *Masker
	// states holds the positions alive at each level, frame after frame,
	// each the index in m.steps of the step to take next, sorted: by
	// rule, then by position in the path.
	states []uint32
	frames []pathFrame
	// dead counts the levels entered below the top frame, in which no
	// path is under way: they would repeat its cover and hold no states,
	// so they are counted rather than pushed.
	dead int
}

type pathFrame struct {
	start int   // this frame's states are states[start:next frame's start]
	cover int32 // index in m.paths of the rule covering this value; -1 for none
}

// PathWalker returns a walker standing at the root of a document.
func (m *Masker) PathWalker() *PathWalker {
	w := &PathWalker{m: m}
	w.Reset()
	return w
}

// HasPaths reports whether any path rule exists: a JSON walker needs to
// know where it is only then.
func (m *Masker) HasPaths() bool { return len(m.paths) > 0 }

// Reset returns to the root, for the next document of a stream.
func (w *PathWalker) Reset() {
	w.states = w.states[:0]
	root := pathFrame{cover: -1}
	for p, pr := range w.m.paths {
		if pr.empty {
			// "$" covers the whole document.
			root.cover = int32(p)
			break
		}
		w.states = append(w.states, uint32(pr.first))
	}
	w.frames = append(w.frames[:0], root)
	w.dead = 0
}

// EnterMember steps into the member called name of the object the walk is
// at. Names are compared as bytes: the caller decodes JSON escapes. A name
// longer than MaxPathName matches only wildcards, so the caller may pass
// any such name in place of a long one.
func (w *PathWalker) EnterMember(name []byte) { w.enter(name, false) }

// NeedsNames reports whether member names matter below the value the walk
// is at: whether any path is under way there. When they do not, a caller
// may pass nil to EnterMember rather than decode the name.
func (w *PathWalker) NeedsNames() bool {
	return w.dead == 0 && w.frames[len(w.frames)-1].start < len(w.states)
}

// EnterElement steps into an element of the array the walk is at.
func (w *PathWalker) EnterElement() { w.enter(nil, true) }

func (w *PathWalker) enter(name []byte, element bool) {
	top := w.frames[len(w.frames)-1]
	if w.dead > 0 || top.start == len(w.states) {
		w.dead++
		return
	}
	start, cover := len(w.states), top.cover
	steps := w.m.steps
	for k := top.start; k < start; k++ {
		s := w.states[k]
		st := &steps[s]
		if cover >= 0 && st.path >= cover {
			// Sorted by rule: nothing left can win over the cover.
			break
		}
		if st.deep {
			w.push(start, s)
		}
		if !st.any && (element || string(name) != st.name) {
			continue
		}
		if st.last {
			cover = st.path
			continue
		}
		w.push(start, s+1)
	}
	w.frames = append(w.frames, pathFrame{start: start, cover: cover})
}

// push appends s to the frame being built from start, once: states arrive
// in nondecreasing order, so a duplicate is always the last one.
func (w *PathWalker) push(start int, s uint32) {
	if n := len(w.states); n > start && w.states[n-1] == s {
		return
	}
	w.states = append(w.states, s)
}

// Leave steps back out of the last member or element entered. At the root
// it does nothing.
func (w *PathWalker) Leave() {
	if w.dead > 0 {
		w.dead--
		return
	}
	if len(w.frames) == 1 {
		return
	}
	top := w.frames[len(w.frames)-1]
	w.states = w.states[:top.start]
	w.frames = w.frames[:len(w.frames)-1]
}

// Rule returns the path rule covering the value the walk is at: the first
// rule, in rule order, whose path selects the value or a value enclosing
// it.
func (w *PathWalker) Rule() (Rule, bool) {
	c := w.frames[len(w.frames)-1].cover
	if c < 0 {
		return Rule{}, false
	}
	return w.m.rules[w.m.paths[c].rule], true
}
