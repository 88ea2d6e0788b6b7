package ingest_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/ingest"
	"github.com/ccfpush/ccfpush/internal/record"
)

// randomRecord is a record of about size bytes that does not compress.
func randomRecord(i, size int) []byte {
	buf := make([]byte, size*3/4)
	rand.Read(buf)
	return []byte(fmt.Sprintf(`{"id":"r-%d","r":"%s"}`, i, base64.RawStdEncoding.EncodeToString(buf)))
}

func TestDeadLetterFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.json.failed.ndjson")
	dl := ingest.NewDeadLetterFile(path)
	if err := dl.Write(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("file exists before anything failed: %v", err)
	}
	when := time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("X", 3600))
	entries := []ingest.DeadLetterEntry{
		{Reason: "HTTP 400 InvalidRecord: bad", Source: "data.json", Position: "record 12 (line 40, byte 1234)",
			Status: 400, Code: "InvalidRecord", RequestID: "req-1", Time: when, Record: []byte(`{"id":"a","n":1}`)},
		{Reason: "invalid JSON", Source: "data.json", Position: "record 13 (line 41, byte 1300)", Time: when,
			Record: []byte(`{"id": nope`), Raw: true},
	}
	if err := dl.Write(entries); err != nil {
		t.Fatal(err)
	}
	if err := dl.Write(entries[:1]); err != nil {
		t.Fatal(err)
	}
	if err := dl.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 3 || dl.Count() != 3 {
		t.Fatalf("got %d lines (count %d), want 3:\n%s", len(lines), dl.Count(), data)
	}
	want := `{"ccfpush_dead_letter":{"reason":"HTTP 400 InvalidRecord: bad","source":"data.json","position":"record 12 (line 40, byte 1234)","status":400,"code":"InvalidRecord","request_id":"req-1","time":"2026-03-01T11:00:00Z"},"record":{"id":"a","n":1}}`
	if lines[0] != want {
		t.Errorf("line 1:\n got %s\nwant %s", lines[0], want)
	}
	want = `{"ccfpush_dead_letter":{"reason":"invalid JSON","source":"data.json","position":"record 13 (line 41, byte 1300)","time":"2026-03-01T11:00:00Z"},"record":"{\"id\": nope"}`
	if lines[1] != want {
		t.Errorf("line 2:\n got %s\nwant %s", lines[1], want)
	}

	// Appends, and keeps the mode of an existing file: not ours to change.
	os.Chmod(path, 0o644)
	dl2 := ingest.NewDeadLetterFile(path)
	if err := dl2.Write(entries[:1]); err != nil {
		t.Fatal(err)
	}
	dl2.Close()
	data, _ = os.ReadFile(path)
	fi, _ = os.Stat(path)
	if n := strings.Count(string(data), "\n"); n != 4 || fi.Mode().Perm() != 0o644 {
		t.Errorf("after a second run: %d lines, mode %v; want 4 lines, 0644 (kept)", n, fi.Mode().Perm())
	}
}

func TestDeadLetterFileError(t *testing.T) {
	dl := ingest.NewDeadLetterFile(filepath.Join(t.TempDir(), "missing-dir", "x.ndjson"))
	err := dl.Write([]ingest.DeadLetterEntry{{Reason: "r", Record: []byte(`{}`)}})
	if err == nil {
		t.Fatal("no error writing into a missing directory")
	}
	if err2 := dl.Write([]ingest.DeadLetterEntry{{Reason: "r", Record: []byte(`{}`)}}); err2 == nil {
		t.Error("second write succeeded after a failure")
	}
}

// TestDurableDeadLetterFile is the former daemon dead-letter test
// (cli/daemon_test.go), moved with the code.
func TestDurableDeadLetterFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dead.ndjson")
	d := ingest.NewDurableDeadLetterFile(path)
	if err := d.Write(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("file created without entries: %v", err)
	}
	entries := []ingest.DeadLetterEntry{
		{Reason: "refused", Source: "webhook", Position: "spool record 7", Status: 400, Record: []byte(`{"a":1}`), Time: time.Unix(0, 0)},
		{Reason: "bad", Source: "f.json", Record: []byte(`nope`), Raw: true, Time: time.Unix(0, 0)},
	}
	if err := d.Write(entries); err != nil {
		t.Fatal(err)
	}
	if err := d.Write(entries[:1]); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), b)
	}
	// The lines can be sent again as they are.
	rec, ok := ingest.UnwrapDeadLetter(record.Record{Data: []byte(lines[0])})
	if !ok || string(rec.Data) != `{"a":1}` {
		t.Errorf("line 1 unwraps to %q, %v", rec.Data, ok)
	}
}

