package emulator

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/ccfpush/ccfpush/internal/config"
)

func TestClient(t *testing.T) {
	e, err := New(Options{Addr: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	cfg := e.ConnectorConfig()
	c, err := ClientFor(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := c.Stats(ctx)
	if err != nil || st.URL != e.URL() {
		t.Fatalf("Stats: %+v, %v", st, err)
	}
	r, err := c.Rule(ctx, cfg.DCRImmutableID)
	if err != nil || r.ImmutableID != cfg.DCRImmutableID {
		t.Fatalf("Rule: %v, %v", r, err)
	}
	if _, err := c.Rule(ctx, "dcr-nope"); !errors.Is(err, ErrNoRule) {
		t.Errorf("unknown rule: %v", err)
	}
	if _, err := c.Rows(ctx, "Nope_CL", 5); err == nil {
		t.Error("rows of an unknown table: no error")
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	gone, err := ClientFor(&config.Config{DCEEndpoint: "https://" + addr, CAFile: e.CAFile()})
	if err != nil {
		t.Fatal(err)
	}
	var ue *UnreachableError
	if _, err := gone.Stats(ctx); !errors.As(err, &ue) {
		t.Errorf("nothing listening: %v, want an UnreachableError", err)
	}
	if _, err := NewClient("http://127.0.0.1:1", nil); err == nil {
		t.Error("an http URL was accepted")
	}
}
