package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ccfpush/ccfpush/internal/generate"
)

const generateTestNow = "2025-06-01T12:00:00Z"

// generateMain runs ccfpush with args and returns exit code, stdout, stderr.

// generateNoTemp fails if a temporary file was left in dir.
func generateNoTemp(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestGenerateDefaults(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	code, stdout, stderr := runMain(t, context.Background(), "", "generate", "--seed", "42", "--now", generateTestNow).all()
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	data, err := os.ReadFile("cvebuster_data.json")
	if err != nil {
		t.Fatal(err)
	}
	var recs []map[string]any
	if err := json.Unmarshal(data, &recs); err != nil {
		t.Fatalf("not a JSON array: %v", err)
	}
	if len(recs) != 500 || recs[0]["ScannerName"] != "CVEBuster" {
		t.Fatalf("%d records, first %v", len(recs), recs[0])
	}
	want := fmt.Sprintf("wrote 500 records (150 recent, 350 old) to cvebuster_data.json, %.0f KB, seed 42\n", float64(len(data))/1024)
	if stderr != want {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
	if stdout != "" {
		t.Errorf("stdout %q, want nothing", stdout)
	}
	fi, _ := os.Stat("cvebuster_data.json")
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode().Perm())
	}
	generateNoTemp(t, dir)

	// The same seed and time give the same bytes, as the package promises.
	var direct bytes.Buffer
	now, _ := time.Parse(time.RFC3339, generateTestNow)
	if _, err := generate.Write(&direct, generate.Options{N: 500, RecentRatio: 0.3, RecentWindow: generate.DefaultRecentWindow, Seed: 42, Now: now}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(direct.Bytes(), data) {
		t.Error("the command's output differs from generate.Write with the same options")
	}
}

func TestGenerateFormats(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name   string
		file   string
		args   []string
		ndjson bool
	}{
		{"ndjson from extension", "a.ndjson", nil, true},
		{"jsonl from extension", "a.JSONL", nil, true},
		{"json by default", "a.json", nil, false},
		{"explicit ndjson", "b.json", []string{"--format", "ndjson"}, true},
		{"explicit json wins over extension", "b.ndjson", []string{"--format", "json"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.file)
			args := append([]string{"generate", "-n", "40", "-o", path, "--seed", "1"}, tt.args...)
			if code, _, stderr := runMain(t, context.Background(), "", args...).all(); code != ExitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			data, _ := os.ReadFile(path)
			if tt.ndjson {
				lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
				if len(lines) != 40 || !json.Valid([]byte(lines[0])) {
					t.Errorf("%d NDJSON lines", len(lines))
				}
			} else if !strings.HasPrefix(string(data), "[\n{") || !json.Valid(data) {
				t.Errorf("not a JSON array: %.40q", data)
			}
		})
	}
}

func TestGenerateStdout(t *testing.T) {
	code, stdout, stderr := runMain(t, context.Background(), "", "generate", "-n", "5", "-o", "-", "--format", "ndjson", "--seed", "3").all()
	if code != ExitOK || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if n := strings.Count(stdout, "\n"); n != 5 {
		t.Errorf("%d lines on stdout", n)
	}
}

func TestGenerateOutputJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.json")
	code, stdout, stderr := runMain(t, context.Background(), "", "generate", "-n", "10", "--recent-ratio", "0.5", "-o", path, "--seed", "9", "--output", "json").all()
	if code != ExitOK || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var got generateSummaryJSON
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("stdout %q: %v", stdout, err)
	}
	fi, _ := os.Stat(path)
	want := generateSummaryJSON{Summary: generate.Summary{Records: 10, Recent: 5, Old: 5, Bytes: fi.Size(), Seed: 9}, File: path, Format: "json"}
	if got != want {
		t.Errorf("summary %+v, want %+v", got, want)
	}
}

func TestGenerateRandomSeedIsRepeatable(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")
	code, _, stderr := runMain(t, context.Background(), "", "generate", "-n", "50", "-o", a, "--now", generateTestNow).all()
	if code != ExitOK {
		t.Fatal(stderr)
	}
	m := regexp.MustCompile(`, seed (\d+)\n$`).FindStringSubmatch(stderr)
	if m == nil || m[1] == "0" {
		t.Fatalf("no seed in %q", stderr)
	}
	if code, _, stderr := runMain(t, context.Background(), "", "generate", "-n", "50", "-o", b, "--now", generateTestNow, "--seed", m[1]).all(); code != ExitOK {
		t.Fatal(stderr)
	}
	da, _ := os.ReadFile(a)
	db, _ := os.ReadFile(b)
	if !bytes.Equal(da, db) {
		t.Error("re-running with the printed seed gave different output")
	}
}

func TestGenerateReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "data.json")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runMain(t, context.Background(), "", "generate", "-n", "3", "-o", path).all(); code != ExitOK {
		t.Fatal(stderr)
	}
	data, _ := os.ReadFile(path)
	if !json.Valid(data) {
		t.Errorf("file not replaced: %.40q", data)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600: a replaced file keeps its mode", fi.Mode().Perm())
	}
	generateNoTemp(t, dir)
}

func TestGenerateErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"negative count", []string{"-n", "-1"}, ExitUsage, "--count -1: want 0 or more"},
		{"ratio too big", []string{"--recent-ratio", "1.5"}, ExitUsage, "--recent-ratio 1.5: want a number from 0 to 1"},
		{"ratio negative", []string{"--recent-ratio", "-0.1"}, ExitUsage, "--recent-ratio -0.1"},
		{"zero window", []string{"--recent-window", "0s"}, ExitUsage, "--recent-window 0s: want a positive duration"},
		{"bad format", []string{"--format", "xml"}, ExitUsage, `--format "xml": want json or ndjson`},
		{"bad output", []string{"--output", "yaml"}, ExitUsage, `--output "yaml": want text or json`},
		{"bad now", []string{"--now", "yesterday"}, ExitUsage, `--now "yesterday": want an RFC 3339 time`},
		{"json summary on stdout data", []string{"-o", "-", "--output", "json"}, ExitUsage, "--output json prints the summary on stdout"},
		{"json summary on /dev/stdout data", []string{"-o", "/dev/stdout", "--output", "json"}, ExitUsage, "which -o /dev/stdout uses for the data"},
		{"empty out", []string{"-o", ""}, ExitUsage, "-o/--out: want a file name"},
		{"out is a directory", []string{"-o", dir}, ExitUsage, "is a directory"},
		{"not a number", []string{"-n", "many"}, ExitUsage, "invalid argument"},
		{"missing directory", []string{"-o", filepath.Join(dir, "nope", "f.json")}, ExitFailure, filepath.Join(dir, "nope")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runMain(t, context.Background(), "", append([]string{"generate"}, tt.args...)...).all()
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, tt.code, tt.want)
			}
			// --output json prints the error as its one object.
			if json := strings.Contains(strings.Join(tt.args, " "), "--output json"); stdout != "" != json ||
				json && !strings.HasPrefix(stdout, `{"exit_code":2,"error":{"kind":"usage","message":"--output json prints the summary on stdout`) {
				t.Errorf("stdout %q", stdout)
			}
		})
	}
	generateNoTemp(t, dir)
}

func TestGenerateInterrupted(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "big.json")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := runMain(t, ctx, "", "generate", "-n", "100000", "-o", path)
	if r.code != ExitFailure || !strings.Contains(r.stderr, "context canceled") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("interrupted run left %s (%v)", path, err)
	}
	generateNoTemp(t, dir)
}