// TestDurableDeadLetterFileRecovers: a daemon's dead-letter file that
// could not be written is tried afresh at the next Write (a full disk
// freed later), unlike a one-shot run's, whose failure is sticky.
func TestDurableDeadLetterFileRecovers(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "sub")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	d := ingest.NewDurableDeadLetterFile(filepath.Join(blocker, "dead.ndjson"))
	entry := []ingest.DeadLetterEntry{{Reason: "r", Record: []byte(`{}`)}}
	if err := d.Write(entry); err == nil {
		t.Fatal("no error writing under a file")
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	if err := d.Write(entry); err != nil {
		t.Fatalf("second write: %v", err)
	}
	if err := d.Close(); err != nil || d.Count() != 1 {
		t.Fatalf("close: %v, count %d", err, d.Count())
	}
}

func TestUnwrapDeadLetter(t *testing.T) {
	e := ingest.DeadLetterEntry{Reason: "x", Time: time.Now(), Record: []byte(`{"id":"a","nested":{"k":[1,2]}}`)}
	line := strings.TrimSuffix(string(ingest.AppendDeadLetterLine(nil, &e)), "\n")
	pos := record.Position{Index: 3, Line: 3, Offset: 99}
	tests := []struct {
		name   string
		in     string
		want   string
		unwrap bool
	}{
		{"dead-letter line", line, `{"id":"a","nested":{"k":[1,2]}}`, true},
		{"plain record", `{"id":"b"}`, `{"id":"b"}`, false},
		{"key not first", `{"id":"c","ccfpush_dead_letter":{}}`, `{"id":"c","ccfpush_dead_letter":{}}`, false},
		{"raw text", `{"ccfpush_dead_letter":{"reason":"bad"},"record":"{\"id\": nope"}`, `{"id": nope`, true},
		{"no record", `{"ccfpush_dead_letter":{"reason":"bad"}}`, `{"ccfpush_dead_letter":{"reason":"bad"}}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ingest.UnwrapDeadLetter(record.Record{Data: []byte(tc.in), Pos: pos})
			if ok != tc.unwrap || string(got.Data) != tc.want || got.Pos != pos {
				t.Errorf("got %s %v %v, want %s %v", got.Data, ok, got.Pos, tc.want, tc.unwrap)
			}
		})
	}
}

func TestUnwrapDeadLetters(t *testing.T) {
	good := ingest.DeadLetterEntry{Reason: "x", Record: []byte(`{"id":"r-1"}`)}
	bad := ingest.DeadLetterEntry{Reason: "x", Record: []byte(`not json`), Raw: true}
	src := &sliceSource{items: []sourceItem{
		{rec: record.Record{Data: []byte(strings.TrimSpace(string(ingest.AppendDeadLetterLine(nil, &good))))}},
		{rec: record.Record{Data: []byte(`{"id":"r-2"}`)}},
		{rec: record.Record{Data: []byte(strings.TrimSpace(string(ingest.AppendDeadLetterLine(nil, &bad)))), Pos: record.Position{Index: 3}}},
	}}
	u := ingest.UnwrapDeadLetters(src, "x.failed.ndjson")
	r1, err := u.Next()
	if err != nil || string(r1.Data) != `{"id":"r-1"}` {
		t.Errorf("1: %s %v", r1.Data, err)
	}
	r2, err := u.Next()
	if err != nil || string(r2.Data) != `{"id":"r-2"}` {
		t.Errorf("2: %s %v", r2.Data, err)
	}
	_, err = u.Next()
	var re *record.Error
	if !errors.As(err, &re) || re.Source != "x.failed.ndjson" || re.Pos.Index != 3 || string(re.Raw) != "not json" {
		t.Errorf("3: %v", err)
	}
	if _, err := u.Next(); err != io.EOF {
		t.Errorf("end: %v", err)
	}
}

// Records dead-lettered by one run are sent by the next run of the file.
func TestDeadLetterResend(t *testing.T) {
	h := newHarness(t)
	path := filepath.Join(t.TempDir(), "data.json.failed.ndjson")
	dl := ingest.NewDeadLetterFile(path)
	h.srv.RejectIf(func(rec []byte) string {
		if strings.Contains(string(rec), `"r-2"`) {
			return "temporarily bad"
		}
		return ""
	})
	st, err := h.run(t, context.Background(), records(5, 50), func(o *ingest.Options) { o.DeadLetter = dl })
	if err != nil || st.RecordsBad != 1 || st.DeadLetter == nil || *st.DeadLetter != path {
		t.Fatalf("first run: %v %+v", err, st)
	}
	dl.Close()
	h.srv.RejectIf(nil)

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	src := &sliceSource{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var c json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		src.items = append(src.items, sourceItem{rec: record.Record{Data: append([]byte(nil), sc.Bytes()...)}})
	}
	st, err = h.run(t, context.Background(), ingest.UnwrapDeadLetters(src, path), func(o *ingest.Options) { o.DeadLetter = nil })
	if err != nil || st.RecordsSent != 1 {
		t.Fatalf("second run: %v %+v", err, st)
	}
	if h.srv.AcceptedIDs()["r-2"] != 1 {
		t.Errorf("r-2 accepted %d times", h.srv.AcceptedIDs()["r-2"])
	}
	last := h.srv.Accepted()[len(h.srv.Accepted())-1]
	if string(last) != string(mkRecord(2, 50).Data) {
		t.Errorf("resent %s, want the original record", last)
	}
}
