package input

import (
	"strings"
	"testing"
)

// A dead-letter file reads as the records it holds, for every reader: the
// documented recovery (send it again) must check, infer and diagnose the
// same records send sends.
func TestReaderUnwrapsDeadLetterLines(t *testing.T) {
	lines := `{"ccfpush_dead_letter":{"reason":"HTTP 403","source":"d.json","position":"record 7 (line 9, byte 80)","origin":{"file":"d.json","record":7,"line":9,"offset":80},"maybe_stored":true,"time":"2026-12-06T00:00:00Z"},"record":{"TimeGenerated":"2026-12-06T00:00:00Z","A":1}}
{"B":2}
{"ccfpush_dead_letter":{"reason":"line 3: not JSON","source":"d.json","position":"record 3 (line 3, byte 20)","time":"2026-12-06T00:00:00Z"},"record":"{oops"}
`
	for _, keep := range []bool{false, true} {
		r, err := New(strings.NewReader(lines), "d.json.failed.ndjson", Options{KeepDeadLetters: keep})
		if err != nil {
			t.Fatal(err)
		}
		rec, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if keep {
			if !IsDeadLetterLine(rec.Data) || r.Prior() != nil {
				t.Fatalf("KeepDeadLetters: got %s, prior %v; want the line as it came", rec.Data, r.Prior())
			}
			continue
		}
		if string(rec.Data) != `{"TimeGenerated":"2026-12-06T00:00:00Z","A":1}` {
			t.Fatalf("record 1 = %s, want the record the line holds", rec.Data)
		}
		if p := r.Prior(); p == nil || !p.MaybeStored || p.Origin == nil || *p.Origin != (Origin{File: "d.json", Record: 7, Line: 9, Offset: 80}) {
			t.Fatalf("prior = %+v, want the line's origin and maybe_stored", p)
		}
		if rec, err = r.Next(); err != nil || string(rec.Data) != `{"B":2}` || r.Prior() != nil {
			t.Fatalf("record 2 = %s, %v, prior %v; want it unchanged", rec.Data, err, r.Prior())
		}
		good, bad, fatal := readAll(t, r)
		if fatal != nil || len(good) != 0 || len(bad) != 1 {
			t.Fatalf("rest: good %v, bad %v, fatal %v; want the text line as one bad record", good, bad, fatal)
		}
		if b := bad[0]; b.Source != "d.json" || b.Pos.Index != 3 || string(b.Raw) != "{oops" || b.Reason != "line 3: not JSON" {
			t.Fatalf("bad record = %+v, want its first origin, text and reason", b)
		}
	}
}
