package emulator

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/dcr"
)

func TestRunStopsWhenContextEnds(t *testing.T) {
	e, err := New(Options{DataDir: seededDir(t), Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for e.URL() == "" {
		if time.Now().After(deadline) {
			t.Fatal("Run did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if r := get(t, e, "/_emulator/stats", nil); r.StatusCode != http.StatusOK {
		t.Fatalf("stats %d", r.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if resp, err := client(e).Get(e.URL() + "/_emulator/stats"); err == nil {
		resp.Body.Close()
		t.Error("still serving after Run returned")
	}
	if err := e.Start(); err == nil {
		t.Error("Start after Close succeeded")
	}
}

func TestIngestMethodNotAllowed(t *testing.T) {
	e := startEmulator(t, Options{})
	r := get(t, e, "/dataCollectionRules/"+dcr.DefaultImmutableID+"/streams/"+dcr.DefaultStream+"?api-version="+APIVersion, nil)
	checkServiceError(t, r, http.StatusMethodNotAllowed, "MethodNotAllowed")
	if r.Header.Get("Allow") != http.MethodPost {
		t.Errorf("Allow %q", r.Header.Get("Allow"))
	}
}

// A rule that gains a column keeps the rows stored before and adds the
// column to the table.
func TestStoreSchemaGrows(t *testing.T) {
	dir := seededDir(t)
	rule := func(cols string) *dcr.Rule {
		r, err := dcr.Parse([]byte(`{"properties":{"immutableId":"dcr-00000000000000000000000000000ccc",
		  "streamDeclarations":{"Custom-T":{"columns":[{"name":"TimeGenerated","type":"datetime"}` + cols + `]}},
		  "destinations":{"logAnalytics":[{"name":"ws","workspaceResourceId":"/subscriptions/x/resourceGroups/y/providers/Microsoft.OperationalInsights/workspaces/z"}]},
		  "dataFlows":[{"streams":["Custom-T"],"destinations":["ws"],"transformKql":"source","outputStream":"Custom-T_CL"}]}}`))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	e1 := startEmulator(t, Options{DataDir: dir, Rules: []*dcr.Rule{rule(`,{"name":"Aa","type":"string"}`)}})
	if r := (upload{body: []byte(`[{"Aa":"one"}]`), token: token(t, e1, "")}).send(t, e1); r.StatusCode != 204 {
		t.Fatalf("%d %s", r.StatusCode, r.body)
	}
	e1.Close()
	e2 := startEmulator(t, Options{DataDir: dir, Rules: []*dcr.Rule{rule(`,{"name":"Aa","type":"string"},{"name":"Bb","type":"long"}`)}})
	if r := (upload{body: []byte(`[{"Aa":"two","Bb":2}]`), token: token(t, e2, "")}).send(t, e2); r.StatusCode != 204 {
		t.Fatalf("%d %s", r.StatusCode, r.body)
	}
	rows, err := e2.Rows("T_CL", 10)
	if err != nil || len(rows) != 2 {
		t.Fatalf("rows %v %v", rows, err)
	}
	if rows[0]["Aa"] != "two" || rows[0]["Bb"] != int64(2) || rows[1]["Aa"] != "one" || rows[1]["Bb"] != nil {
		t.Errorf("rows %v", rows)
	}
}

// TestRunReturnsWhenServingFails: Run on an emulator started (and
// announced) by its caller returns as soon as the server dies, instead of
// waiting for a Ctrl-C that may never come.
func TestRunReturnsWhenServingFails(t *testing.T) {
	e, err := New(Options{Addr: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.Run(context.Background()) }()
	e.mu.Lock()
	ln := e.listener
	e.mu.Unlock()
	ln.Close() // the server's Serve fails
	select {
	case err := <-done:
		if err == nil {
			t.Error("Run returned nil after serving failed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run still waits for its context after the server died")
	}
}
