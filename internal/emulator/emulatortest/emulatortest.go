// Package emulatortest starts emulators for tests: each on a free loopback
// port with a data directory of its own, all with one CA and one token
// signing key made once per test binary (RSA keys are slow under -race).
package emulatortest

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ccfpush/ccfpush/internal/atomicfile"
	"github.com/ccfpush/ccfpush/internal/emulator"
)

// keyFiles are the emulator's key files that are slow to make; the
// emulator makes whatever else its data directory lacks.
var keyFiles = []string{"ca.pem", "ca-key.pem", "signing-key.pem"}

var (
	keysOnce sync.Once
	keys     map[string][]byte
	keysErr  error
)

// Start starts an emulator with opts (its DataDir and Addr are set here)
// and closes it when the test ends.
func Start(t testing.TB, opts emulator.Options) *emulator.Emulator {
	t.Helper()
	keysOnce.Do(func() { keys, keysErr = makeKeys() })
	if keysErr != nil {
		t.Fatal(keysErr)
	}
	opts.DataDir, opts.Addr = t.TempDir(), "127.0.0.1:0"
	for name, b := range keys {
		if err := atomicfile.WriteBytes(filepath.Join(opts.DataDir, name), 0o600, b); err != nil {
			t.Fatal(err)
		}
	}
	e, err := emulator.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// makeKeys has an emulator make its keys in a directory removed after
// they are read.
func makeKeys() (map[string][]byte, error) {
	dir, err := os.MkdirTemp("", "emulator-keys-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	e, err := emulator.New(emulator.Options{DataDir: dir, Addr: "127.0.0.1:0"})
	if err != nil {
		return nil, err
	}
	if err := e.Close(); err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(keyFiles))
	for _, name := range keyFiles {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		out[name] = b
	}
	return out, nil
}
