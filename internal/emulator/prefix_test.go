package emulator

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/dcr"
)

// A dce_endpoint with a path: Azure serves ingestion at the endpoint's
// root and answers 404 to anything before /dataCollectionRules/, so the
// emulator does too, and "config validate" refuses the endpoint before
// anything is sent.
func TestEndpointWithPath(t *testing.T) {
	clock := newFakeClock()
	e := startEmulator(t, Options{Clock: clock.Now})
	tok := token(t, e, "")
	body := findings(t, 3, clock.Now())
	for _, prefix := range []string{"/dce1", "/a/b", "/dataCollectionRules/x/streams/y"} {
		r := upload{prefix: prefix, body: body, token: tok}.send(t, e)
		if r.StatusCode != http.StatusNotFound {
			t.Fatalf("prefix %s: status %d, want 404: %s", prefix, r.StatusCode, r.body)
		}
		if r.Header.Get("x-ms-error-code") != "NotFound" || r.Header.Get("x-ms-request-id") == "" {
			t.Errorf("prefix %s: headers %v", prefix, r.Header)
		}
		errObj, _ := r.json(t)["error"].(map[string]any)
		if errObj["code"] != "NotFound" || !strings.Contains(errObj["message"].(string), "drop ") {
			t.Errorf("prefix %s: body %s, want Azure's error shape naming the path to drop", prefix, r.body)
		}
	}
	if n, err := e.Count(dcr.DefaultTable); err != nil && !errors.Is(err, ErrUnknownTable) || n != 0 {
		t.Errorf("%d rows stored (%v), want none", n, err)
	}
	// Without the path the same upload is accepted.
	if r := (upload{body: body, token: tok}).send(t, e); r.StatusCode != http.StatusNoContent {
		t.Fatalf("no prefix: %d %s", r.StatusCode, r.body)
	}

	cfg := e.ConnectorConfig()
	cfg.CAFile = "" // checked on disk; not what this test is about
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the emulator's configuration: %v", err)
	}
	cfg.DCEEndpoint += "/dce1"
	var verrs config.ValidationErrors
	if err := cfg.Validate(); !errors.As(err, &verrs) || verrs.For(config.KeyDCEEndpoint) == nil {
		t.Fatalf("Validate = %v, want an error on dce_endpoint", err)
	}
	if rule := verrs.For(config.KeyDCEEndpoint).Rule; !strings.Contains(rule, "write "+e.URL()+";") {
		t.Errorf("rule %q does not name the fix %s", rule, e.URL())
	}
}
