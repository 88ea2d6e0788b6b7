// Command findings measures the scanner-report decoders of internal/finding
// on large synthetic reports, for bench/findings.sh (which runs it under
// /usr/bin/time -v for the peak RSS).
//
//	findings gen -format trivy|grype -size 200MB -o FILE
//	findings decode -from auto|trivy|grype|... [-records-path P] FILE|-
//
// decode reads the report as ccfpush send --from will (the same decoder,
// the same options) and prints one JSON line: format, records, bad
// elements, bytes read, seconds, findings per second and the peak live heap.
// Until --from is wired into ccfpush itself, this is how the decoding cost
// of a report is measured apart from the upload (bench/run.sh measures that).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ccfpush/ccfpush/internal/finding"
	"github.com/ccfpush/ccfpush/internal/finding/findingtest"
	"github.com/ccfpush/ccfpush/internal/record"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("findings: ")
	if len(os.Args) < 2 {
		log.Fatal("usage: findings gen|decode ...")
	}
	switch os.Args[1] {
	case "gen":
		gen(os.Args[2:])
	case "decode":
		decode(os.Args[2:])
	default:
		log.Fatalf("unknown command %q", os.Args[1])
	}
}

func gen(args []string) {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	format := fs.String("format", "trivy", "trivy or grype")
	size := fs.String("size", "200MB", "about how large, e.g. 20MB")
	out := fs.String("o", "", "output file")
	fs.Parse(args)
	n, err := parseSize(*size)
	if err != nil {
		log.Fatal(err)
	}
	write := map[string]func(io.Writer, int64, uint64) (findingtest.Summary, error){
		"trivy": findingtest.WriteTrivy,
		"grype": findingtest.WriteGrype,
	}[*format]
	if write == nil {
		log.Fatalf("-format %q: want trivy or grype", *format)
	}
	f, err := os.Create(*out)
	if err != nil {
		log.Fatal(err)
	}
	sum, err := write(f, n, 1)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %d findings, %d bytes\n", *out, sum.Findings, sum.Bytes)
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for suffix, m := range map[string]int64{"KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30} {
		if strings.HasSuffix(strings.ToUpper(s), suffix) {
			s, mult = s[:len(s)-2], m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("-size %q: want a size such as 200MB", s)
	}
	return n * mult, nil
}

// counter counts the bytes read.
type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func decode(args []string) {
	fs := flag.NewFlagSet("decode", flag.ExitOnError)
	from := fs.String("from", "auto", "input format")
	path := fs.String("records-path", "", "records path")
	fs.Parse(args)
	if fs.NArg() != 1 {
		log.Fatal("decode: one FILE or - for stdin")
	}
	var in io.Reader = os.Stdin
	name := "-"
	if fs.Arg(0) != "-" {
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			log.Fatal(err)
		}
		defer f.Close()
		in, name = f, fs.Arg(0)
	}
	format, err := finding.ParseFormat(*from)
	if err != nil {
		log.Fatal(err)
	}
	var src io.Reader = in
	var cnt *counter
	if name == "-" {
		cnt = &counter{r: in} // a pipe: count what is read
		src = cnt
	}
	d, err := finding.NewDecoder(src, finding.Options{Format: format, RecordsPath: *path, Source: name,
		OnNote: func(n finding.Note) { fmt.Fprintln(os.Stderr, n) }})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()

	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				metrics.Read(s)
				if v := s[0].Value.Uint64(); v > peak.Load() {
					peak.Store(v)
				}
			}
		}
	}()
	start := time.Now()
	records, bad := 0, 0
	for {
		_, err := d.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var re *record.Error
		if errors.As(err, &re) {
			bad++
			continue
		}
		if err != nil {
			log.Fatal(err)
		}
		records++
	}
	secs := time.Since(start).Seconds()
	close(done)
	bytes := int64(0)
	if cnt != nil {
		bytes = cnt.n
	} else if fi, err := os.Stat(name); err == nil {
		bytes = fi.Size()
	}
	json.NewEncoder(os.Stdout).Encode(map[string]any{
		"format": d.Format(), "records": records, "bad": bad, "bytes": bytes, "seconds": secs,
		"findings_per_s": float64(records) / secs, "mb_per_s": float64(bytes) / 1e6 / secs,
		"peak_live_heap_mb": float64(peak.Load()) / (1 << 20),
	})
}
