package console

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
)

func TestPrompterPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	var prompts bytes.Buffer
	p := NewPrompter(r, &prompts)

	w.WriteString("first line\r\nsecond")
	got, err := p.ReadLine(context.Background(), "Q1: ")
	if err != nil || got != "first line" {
		t.Fatalf("ReadLine = %q, %v", got, err)
	}
	// Ctrl-C (ctx cancelled) ends a read that is waiting for input, and
	// one asked for after it.
	ctx, cancel := context.WithCancel(context.Background())
	p2 := NewPrompter(r, &prompts)
	prompted := make(chan struct{})
	var once sync.Once
	p2.w = writerFunc(func(b []byte) (int, error) { once.Do(func() { close(prompted) }); return len(b), nil })
	go func() { <-prompted; cancel() }()
	if _, err := p2.ReadLine(ctx, "Q2: "); !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadLine(cancelled) = %v, want context.Canceled", err)
	}
	if _, err := p2.ReadLine(ctx, "Q3: "); !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadLine(after cancel) = %v, want context.Canceled", err)
	}
	// The secret is read only from a terminal (echo off); a pipe is refused.
	if _, err := p.ReadSecret(context.Background(), "S: "); err == nil {
		t.Fatal("ReadSecret on a pipe = nil error")
	}
	if !strings.Contains(prompts.String(), "Q1: ") {
		t.Errorf("prompt not written: %q", prompts.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
