package route

import (
	"errors"
	"strings"
	"testing"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/ingest"
)

func targets(def bool) []config.Target {
	var ts []config.Target
	if def {
		ts = append(ts, config.Target{Name: "default", Index: -1})
	}
	return append(ts,
		config.Target{Name: "assets", Index: 0, Route: config.Route{Field: "kind", Value: "asset"}},
		config.Target{Name: "scans", Index: 1, Route: config.Route{Field: "type", Value: "scans"}},
		config.Target{Name: "late", Index: 2, Route: config.Route{Field: "kind", Value: "late"}},
		config.Target{Name: "byname", Index: 3},
	)
}

func TestRoute(t *testing.T) {
	r := New(targets(true))
	tests := []struct {
		rec  string
		want string
	}{
		{`{"kind":"asset","type":"scans"}`, "assets"}, // the first matching rule wins
		{`{"kind":"finding","type":"scans"}`, "scans"},
		{`{"kind":"late"}`, "late"},
		{`{"kind":"Asset"}`, "default"}, // compared exactly
		{`{"nested":{"kind":"asset"}}`, "default"},
		{`{}`, "default"},
	}
	for _, tt := range tests {
		i, err := r.Route([]byte(tt.rec))
		if err != nil || r.Names()[i] != tt.want {
			t.Errorf("Route(%s) = %d, %v; want %s", tt.rec, i, err, tt.want)
		}
	}
	if r.Single() || r.Default() != 0 {
		t.Errorf("Single() = %v, Default() = %d", r.Single(), r.Default())
	}
}

func TestRouteWithoutDefault(t *testing.T) {
	r := New(targets(false))
	if i, err := r.Route([]byte(`{"kind":"asset"}`)); err != nil || i != 0 {
		t.Fatalf("Route = %d, %v", i, err)
	}
	_, err := r.Route([]byte(`{"kind":"x"}`))
	if !errors.Is(err, ErrNoRoute) || !strings.Contains(err.Error(), `kind = "asset" → assets`) {
		t.Fatalf("Route = %v, want ErrNoRoute naming the rules", err)
	}
}

func TestFixed(t *testing.T) {
	names := New(targets(false)).Names()
	r, ok := Fixed(names, "byname")
	if !ok || !r.Single() {
		t.Fatal("Fixed(byname) not single")
	}
	if i, err := r.Route([]byte(`{"kind":"asset"}`)); err != nil || names[i] != "byname" {
		t.Fatalf("Route = %d, %v", i, err)
	}
	if _, ok := Fixed(names, "nope"); ok {
		t.Fatal("Fixed(nope) ok")
	}
}

func BenchmarkRoute(b *testing.B) {
	r := New(targets(true))
	rec := []byte(`{"FindingId":"f-1","Severity":"High","Description":"a long description of the finding","Tags":["a","b"],"Asset":{"Host":"h","Ip":"10.0.0.1"},"kind":"finding","type":"other"}`)
	for b.Loop() {
		r.Route(rec)
	}
}

// A record an intake took for a destination goes there whatever it holds;
// one addressed to a destination the configuration lost has none.
func TestRouteItem(t *testing.T) {
	r := New(targets(false))
	src := Addressed("watch:inventory.json", "scans")
	if name, intake, ok := AddressedTo(src); !ok || name != "scans" || intake != "watch:inventory.json" {
		t.Fatalf("AddressedTo(%q) = %q, %q, %v", src, name, intake, ok)
	}
	if i, err := r.RouteItem(src, []byte(`{"kind":"asset"}`)); err != nil || r.Names()[i] != "scans" {
		t.Errorf("addressed: %d, %v", i, err)
	}
	if i, err := r.RouteItem("webhook", []byte(`{"kind":"asset"}`)); err != nil || r.Names()[i] != "assets" {
		t.Errorf("by rule: %d, %v", i, err)
	}
	if _, err := r.RouteItem(Addressed("webhook", "gone"), []byte(`{"kind":"asset"}`)); !errors.Is(err, ErrNoRoute) || !strings.Contains(err.Error(), `"gone"`) {
		t.Errorf("addressed to a lost destination: %v", err)
	}
	if _, _, ok := AddressedTo("watch:a.json"); ok {
		t.Error("a plain source is addressed")
	}
}

// The summary's name of the default destination is the configuration's.
func TestDefaultName(t *testing.T) {
	if ingest.DefaultDestinationName != config.DefaultDestination {
		t.Errorf("ingest says %q, config %q", ingest.DefaultDestinationName, config.DefaultDestination)
	}
}
