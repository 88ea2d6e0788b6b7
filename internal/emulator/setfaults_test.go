package emulator

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSetFaults(t *testing.T) {
	e := startEmulator(t, Options{})
	tok := token(t, e, "")
	body := findings(t, 1, time.Now())
	status := func() int {
		t.Helper()
		return (upload{body: body, token: tok}).send(t, e).StatusCode
	}

	if got := status(); got != http.StatusNoContent {
		t.Fatalf("before: status %d, want 204", got)
	}
	// An outage begins...
	if err := e.SetFaults(Faults{Force: Force{Ingest: "503"}, RetryAfter: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	r := (upload{body: body, token: tok}).send(t, e)
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") != "2" {
		t.Fatalf("during: status %d Retry-After %q, want 503 and 2", r.StatusCode, r.Header.Get("Retry-After"))
	}
	if got := e.Faults(); got.Force.Ingest != "503" {
		t.Errorf("Faults() = %+v", got)
	}
	// ...and ends.
	if err := e.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	if got := status(); got != http.StatusNoContent {
		t.Fatalf("after: status %d, want 204", got)
	}

	// Fail rates take effect too; the caller's map is copied.
	rates := map[int]float64{429: 1}
	if err := e.SetFaults(Faults{FailRates: rates}); err != nil {
		t.Fatal(err)
	}
	rates[429] = 0
	if got := status(); got != http.StatusTooManyRequests {
		t.Fatalf("fail rate 429=1: status %d", got)
	}
	e.Faults().FailRates[429] = 0 // a copy as well
	if got := status(); got != http.StatusTooManyRequests {
		t.Fatalf("after changing the returned map: status %d", got)
	}

	// Token answers follow as well.
	if err := e.SetFaults(Faults{Force: Force{Token: 7000215}}); err != nil {
		t.Fatal(err)
	}
	if r := tokenForm(t, e, e.Apps()[0].TenantID, appForm(e.Apps()[0]), nil); r.StatusCode != http.StatusUnauthorized && r.StatusCode != http.StatusBadRequest {
		t.Errorf("forced token answer: status %d", r.StatusCode)
	} else if !strings.Contains(string(r.body), "7000215") {
		t.Errorf("forced token answer: %s", r.body)
	}
}

func TestSetFaultsRefusesInvalid(t *testing.T) {
	e := startEmulator(t, Options{Faults: Faults{Latency: time.Millisecond}})
	for _, f := range []Faults{
		{FailRates: map[int]float64{404: 0.5}},
		{ResetRate: 2},
		{Force: Force{Ingest: "402"}},
		{Latency: -time.Second},
	} {
		if err := e.SetFaults(f); err == nil {
			t.Errorf("SetFaults(%+v) = nil, want an error", f)
		}
	}
	if got := e.Faults(); got.Latency != time.Millisecond {
		t.Errorf("a refused SetFaults changed the faults: %+v", got)
	}
}

// TestSetFaultsConcurrent changes the faults while uploads run; the race
// detector checks the locking.
func TestSetFaultsConcurrent(t *testing.T) {
	e := startEmulator(t, Options{})
	tok := token(t, e, "")
	body := findings(t, 1, time.Now())
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			f := Faults{}
			if i%2 == 0 {
				f = Faults{FailRates: map[int]float64{503: 0.5}, Latency: time.Millisecond}
			}
			if err := e.SetFaults(f); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	for range 20 {
		switch got := (upload{body: body, token: tok}).send(t, e).StatusCode; got {
		case http.StatusNoContent, http.StatusServiceUnavailable:
		default:
			t.Errorf("status %d, want 204 or 503", got)
		}
	}
	close(stop)
	wg.Wait()
}
