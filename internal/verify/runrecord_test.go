package verify

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A send resumed with --skip-records adds to the run record of the run it
// resumes: verify must still know which requests of the first run carried
// (and delivered) its records.
func TestSaveRunRecordResumed(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "res2.json")
	dead := data + ".failed.ndjson"
	if err := os.WriteFile(data, []byte(`{"Id":"a"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(data)
	started := fi.ModTime().Add(time.Second)
	first := &RunRecord{Source: "res2.json", Stream: "Custom-S", Started: started, Records: 900}
	first.Add("first", 204, []int64{1, 2, 3})
	if err := SaveRunRecord(dead, data, 0, first); err != nil {
		t.Fatal(err)
	}
	resumed := &RunRecord{Source: "res2.json", Stream: "Custom-S", Started: started.Add(time.Minute), Records: 1000}
	resumed.Add("resumed", 204, []int64{901, 902})
	if err := SaveRunRecord(dead, data, 900, resumed); err != nil {
		t.Fatal(err)
	}
	back, err := ReadRunRecord(RunRecordPath(dead))
	if err != nil {
		t.Fatal(err)
	}
	c := back.Carried([]int64{2, 901})
	if len(c[2]) != 1 || c[2][0].ClientRequestID != "first" || len(c[901]) != 1 || back.Records != 1000 || !back.Started.Equal(started) {
		t.Fatalf("resumed run record %+v: want the first run's requests and the resumed run's", back)
	}
	// A run from the start, or of another stream, replaces it.
	other := &RunRecord{Source: "res2.json", Stream: "Custom-Other", Started: started, Records: 10}
	other.Add("other", 204, []int64{1})
	if err := SaveRunRecord(dead, data, 5, other); err != nil {
		t.Fatal(err)
	}
	if back, err = ReadRunRecord(RunRecordPath(dead)); err != nil || len(back.Requests) != 1 || back.Requests[0].ClientRequestID != "other" {
		t.Fatalf("another stream's run: %+v, %v; want it alone", back, err)
	}
	fresh := &RunRecord{Source: "res2.json", Stream: "Custom-Other", Started: started, Records: 10}
	if err := SaveRunRecord(dead, data, 0, fresh); err != nil {
		t.Fatal(err)
	}
	if back, err = ReadRunRecord(RunRecordPath(dead)); err != nil || len(back.Requests) != 0 {
		t.Fatalf("a run from the start: %+v, %v; want it alone", back, err)
	}
}

// Beside a dead-letter target that is no regular file (--dead-letter
// /dev/null, a FIFO) no run record is written.
func TestSaveRunRecordNotBesideADevice(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "dl.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("no FIFO here:", err)
	}
	if err := SaveRunRecord(fifo, "d.json", 0, &RunRecord{Source: "d.json"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(RunRecordPath(fifo)); !os.IsNotExist(err) {
		t.Errorf("run record beside a FIFO: %v, want none", err)
	}
}
