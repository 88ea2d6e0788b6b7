// Package console is what ccfpush knows about the terminal it runs in:
// whether a stream is a terminal (progress lines and prompts only there),
// whether to use colour, and a Prompter that reads answers, secrets without
// echo, and gives up at once when the context ends (Ctrl-C).
package console

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/term"
)

// NewLogger returns the logger of a run writing to w: level debug, info,
// warn or error; format text or json. An error names what is wrong as
// "level" or "format".
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("format %q: want text or json", format)
}

// IsTerminal reports whether s (a reader or a writer) is a terminal.
func IsTerminal(s any) bool {
	f, ok := s.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Color reports whether to colour output on w: only on a terminal, and not
// when NO_COLOR is set (https://no-color.org) or the terminal is dumb.
func Color(w io.Writer, getenv func(string) string) bool {
	if !IsTerminal(w) {
		return false
	}
	if getenv != nil && (getenv("NO_COLOR") != "" || getenv("TERM") == "dumb") {
		return false
	}
	return true
}

// Prompter prompts on w and reads answers from a terminal, lines as typed
// and secrets without echo.
// Reads run in a goroutine so that Ctrl-C (which cancels ctx: main catches
// SIGINT) ends the prompt at once instead of waiting for Enter, and the
// terminal's echo is restored if it ends during the secret.
type Prompter struct {
	in *os.File
	r  *bufio.Reader
	w  io.Writer
}

// NewPrompter prompts on w and reads from in, a terminal.
func NewPrompter(in *os.File, w io.Writer) *Prompter {
	return &Prompter{in: in, r: bufio.NewReader(in), w: w}
}

type readResult struct {
	s   string
	err error
}

func (t *Prompter) read(ctx context.Context, prompt string, secret bool) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	fmt.Fprint(t.w, prompt)
	fd := int(t.in.Fd())
	var saved *term.State
	if secret {
		var err error
		if saved, err = term.GetState(fd); err != nil {
			return "", fmt.Errorf("terminal state: %w", err)
		}
	}
	done := make(chan readResult, 1)
	go func() {
		if secret {
			b, err := term.ReadPassword(fd)
			done <- readResult{string(b), err}
			return
		}
		s, err := t.r.ReadString('\n')
		if errors.Is(err, io.EOF) && s != "" {
			err = nil
		}
		done <- readResult{strings.TrimRight(s, "\r\n"), err}
	}()
	select {
	case r := <-done:
		if secret {
			fmt.Fprintln(t.w) // the user's Enter was not echoed
		}
		return r.s, r.err
	case <-ctx.Done():
		if saved != nil {
			_ = term.Restore(fd, saved)
		}
		fmt.Fprintln(t.w)
		return "", ctx.Err()
	}
}

// ReadLine prompts and reads one line, without its line ending.
func (t *Prompter) ReadLine(ctx context.Context, prompt string) (string, error) {
	return t.read(ctx, prompt, false)
}

// ReadSecret prompts and reads one line with echo off; it fails on
// anything but a terminal.
func (t *Prompter) ReadSecret(ctx context.Context, prompt string) (string, error) {
	return t.read(ctx, prompt, true)
}

// Shorten puts s on one line of at most n runes, ending in "…" when cut.
func Shorten(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// OpenBrowser opens url in the desktop's browser (the platform's URL
// opener), without waiting for it.
func OpenBrowser(url string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }() // reap it
	return nil
}

// CountingWriter counts the bytes written through it to W: a command can
// tell whether it printed anything.
type CountingWriter struct {
	W io.Writer
	N int64
}

func (c *CountingWriter) Write(p []byte) (int, error) {
	n, err := c.W.Write(p)
	c.N += int64(n)
	return n, err
}
