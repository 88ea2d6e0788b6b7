package ingest

import (
	"bytes"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"

	"github.com/ccfpush/ccfpush/internal/record"
)

// batch is one request's worth of records: the uncompressed JSON array
// "[r1,r2,...]" and where each record lies in it. Records are copied into
// raw when packed, so a batch owns its bytes and the source may reuse its
// buffers.
type batch struct {
	raw   []byte
	items []item
}

// item is one record of a batch.
type item struct {
	start, end int // the record is raw[start:end]
	pos        record.Position
	idx        int    // index in the caller's slice (Deliver); sequence number (Run)
	prior      *Prior // what a dead-letter line said about it, when it came from one
	// maybe: a request that may have been stored carried it (or, from a
	// dead-letter file, one did before): sending it again may store it
	// twice.
	maybe bool
}

func (b *batch) data(i int) []byte { return b.raw[b.items[i].start:b.items[i].end] }

// sub builds a new batch from items [from, to) of b, for 413 splits and 400
// bisection.
func (b *batch) sub(from, to int) *batch {
	n := 2
	for i := from; i < to; i++ {
		n += b.items[i].end - b.items[i].start + 1
	}
	s := &batch{raw: make([]byte, 0, n), items: make([]item, 0, to-from)}
	s.raw = append(s.raw, '[')
	for i := from; i < to; i++ {
		if i > from {
			s.raw = append(s.raw, ',')
		}
		it := b.items[i]
		it.start = len(s.raw)
		s.raw = append(s.raw, b.data(i)...)
		it.end = len(s.raw)
		s.items = append(s.items, it)
	}
	s.raw = append(s.raw, ']')
	return s
}

// restore rebuilds raw (n bytes) from the gzip body made of it, after raw
// was released during the upload.
func (b *batch) restore(body []byte, n int) error {
	if b.raw != nil {
		return nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("restore batch: %w", err)
	}
	raw := make([]byte, n)
	if _, err := io.ReadFull(zr, raw); err != nil {
		return fmt.Errorf("restore batch: %w", err)
	}
	if len(b.items) > 0 && b.items[len(b.items)-1].end+1 != n {
		return fmt.Errorf("restore batch: %d bytes do not match the records", n)
	}
	b.raw = raw
	return nil
}

// halves splits b in two at the middle record.
func (b *batch) halves() (*batch, *batch) {
	mid := len(b.items) / 2
	return b.sub(0, mid), b.sub(mid, len(b.items))
}

// rawPool recycles the JSON array buffers of finished batches: at 1 MB
// each, allocating them fresh would dominate the garbage of a big run.
var rawPool sync.Pool

func getRaw() []byte {
	if p, ok := rawPool.Get().(*[]byte); ok {
		return (*p)[:0]
	}
	return nil
}

// putRaw returns b's array to the pool; b keeps its items (their offsets
// are valid again once restore brings the array back).
func putRaw(b *batch) {
	if b == nil || b.raw == nil {
		return
	}
	raw := b.raw[:0]
	b.raw = nil
	if cap(raw) > 0 && cap(raw) <= MaxAllowedRawBytes+1 {
		rawPool.Put(&raw)
	}
}

// RecordLimit is the largest record (compact JSON) that fits in a request
// of maxRaw bytes on its own: a larger one can never be sent. The daemons'
// intakes refuse such records at the door with this rule.
func RecordLimit(maxRaw int) int { return maxRaw - len("[]") }

// oversizeError is a record too big for one request on its own.
type oversizeError struct{ size, limit int }

func (e *oversizeError) Error() string {
	return fmt.Sprintf("record is %d bytes; the limit for one request is %d bytes", e.size, e.limit)
}

// packer packs records into batches of at most maxRaw bytes of JSON array
// and at most maxCount records (0: no count limit).
type packer struct {
	maxRaw   int
	maxCount int
	cur      *batch
}

// add packs data (one compact JSON object). It returns the batches that
// became complete — the previous one when data did not fit, and the
// current one when it reached the count limit — in the order to send them.
// A record that cannot fit in any request returns an *oversizeError and
// is not packed.
func (p *packer) add(data []byte, pos record.Position, idx int, prior *Prior) (done []*batch, err error) {
	if len(data) > RecordLimit(p.maxRaw) {
		return nil, &oversizeError{size: len(data), limit: p.maxRaw}
	}
	// The array so far is "[a,b" (no closing bracket yet): adding this
	// record needs a comma, the record and, eventually, the "]".
	if p.cur != nil && len(p.cur.raw)+1+len(data)+1 > p.maxRaw {
		done = append(done, p.close())
	}
	if p.cur == nil {
		p.cur = &batch{raw: append(getRaw(), '[')}
	} else {
		p.cur.raw = append(p.cur.raw, ',')
	}
	start := len(p.cur.raw)
	p.cur.raw = append(p.cur.raw, data...)
	p.cur.items = append(p.cur.items, item{start: start, end: len(p.cur.raw), pos: pos, idx: idx,
		prior: prior, maybe: prior != nil && prior.MaybeStored})
	if p.maxCount > 0 && len(p.cur.items) >= p.maxCount {
		done = append(done, p.close())
	}
	return done, nil
}

// close finishes the current batch and returns it (nil when empty).
func (p *packer) close() *batch {
	b := p.cur
	if b == nil {
		return nil
	}
	p.cur = nil
	b.raw = append(b.raw, ']')
	return b
}

// pending reports how many records wait in the current batch.
func (p *packer) pending() int {
	if p.cur == nil {
		return 0
	}
	return len(p.cur.items)
}

// compressor gzips request bodies, reusing writers and scratch buffers.
type compressor struct {
	level   int
	writers sync.Pool // *gzip.Writer
	scratch sync.Pool // *bytes.Buffer
}

// compress returns raw gzipped, in a new slice of exactly the right size.
// The body is not pooled: the HTTP transport may still be reading a
// request body after the response has come back (an early 413 does that),
// so a body must never be reused once handed to the Uploader.
func (c *compressor) compress(raw []byte) ([]byte, error) {
	buf, _ := c.scratch.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	zw, _ := c.writers.Get().(*gzip.Writer)
	if zw == nil {
		var err error
		if zw, err = gzip.NewWriterLevel(buf, c.level); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
	} else {
		zw.Reset(buf)
	}
	if _, err := zw.Write(raw); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	body := bytes.Clone(buf.Bytes())
	c.writers.Put(zw)
	if buf.Cap() <= 2*MaxBodyBytes {
		c.scratch.Put(buf)
	}
	return body, nil
}
