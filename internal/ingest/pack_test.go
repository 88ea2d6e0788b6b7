package ingest

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/record"
)

// rec returns a compact JSON object of exactly n bytes (n >= 12).
func rec(id, n int) []byte {
	head := fmt.Sprintf(`{"id":%d,"p":"`, id)
	pad := n - len(head) - 2
	if pad < 0 {
		panic("record too small")
	}
	return []byte(head + strings.Repeat("x", pad) + `"}`)
}

// packAll packs records of the given sizes and returns the batches.
func packAll(t *testing.T, p *packer, sizes []int) (batches []*batch, oversize []int) {
	t.Helper()
	for i, n := range sizes {
		done, err := p.add(rec(i, n), record.Position{Index: int64(i + 1)}, i, nil)
		var oe *oversizeError
		if errors.As(err, &oe) {
			oversize = append(oversize, i)
			continue
		} else if err != nil {
			t.Fatalf("add: %v", err)
		}
		batches = append(batches, done...)
	}
	if b := p.close(); b != nil {
		batches = append(batches, b)
	}
	return batches, oversize
}

func TestPackerBoundaries(t *testing.T) {
	tests := []struct {
		name         string
		maxRaw       int
		maxCount     int
		sizes        []int
		wantBatches  []int // records per batch
		wantOversize []int
	}{
		// "[" + 100 + "," + 100 + "," + 96 + "]" = 300
		{"exactly at the limit", 300, 0, []int{100, 100, 96}, []int{3}, nil},
		{"one byte over", 300, 0, []int{100, 100, 97}, []int{2, 1}, nil},
		{"single record fills a request", 100, 0, []int{98, 98}, []int{1, 1}, nil},
		{"single record one byte too big", 100, 0, []int{50, 99, 20}, []int{2}, []int{1}},
		{"count limit", 10_000, 3, []int{20, 20, 20, 20, 20, 20, 20}, []int{3, 3, 1}, nil},
		{"count and bytes", 100, 3, []int{40, 40, 20, 20, 20, 20}, []int{2, 3, 1}, nil},
		{"bytes only", 1_000_000, 0, []int{20, 20, 20}, []int{3}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &packer{maxRaw: tc.maxRaw, maxCount: tc.maxCount}
			batches, oversize := packAll(t, p, tc.sizes)
			var got []int
			next := 0
			for _, b := range batches {
				got = append(got, len(b.items))
				if len(b.raw) > tc.maxRaw {
					t.Errorf("batch of %d bytes exceeds %d", len(b.raw), tc.maxRaw)
				}
				var arr []json.RawMessage
				if err := json.Unmarshal(b.raw, &arr); err != nil {
					t.Fatalf("batch is not a JSON array: %v: %s", err, b.raw)
				}
				for i := range b.items {
					for contains(oversize, next) {
						next++
					}
					if !bytes.Equal(b.data(i), rec(next, tc.sizes[next])) || !bytes.Equal(arr[i], b.data(i)) {
						t.Errorf("record %d: got %s", next, b.data(i))
					}
					if b.items[i].idx != next || b.items[i].pos.Index != int64(next+1) {
						t.Errorf("record %d: idx %d pos %v", next, b.items[i].idx, b.items[i].pos)
					}
					next++
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.wantBatches) {
				t.Errorf("records per batch: got %v, want %v", got, tc.wantBatches)
			}
			if fmt.Sprint(oversize) != fmt.Sprint(tc.wantOversize) {
				t.Errorf("oversize: got %v, want %v", oversize, tc.wantOversize)
			}
		})
	}
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func TestPackerBatchSize25(t *testing.T) {
	p := &packer{maxRaw: DefaultMaxRawBytes, maxCount: 25}
	sizes := make([]int, 500)
	for i := range sizes {
		sizes[i] = 400
	}
	batches, _ := packAll(t, p, sizes)
	if len(batches) != 20 {
		t.Fatalf("batches: got %d, want 20", len(batches))
	}
	for i, b := range batches {
		if len(b.items) != 25 {
			t.Errorf("batch %d: %d records, want 25", i, len(b.items))
		}
	}
}

func TestOversizeMessage(t *testing.T) {
	p := &packer{maxRaw: 1_000_000}
	_, err := p.add(rec(1, 1_000_001), record.Position{}, 0, nil)
	if got, want := fmt.Sprint(err), "record is 1000001 bytes; the limit for one request is 1000000 bytes"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestBatchHalves(t *testing.T) {
	p := &packer{maxRaw: 10_000}
	batches, _ := packAll(t, p, []int{20, 21, 22, 23, 24})
	left, right := batches[0].halves()
	for _, h := range []*batch{left, right} {
		var arr []json.RawMessage
		if err := json.Unmarshal(h.raw, &arr); err != nil || len(arr) != len(h.items) {
			t.Fatalf("half is not a JSON array of %d: %v: %s", len(h.items), err, h.raw)
		}
		for i := range h.items {
			if !bytes.Equal(arr[i], h.data(i)) {
				t.Errorf("item %d: got %s, want %s", i, h.data(i), arr[i])
			}
		}
	}
	if len(left.items) != 2 || len(right.items) != 3 || right.items[0].idx != 2 {
		t.Errorf("halves: %d + %d records, right starts at %d", len(left.items), len(right.items), right.items[0].idx)
	}
}

func TestCompressRoundTrip(t *testing.T) {
	c := &compressor{level: DefaultGzipLevel}
	for _, raw := range [][]byte{[]byte(`[{"a":1}]`), bytes.Repeat([]byte(`{"k":"vvvvvv"},`), 50_000)} {
		for range 2 { // the second pass reuses pooled writers
			body, err := c.compress(raw)
			if err != nil {
				t.Fatal(err)
			}
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(zr)
			if err != nil || !bytes.Equal(got, raw) {
				t.Fatalf("round trip: err %v, equal %v", err, bytes.Equal(got, raw))
			}
		}
	}
}

// A full default-size request of incompressible text still fits the body
// limit: gzip's stored blocks add only a few bytes per 64 KiB.
func TestCompressWorstCaseWithinLimit(t *testing.T) {
	c := &compressor{level: DefaultGzipLevel}
	p := &packer{maxRaw: DefaultMaxRawBytes}
	var b *batch
	for i := 0; b == nil; i++ {
		buf := make([]byte, 3000)
		rand.Read(buf)
		data := []byte(`{"r":"` + base64.RawStdEncoding.EncodeToString(buf) + `"}`)
		done, err := p.add(data, record.Position{}, i, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(done) > 0 {
			b = done[0]
		}
	}
	body, err := c.compress(b.raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.raw) < DefaultMaxRawBytes-5000 || len(body) > MaxBodyBytes {
		t.Errorf("raw %d bytes -> gzip %d bytes; want raw near %d and gzip <= %d", len(b.raw), len(body), DefaultMaxRawBytes, MaxBodyBytes)
	}
}

func TestFullJitterBackoff(t *testing.T) {
	b := FullJitterBackoff(500*time.Millisecond, 30*time.Second)
	for attempt, max := range map[int]time.Duration{1: 500 * time.Millisecond, 2: time.Second, 4: 4 * time.Second, 7: 30 * time.Second, 40: 30 * time.Second, 1000: 30 * time.Second} {
		for range 200 {
			if d := b(attempt); d <= 0 || d > max {
				t.Fatalf("attempt %d: delay %s, want in (0, %s]", attempt, d, max)
			}
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		ok   bool
	}{
		{"zero", Options{}, true},
		{"negative batch", Options{BatchSize: -1}, false},
		{"raw too small", Options{MaxRawBytes: 2}, false},
		{"raw too big", Options{MaxRawBytes: MaxAllowedRawBytes + 1}, false},
		{"raw max", Options{MaxRawBytes: MaxAllowedRawBytes}, true},
		{"concurrency", Options{Concurrency: 65}, false},
		{"no retries", Options{MaxRetries: -1}, true},
		{"gzip level", Options{GzipLevel: 12}, false},
		{"timeout", Options{Timeout: -time.Second}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.o.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate: got %v, want ok=%v", err, tc.ok)
			}
		})
	}
	o, _ := Options{MaxRetries: -1}.withDefaults()
	if o.MaxRetries != 0 {
		t.Errorf("MaxRetries -1: got %d, want 0 (no retries)", o.MaxRetries)
	}
}
