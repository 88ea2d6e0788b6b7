package emulator

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestDataDirPersistsAcrossRestarts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // created by New
	e1 := startEmulator(t, Options{DataDir: dir})
	ca1, err := os.ReadFile(filepath.Join(dir, caFileName))
	if err != nil {
		t.Fatal(err)
	}
	secret1 := e1.Apps()[0].Secret.Reveal()
	tok := token(t, e1, "")
	if err := e1.Close(); err != nil {
		t.Fatal(err)
	}

	for name, want := range map[string]os.FileMode{caKeyFileName: 0o600, signKeyFileName: 0o600, secretFileName: 0o600, caFileName: 0o644} {
		if got := fileMode(t, filepath.Join(dir, name)); got != want {
			t.Errorf("%s mode %v, want %v", name, got, want)
		}
	}
	if got := fileMode(t, dir); got != 0o700 {
		t.Errorf("data dir mode %v", got)
	}
	if len(secret1) != 40 || !strings.Contains(secret1, "8Q~") {
		t.Errorf("secret shape %d chars", len(secret1))
	}

	e2 := startEmulator(t, Options{DataDir: dir})
	ca2, _ := os.ReadFile(filepath.Join(dir, caFileName))
	if !bytes.Equal(ca1, ca2) {
		t.Error("CA changed across restarts")
	}
	if e2.Apps()[0].Secret.Reveal() != secret1 {
		t.Error("app secret changed across restarts")
	}
	// A client that trusts only the ca.pem read before the restart still
	// connects, and a token issued before the restart is still good.
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca1) {
		t.Fatal("ca.pem is not PEM")
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req := (upload{body: findings(t, 1, time.Now()), token: tok}).request(t, e2)
	if r := do(t, c, req); r.StatusCode != http.StatusNoContent {
		t.Errorf("old token after restart: %d %s", r.StatusCode, r.body)
	}
}

func TestServerCertificate(t *testing.T) {
	e := startEmulator(t, Options{})
	for _, host := range []string{"127.0.0.1", "localhost"} {
		u := strings.Replace(e.URL(), "127.0.0.1", host, 1)
		resp, err := client(e).Get(u + "/_emulator/stats")
		if err != nil {
			t.Errorf("%s: %v", host, err)
			continue
		}
		resp.Body.Close()
		if resp.TLS.Version < tls.VersionTLS12 {
			t.Errorf("TLS version %x", resp.TLS.Version)
		}
	}
	// TLS 1.1 is refused.
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.CAPool(), MaxVersion: tls.VersionTLS11}}}
	if resp, err := c.Get(e.URL() + "/_emulator/stats"); err == nil {
		resp.Body.Close()
		t.Error("TLS 1.1 accepted")
	}
}

func TestBrokenDataDir(t *testing.T) {
	t.Run("key without certificate", func(t *testing.T) {
		dir := seededDir(t)
		os.Remove(filepath.Join(dir, caFileName))
		if _, err := New(Options{DataDir: dir}); err == nil || !strings.Contains(err.Error(), "CA certificate") {
			t.Errorf("err %v", err)
		}
	})
	t.Run("certificate without key", func(t *testing.T) {
		dir := seededDir(t)
		os.Remove(filepath.Join(dir, caKeyFileName))
		if _, err := New(Options{DataDir: dir}); err == nil || !strings.Contains(err.Error(), "delete both") {
			t.Errorf("err %v", err)
		}
	})
	t.Run("garbage certificate", func(t *testing.T) {
		dir := seededDir(t)
		os.WriteFile(filepath.Join(dir, caFileName), []byte("nope"), 0o644)
		if _, err := New(Options{DataDir: dir}); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, caFileName)) {
			t.Errorf("err %v", err)
		}
	})
	t.Run("mismatched key", func(t *testing.T) {
		dir := seededDir(t)
		other := t.TempDir()
		if _, err := loadOrCreateAuthority(other, time.Now()); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(filepath.Join(other, caKeyFileName))
		os.WriteFile(filepath.Join(dir, caKeyFileName), b, 0o600)
		if _, err := New(Options{DataDir: dir}); err == nil || !strings.Contains(err.Error(), "does not belong") {
			t.Errorf("err %v", err)
		}
	})
	t.Run("expired CA", func(t *testing.T) {
		dir := seededDir(t)
		late := time.Now().Add(11 * 365 * 24 * time.Hour)
		if _, err := loadOrCreateAuthority(dir, late); err == nil || !strings.Contains(err.Error(), "expired") {
			t.Errorf("err %v", err)
		}
	})
}

func TestURLHost(t *testing.T) {
	e := startEmulator(t, Options{Addr: "localhost:0"})
	if !strings.HasPrefix(e.URL(), "https://localhost:") {
		t.Errorf("URL %s", e.URL())
	}
	// Listening on all interfaces is named by loopback in URLs (checked
	// without binding a public port).
	tests := []struct {
		host string
		addr *net.TCPAddr
		want string
	}{
		{"0.0.0.0", &net.TCPAddr{IP: net.IPv4zero, Port: 8443}, "127.0.0.1:8443"},
		{"", &net.TCPAddr{IP: net.IPv6unspecified, Port: 8443}, "[::1]:8443"},
		{"::1", &net.TCPAddr{IP: net.IPv6loopback, Port: 9}, "[::1]:9"},
		{"emulator.local", &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 9}, "emulator.local:9"},
	}
	for _, tt := range tests {
		if got := urlHost(tt.host, tt.addr); got != tt.want {
			t.Errorf("urlHost(%q, %v) = %q, want %q", tt.host, tt.addr, got, tt.want)
		}
	}
}
