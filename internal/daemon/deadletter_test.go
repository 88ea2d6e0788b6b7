package daemon

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/ccfpush/ccfpush/internal/ingest"
)

// The final "stopped" line counts what went to the dead letter this run
// from either file: refused records and the intake's bad records alike,
// also when the chosen file cannot be written and the spool's takes them.
func TestFallbackDeadLetterCountsWhatItWrote(t *testing.T) {
	dir := t.TempDir()
	spoolDL := filepath.Join(dir, "spool", DeadLetterName)
	if err := os.MkdirAll(filepath.Dir(spoolDL), 0o700); err != nil {
		t.Fatal(err)
	}
	chosen := filepath.Join(dir, "chosen.ndjson")
	f := newFallbackDeadLetter(ingest.NewDurableDeadLetterFile(chosen), spoolDL, slog.New(slog.DiscardHandler))
	entry := func(reason string) ingest.DeadLetterEntry {
		return ingest.DeadLetterEntry{Reason: reason, Source: "d.json", Record: []byte(`{"a":1}`)}
	}
	if err := f.Write([]ingest.DeadLetterEntry{entry("bad record"), entry("bad record"), entry("400")}); err != nil {
		t.Fatal(err)
	}
	// The chosen file's folder goes away: the spool's file takes them.
	if err := os.Remove(chosen); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(chosen, 0o700); err != nil { // a directory now: not writable as a file
		t.Fatal(err)
	}
	f.primary = ingest.NewDurableDeadLetterFile(chosen)
	if err := f.Write([]ingest.DeadLetterEntry{entry("413")}); err != nil {
		t.Fatal(err)
	}
	if got := f.Written(); got != 4 {
		t.Errorf("Written() = %d, want 4 (3 in the chosen file, 1 in the spool's)", got)
	}
	f.Close()
}
