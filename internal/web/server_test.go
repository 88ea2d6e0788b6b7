package web

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// TestRunReturnsWhenServingFails: Run on a started server returns as soon
// as the server dies, instead of waiting for a Ctrl-C that may never come.
func TestRunReturnsWhenServingFails(t *testing.T) {
	s, err := New(Options{ConfigPath: filepath.Join(t.TempDir(), "c.json"), WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ln); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background(), nil) }()
	ln.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Run returned nil after serving failed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run still waits for its context after the server died")
	}
}

// TestIsLoopbackHost moved here with the function (cli/ui_test.go).
func TestIsLoopbackHost(t *testing.T) {
	for _, h := range []string{"127.0.0.1", "localhost", "::1", "127.0.0.2"} {
		if !IsLoopbackHost(h) {
			t.Errorf("%s not loopback", h)
		}
	}
	for _, h := range []string{"", "0.0.0.0", "::", "10.0.0.1", "example.com"} {
		if IsLoopbackHost(h) {
			t.Errorf("%q counted as loopback", h)
		}
	}
}
