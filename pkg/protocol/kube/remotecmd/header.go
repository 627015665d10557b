package remotecmd

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// headerValues are the SPDY stream headers the Kubernetes streams are
// told apart by.
type headerValues struct {
	streamType string
	port       string
}

// headerDecoder reads the header blocks of one direction. SPDY compresses
// all of a direction's header blocks as one zlib stream with a preset
// dictionary, each block ending in a sync flush (SPDY/3 §2.6.10.1), so one
// decompressor must see every block in order.
//
// The decompressor reads from src, which holds the blocks handed to decode
// and which never blocks: a header block is parsed field by field, and a
// sync-flushed block holds every byte its fields need, so the
// decompressor reaches the end of src only when the block is truncated or
// not flushed, which breaks it for good.
type headerDecoder struct {
	src  compressedInput
	zr   io.ReadCloser
	left int    // decompressed bytes the current block may still take
	buf  []byte // a name or value
}

// compressedInput is an io.ByteReader as well, so compress/flate reads it
// byte by byte and never ahead into bytes that belong to no block yet.
type compressedInput struct {
	b []byte
	i int
}

func (c *compressedInput) Read(p []byte) (int, error) {
	if c.i >= len(c.b) {
		return 0, io.EOF
	}
	n := copy(p, c.b[c.i:])
	c.i += n
	return n, nil
}

func (c *compressedInput) ReadByte() (byte, error) {
	if c.i >= len(c.b) {
		return 0, io.EOF
	}
	c.i++
	return c.b[c.i-1], nil
}

func (d *headerDecoder) decode(block []byte) (headerValues, error) {
	// What the decompressor left of earlier blocks (the empty stored block
	// that ends a sync flush) stays in front.
	rest := copy(d.src.b, d.src.b[d.src.i:])
	if rest+len(block) > 2*MaxControlFrame {
		return headerValues{}, fmt.Errorf("spdy: %d bytes of compressed headers not consumed: %w", rest, ErrLimit)
	}
	d.src.b = append(d.src.b[:rest], block...)
	d.src.i = 0
	if d.zr == nil {
		zr, err := zlib.NewReaderDict(&d.src, headerDictionary)
		if err != nil {
			return headerValues{}, fmt.Errorf("spdy: header compression: %w", err)
		}
		d.zr = zr
	}
	d.left = MaxHeaderBlock
	var h headerValues
	n, err := d.uint32()
	if err != nil {
		return h, err
	}
	if n > MaxHeaders {
		return h, fmt.Errorf("spdy: header block of %d pairs: %w (%d)", n, ErrLimit, MaxHeaders)
	}
	var haveType, havePort bool
	for range n {
		name, err := d.field()
		if err != nil {
			return h, err
		}
		// Names are lower case on the wire; spdystream lowers any that
		// are not, and http.Header.Get gives the first value.
		isType := !haveType && bytes.EqualFold(name, []byte("streamtype"))
		isPort := !havePort && bytes.EqualFold(name, []byte("port"))
		value, err := d.field()
		if err != nil {
			return h, err
		}
		// A value holds several values separated by NUL.
		if i := bytes.IndexByte(value, 0); i >= 0 {
			value = value[:i]
		}
		switch {
		case isType:
			h.streamType, haveType = string(value), true
		case isPort:
			h.port, havePort = string(value), true
		}
	}
	return h, nil
}

func (d *headerDecoder) uint32() (uint32, error) {
	b, err := d.read(4)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(b), nil
}

// field reads a length-prefixed name or value into d.buf.
func (d *headerDecoder) field() ([]byte, error) {
	n, err := d.uint32()
	if err != nil {
		return nil, err
	}
	if uint64(n) > uint64(d.left) {
		return nil, fmt.Errorf("spdy: header field of %d bytes: %w (%d bytes per header block)", n, ErrLimit, MaxHeaderBlock)
	}
	return d.read(int(n))
}

func (d *headerDecoder) read(n int) ([]byte, error) {
	if n > d.left {
		return nil, fmt.Errorf("spdy: header block over %d bytes: %w", MaxHeaderBlock, ErrLimit)
	}
	d.left -= n
	if cap(d.buf) < n {
		d.buf = make([]byte, n)
	}
	b := d.buf[:n]
	if _, err := io.ReadFull(d.zr, b); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errors.New("spdy: header block truncated or not flushed")
		}
		return nil, fmt.Errorf("spdy: header block: %w", err)
	}
	return b, nil
}

// headerDictionary is the zlib dictionary of SPDY/3 header compression
// (§2.6.10.1): length-prefixed header names and values, then a run of
// common value fragments.
var headerDictionary = func() []byte {
	words := strings.Fields(`options head post put delete trace accept
		accept-charset accept-encoding accept-language accept-ranges age
		allow authorization cache-control connection content-base
		content-encoding content-language content-length content-location
		content-md5 content-range content-type date etag expect expires from
		host if-match if-modified-since if-none-match if-range
		if-unmodified-since last-modified location max-forwards pragma
		proxy-authenticate proxy-authorization range referer retry-after
		server te trailer transfer-encoding upgrade user-agent vary via
		warning www-authenticate method get status 200_OK version HTTP/1.1
		url public set-cookie keep-alive origin`)
	var d []byte
	for _, w := range words {
		d = binary.BigEndian.AppendUint32(d, uint32(len(w)))
		d = append(d, strings.ReplaceAll(w, "_", " ")...)
	}
	d = append(d, "100101201202205206300302303304305306307402405406407"+
		"408409410411412413414415416417502504505"+
		"203 Non-Authoritative Information"+
		"204 No Content"+
		"301 Moved Permanently"+
		"400 Bad Request"+
		"401 Unauthorized"+
		"403 Forbidden"+
		"404 Not Found"+
		"500 Internal Server Error"+
		"501 Not Implemented"+
		"503 Service Unavailable"+
		"Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec"+
		" 00:00:00"+
		" Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"+
		"chunked,text/html,image/png,image/jpg,image/gif,"+
		"application/xml,application/xhtml+xml,text/plain,text/javascript,"+
		"publicprivatemax-age=gzip,deflate,sdch"+
		"charset=utf-8charset=iso-8859-1,utf-,*,enq=0."...)
	return d
}()
