package record

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"strconv"
	"time"
)

// MaxGap caps one pause of Play, in recorded time, so that a terminal left
// idle for an hour replays in seconds (asciinema's idle_time_limit). At
// speed s the longest pause is MaxGap/s.
const MaxGap = 2 * time.Second

// Play writes the output stream records of recs (the terminal as the agent
// saw it) to w in real time: each chunk after the previous one's recorded
// delay, capped at MaxGap, divided by speed (2 plays twice as fast). Input
// records are not written; the output shows their echo. Play writes the
// recorded bytes as they are, escape sequences included, as any terminal
// player does: point it at a terminal, not at a log.
//
// Play returns nil when recs is done or ctx is cancelled; errors come
// from recs, from w, or from a stream record it cannot decode (wrapping
// ErrEncrypted when no identity was given).
func Play(ctx context.Context, w io.Writer, recs iter.Seq2[Record, error], speed float64) error {
	if !(speed > 0) || math.IsInf(speed, 0) {
		return fmt.Errorf("play: speed %v: want a positive number", speed)
	}
	var (
		last  time.Time
		first = true
		timer *time.Timer
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for rec, err := range recs {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		if rec.Kind != KindStream {
			continue
		}
		var s Stream
		if err := rec.Decode(&s); err != nil {
			return fmt.Errorf("play: record %d: %w", rec.Seq, err)
		}
		if s.Dir != DirOutput {
			continue
		}
		if !first {
			gap := min(max(rec.Time.Sub(last), 0), MaxGap)
			if d := time.Duration(float64(gap) / speed); d > 0 {
				if timer == nil {
					timer = time.NewTimer(d)
				} else {
					timer.Reset(d)
				}
				select {
				case <-ctx.Done():
					return nil
				case <-timer.C:
				}
			}
		}
		first = false
		last = rec.Time
		if _, err := io.WriteString(w, s.Data); err != nil {
			return fmt.Errorf("play: %w", err)
		}
	}
	return nil
}

// Default terminal size for Asciicast when the header has none.
const (
	defaultWidth  = 80
	defaultHeight = 24
)

// castHeader is the first line of an asciicast v2 file
// (https://docs.asciinema.org/manual/asciicast/v2/), fields in the order
// the spec lists them.
type castHeader struct {
	Version   int   `json:"version"`
	Width     int   `json:"width"`
	Height    int   `json:"height"`
	Timestamp int64 `json:"timestamp"`
	// IdleTimeLimit makes players cap pauses as Play does.
	IdleTimeLimit float64           `json:"idle_time_limit,omitempty"`
	Title         string            `json:"title,omitempty"`
	Env           map[string]string `json:"env,omitempty"`
}

// Asciicast writes the stream records of recs as an asciicast v2 file:
// a header line, then one [seconds, "i"|"o", data] event per stream record,
// seconds counted from the header record (never decreasing, as players
// expect). The recorded gaps are kept; the header's idle_time_limit asks
// players to cap them at MaxGap, as Play does. Terminal size comes from Header.Terminal, else 80x24. The first
// record must be the header. Records are rendered as they are; undecodable
// stream records are errors (wrapping ErrEncrypted without an identity).
func Asciicast(w io.Writer, recs iter.Seq2[Record, error]) error {
	bw := bufio.NewWriter(w)
	var (
		base   time.Time
		seen   bool
		lastAt float64
		line   []byte
	)
	for rec, err := range recs {
		if err != nil {
			bw.Flush()
			return err
		}
		if !seen {
			seen = true
			var h Header
			if rec.Kind != KindHeader {
				return errors.New("asciicast: first record is not a header")
			}
			if err := rec.Decode(&h); err != nil {
				return fmt.Errorf("asciicast: header: %w", err)
			}
			base = rec.Time
			ch := castHeader{Version: 2, Width: defaultWidth, Height: defaultHeight, Timestamp: h.Start.Unix(),
				IdleTimeLimit: MaxGap.Seconds(),
				Title:         fmt.Sprintf("sluice session %s: %s@%s", h.Session, h.Identity.Subject, h.Target.Name)}
			if t := h.Terminal; t != nil {
				if t.Width > 0 && t.Height > 0 {
					ch.Width, ch.Height = t.Width, t.Height
				}
				if t.Term != "" {
					ch.Env = map[string]string{"TERM": t.Term}
				}
			}
			b, err := marshalData(ch)
			if err != nil {
				return fmt.Errorf("asciicast: %w", err)
			}
			bw.Write(b)
			bw.WriteByte('\n')
			continue
		}
		if rec.Kind != KindStream {
			continue
		}
		var s Stream
		if err := rec.Decode(&s); err != nil {
			return fmt.Errorf("asciicast: record %d: %w", rec.Seq, err)
		}
		if s.Dir != DirInput && s.Dir != DirOutput {
			return fmt.Errorf("asciicast: record %d: direction %s, want %q or %q", rec.Seq, quote(s.Dir), DirInput, DirOutput)
		}
		at := max(rec.Time.Sub(base).Seconds(), lastAt)
		lastAt = at
		line = append(line[:0], '[')
		line = strconv.AppendFloat(line, at, 'f', 6, 64)
		line = append(line, `, "`...)
		line = append(line, s.Dir...)
		line = append(line, `", `...)
		line = appendJSONString(line, s.Data)
		line = append(line, "]\n"...)
		if _, err := bw.Write(line); err != nil {
			return fmt.Errorf("asciicast: %w", err)
		}
	}
	if !seen {
		return errors.New("asciicast: no records")
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("asciicast: %w", err)
	}
	return nil
}

// appendJSONString appends s as a JSON string, without HTML escaping
// (terminal output is full of < and >).
func appendJSONString(b []byte, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(s) // a string always encodes
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}
