package destination

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/ingest"
)

type nopUploader struct{ stream string }

func (nopUploader) Upload(context.Context, []byte, string) error { return nil }

func newUp(c *config.Config) (ingest.Uploader, error) { return nopUploader{c.StreamName}, nil }

func multi() *config.Config {
	return &config.Config{DCEEndpoint: "https://x.ingest.monitor.azure.com", DCRImmutableID: "dcr-0123456789abcdef0123456789abcdef",
		StreamName: "Custom-Findings", Destinations: []config.Destination{
			{Name: "assets", RouteField: "kind", RouteValue: "asset", Values: config.Config{StreamName: "Custom-Assets"}}}}
}

func TestForSend(t *testing.T) {
	// Without destinations: the one destination, as always.
	one := multi()
	one.Destinations = nil
	s, up, err := ForSend(one, "", true, newUp)
	if err != nil || s.Routing != nil || up.(nopUploader).stream != "Custom-Findings" || s.DeadLetter("", "d.json") != "" {
		t.Fatalf("one destination: %+v %v %v", s, up, err)
	}

	// With destinations: the lanes, default first, each its uploader.
	s, up, err = ForSend(multi(), "", false, newUp)
	if err != nil || up != nil || s.Routing == nil || len(s.Routing.Lanes) != 2 || s.Routing.Default != 0 {
		t.Fatalf("routed: %+v %v %v", s, up, err)
	}
	if l := s.Routing.Lanes[1]; l.Name != "assets" || l.Up.(nopUploader).stream != "Custom-Assets" {
		t.Errorf("lane 1: %+v", l)
	}
	if i, err := s.Routing.Route([]byte(`{"kind":"asset"}`)); err != nil || i != 1 {
		t.Errorf("route asset: %d %v", i, err)
	}

	// --destination NAME: that one alone, its dead-letter file named after it.
	s, up, err = ForSend(multi(), "assets", false, newUp)
	if err != nil || s.Routing != nil || up.(nopUploader).stream != "Custom-Assets" {
		t.Fatalf("--destination assets: %+v %v %v", s, up, err)
	}
	if got := s.DeadLetter("", "d.json"); got != "d.json.assets.failed.ndjson" {
		t.Errorf("dead letter %q", got)
	}
	if got := s.DeadLetter("mine.ndjson", "d.json"); got != "mine.ndjson" {
		t.Errorf("--dead-letter given: %q", got)
	}

	// --check/--verify read the default destination only.
	if _, _, err := ForSend(multi(), "", true, newUp); err == nil || !strings.Contains(err.Error(), "--destination") {
		t.Errorf("checks with several destinations: %v", err)
	}
	if _, _, err := ForSend(multi(), "assets", true, newUp); err == nil {
		t.Error("checks of a destination other than the default: no error")
	}
	if _, _, err := ForSend(multi(), "default", true, newUp); err != nil {
		t.Errorf("checks of the default destination: %v", err)
	}

	var ue *UnknownError
	if _, _, err := ForSend(multi(), "nope", false, newUp); !errors.As(err, &ue) || strings.Join(ue.Names, ",") != "default,assets" {
		t.Errorf("unknown destination: %v", err)
	}
	bad := func(*config.Config) (ingest.Uploader, error) { return nil, errors.New("boom") }
	if _, _, err := ForSend(multi(), "", false, bad); err == nil || !strings.Contains(err.Error(), "destination default: boom") {
		t.Errorf("an uploader that cannot be built: %v", err)
	}
}

// A destination's dead-letter file, named after it, is refused when it
// is a connector configuration.
func TestCheckOutputs(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "d.json")
	cfgText := `{"tenant_id":"72f988bf-86f1-41af-91ab-2d7cd011db47","application_id":"11111111-2222-3333-4444-555555555555",
 "application_secret":"Qx48Q~s3cr3t-VALUE.that_must_never_leak~AbCd","dce_endpoint":"https://x.ingest.monitor.azure.com",
 "dcr_immutable_id":"dcr-0123456789abcdef0123456789abcdef","stream_name":"Custom-X"}`
	s, _, err := ForSend(multi(), "", false, newUp)
	if err != nil {
		t.Fatal(err)
	}
	job := &ingest.Job{Name: data, Routing: s.Routing}
	if err := s.CheckOutputs(job, ""); err != nil {
		t.Fatalf("no file yet: %v", err)
	}
	if err := os.WriteFile(data+".assets.failed.ndjson", []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	var oe *config.OutputError
	if err := s.CheckOutputs(job, ""); !errors.As(err, &oe) || !strings.Contains(err.Error(), "destination assets") {
		t.Errorf("a configuration as assets' dead-letter file: %v", err)
	}
}
