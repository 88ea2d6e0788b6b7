package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
)

// TestStaged: small and spilled staged calls are appended whole and in
// order, survive a reopen, leave no temporary file; a discarded one leaves
// nothing; a full spool refuses the whole call.
func TestStaged(t *testing.T) {
	dir := t.TempDir()
	sp, err := Open(dir, Options{MaxBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	want := 0
	for _, n := range []int{3, 20000} { // 20000 records of ~60 bytes spill past stageMemBytes
		st := sp.Stage("webhook")
		for i := range n {
			if err := st.Add(fmt.Appendf(nil, `{"n":%d,"call":%d,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxx"}`, i, n)); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		st.Discard()
		want += n
	}
	dropped := sp.Stage("webhook")
	dropped.Add([]byte(`{"dropped":true}`))
	dropped.Discard()
	if got := sp.Stats().Records; got != int64(want) {
		t.Fatalf("%d records, want %d", got, want)
	}
	sp.Close()

	sp, err = Open(dir, Options{MaxBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	b, err := sp.Next(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Items) != want || string(b.Items[3].Data) != `{"n":0,"call":20000,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxx"}` ||
		string(b.Items[want-1].Data) != `{"n":19999,"call":20000,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxx"}` {
		t.Fatalf("%d records after reopen", len(b.Items))
	}
	sp.Nack(b.Seqs()...)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if len(e.Name()) > len(stagePrefix) && e.Name()[:len(stagePrefix)] == stagePrefix {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
	// Full: nothing of the call is appended.
	st := sp.Stage("webhook")
	for range 100000 {
		if err := st.Add([]byte(`{"fill":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`)); err != nil {
			if !errors.Is(err, ErrTooLarge) {
				t.Fatal(err)
			}
			break
		}
	}
	if err := st.Commit(ctx); !errors.Is(err, ErrFull) {
		t.Errorf("commit over the bound: %v", err)
	}
	st.Discard()
	if got := sp.Stats().Records; got != int64(want) {
		t.Errorf("%d records after a refused call, want %d", got, want)
	}
}
