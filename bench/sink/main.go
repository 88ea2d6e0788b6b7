// Command sink is the benchmark's stand-in for Azure: a TLS endpoint on
// 127.0.0.1 serving the Entra token flow (openid-configuration, token)
// and the Logs Ingestion upload route, answering 204 as soon as the body is
// read (after -latency, if set). It creates a throwaway CA, writes it to
// -ca, and writes a connector configuration for ccfpush to -config; then it
// serves until killed (SIGTERM/SIGINT), printing request totals to stdout.
//
//	sink -dir bench/out [-latency 40ms] [-count]
//
// With "sink gen -n 100000 -format ndjson -o FILE" it writes generated test
// data instead (the findings of ccfpush generate, seeded).
package main

import (
	"bufio"
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ccfpush/ccfpush/internal/atomicfile"
	"github.com/ccfpush/ccfpush/internal/generate"
	"github.com/ccfpush/ccfpush/internal/record"
)

const (
	tenant = "00000000-0000-0000-0000-0000000000bb"
	client = "11111111-2222-3333-4444-5555555555bb"
	dcr    = "dcr-00000000000000000000000000000bb1"
	stream = "Custom-CVEBuster"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("sink: ")
	if len(os.Args) > 1 && os.Args[1] == "gen" {
		gen(os.Args[2:])
		return
	}
	dir := flag.String("dir", "bench/out", "where to write ca.pem and connector_config.json")
	latency := flag.Duration("latency", 0, "delay before each 204")
	count := flag.Bool("count", false, "gunzip bodies and count records (costs CPU on the shared machine)")
	flag.Parse()

	if err := os.MkdirAll(*dir, 0o755); err != nil {
		log.Fatal(err)
	}
	cert, caPEM, err := newCert()
	if err != nil {
		log.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		log.Fatal(err)
	}
	base := "https://" + ln.Addr().String()

	var requests, bodyBytes, records atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		t := base + "/" + r.PathValue("tenant")
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		json.NewEncoder(w).Encode(map[string]any{
			"token_endpoint": t + "/oauth2/v2.0/token", "authorization_endpoint": t + "/oauth2/v2.0/authorize",
			"issuer": t + "/v2.0", "jwks_uri": t + "/discovery/v2.0/keys",
		})
	})
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": 3599, "access_token": "bench-token"})
	})
	mux.HandleFunc("POST /dataCollectionRules/{dcr}/streams/{stream}", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer bench-token" {
			http.Error(w, `{"error":{"code":"InvalidToken","message":"no token"}}`, http.StatusUnauthorized)
			return
		}
		var n int64
		if *count {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, `{"error":{"code":"InvalidContentEncoding","message":"bad gzip"}}`, http.StatusBadRequest)
				return
			}
			var arr []json.RawMessage
			if err := json.NewDecoder(zr).Decode(&arr); err != nil {
				http.Error(w, `{"error":{"code":"InvalidPayload","message":"bad json"}}`, http.StatusBadRequest)
				return
			}
			records.Add(int64(len(arr)))
			n = r.ContentLength
		} else {
			n, _ = io.Copy(io.Discard, r.Body)
		}
		if *latency > 0 {
			time.Sleep(*latency)
		}
		requests.Add(1)
		bodyBytes.Add(n)
		w.WriteHeader(http.StatusNoContent)
	})

	caFile := filepath.Join(*dir, "ca.pem")
	if err := atomicfile.WriteBytes(caFile, 0o644, caPEM); err != nil {
		log.Fatal(err)
	}
	abs, _ := filepath.Abs(caFile)
	cfg, _ := json.MarshalIndent(map[string]string{
		"tenant_id": tenant, "application_id": client, "application_secret": "bench-secret-value",
		"dce_endpoint": base, "dcr_immutable_id": dcr, "stream_name": stream,
		"authority_host": base, "ca_file": abs,
	}, "", "  ")
	cfgFile := filepath.Join(*dir, "connector_config.json")
	// Written last, atomically: its presence means the sink is ready.
	if err := atomicfile.WriteBytes(cfgFile, 0o600, cfg); err != nil {
		log.Fatal(err)
	}
	log.Printf("listening on %s (latency %s); config %s", base, *latency, cfgFile)

	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			log.Fatal(err)
		}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	srv.Close()
	fmt.Printf("requests=%d body_bytes=%d records=%d\n", requests.Load(), bodyBytes.Load(), records.Load())
}

// newCert makes a CA and a server certificate for 127.0.0.1 signed by it.
func newCert() (tls.Certificate, []byte, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ccfpush bench sink CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), nil
}

// gen writes seeded findings.
func gen(args []string) {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	n := fs.Int("n", 100_000, "records")
	format := fs.String("format", "ndjson", "json or ndjson")
	out := fs.String("o", "", "output file")
	fs.Parse(args)
	f, err := os.Create(*out)
	if err != nil {
		log.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	opts := generate.DefaultOptions()
	opts.N, opts.Seed, opts.Format = *n, 1, record.Format(*format)
	sum, err := generate.Write(w, opts)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %d records, %d bytes\n", *out, sum.Records, sum.Bytes)
}
