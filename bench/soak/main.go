// Command soak measures the webhook daemon end to end, on loopback only:
// it runs the ccfpush emulator in-process, starts "ccfpush serve" (the
// binary given with -ccfpush) against it, posts records from -clients
// concurrent clients for -duration (or until -max-records), then waits for
// every acknowledged record to be stored by the emulator and reports:
//
//   - intake: records/s and requests/s acknowledged (202) by the webhook,
//     and the POST → 202 latency (the spool's fsync is in it);
//   - end to end: from the start of the POST to the row stored in the
//     emulator (its _ingested_at), p50/p90/p99/max, over every record;
//   - whether anything was lost or duplicated.
//
// Every record carries its post time (ScanId, Unix nanoseconds) and a
// unique FindingId. Everything is bounded: the load by -duration and
// -max-records, the drain by -drain-timeout, every request by a timeout.
//
//	soak -ccfpush bench/out/ccfpush -dir bench/out/soak-run [-duration 20s] [-clients 8] [-batch 50]
package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	_ "modernc.org/sqlite" // reads the emulator's store

	"github.com/ccfpush/ccfpush/internal/atomicfile"
	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/dcr"
	"github.com/ccfpush/ccfpush/internal/emulator"
)

const token = "soak-token-0123456789abcdef"

type options struct {
	bin          string
	dir          string
	duration     time.Duration
	maxRecords   int
	clients      int
	batch        int
	concurrency  int
	drainTimeout time.Duration
	latency      time.Duration
	failRate     string
	serveArgs    string
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("soak: ")
	var o options
	flag.StringVar(&o.bin, "ccfpush", "bench/out/ccfpush", "the ccfpush binary")
	flag.StringVar(&o.dir, "dir", "bench/out/soak-run", "work directory (emulator data, spool); emptied first")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "how long to post")
	flag.IntVar(&o.maxRecords, "max-records", 1_000_000, "stop posting after this many records")
	flag.IntVar(&o.clients, "clients", 8, "concurrent webhook clients")
	flag.IntVar(&o.batch, "batch", 50, "records per webhook request")
	flag.IntVar(&o.concurrency, "concurrency", 4, "serve --concurrency (uploads in flight)")
	flag.DurationVar(&o.drainTimeout, "drain-timeout", 90*time.Second, "how long to wait for the emulator to hold every record")
	flag.DurationVar(&o.latency, "latency", 0, "emulator latency per upload")
	flag.StringVar(&o.failRate, "fail-rate", "", "emulator fail rates, e.g. 503=0.05")
	flag.StringVar(&o.serveArgs, "serve-args", "", "more flags for ccfpush serve, space-separated")
	flag.Parse()
	if err := run(o); err != nil {
		log.Fatal(err)
	}
}

// result is what one run measured.
type result struct {
	Records, Requests, Refused, Errors int64
	Load                               time.Duration
	Drain                              time.Duration // after the load, until the last record was stored
	Intake                             []time.Duration
	E2E                                []time.Duration
	Rows, Distinct                     int
	Uploads                            float64
	Retries                            float64
	CPUSeconds                         float64 // of the serve process
	MaxRSSMB                           float64
}

func run(o options) error {
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return err
	}
	o.dir = dir
	if err := os.RemoveAll(o.dir); err != nil {
		return err
	}
	if err := os.MkdirAll(o.dir, 0o700); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	rates, err := emulator.ParseFailRates(o.failRate)
	if err != nil {
		return err
	}
	emu, err := emulator.New(emulator.Options{Addr: "127.0.0.1:0", DataDir: filepath.Join(o.dir, "emulator"),
		Faults: emulator.Faults{Latency: o.latency, FailRates: rates}})
	if err != nil {
		return err
	}
	if err := emu.Start(); err != nil {
		return err
	}
	defer emu.Close()
	cfg := emu.ConnectorConfig()
	cfgPath := filepath.Join(o.dir, "connector_config.json")
	if err := config.Save(cfgPath, &cfg); err != nil {
		return err
	}
	tokPath := filepath.Join(o.dir, "token")
	if err := atomicfile.WriteBytes(tokPath, 0o600, []byte(token)); err != nil {
		return err
	}

	args := []string{"--config", cfgPath, "--log-format", "json", "serve", "--addr", "127.0.0.1:0",
		"--token-file", tokPath, "--spool-dir", filepath.Join(o.dir, "spool"),
		"--concurrency", strconv.Itoa(o.concurrency)}
	args = append(args, strings.Fields(o.serveArgs)...)
	cmd := exec.Command(o.bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(o.dir, "serve.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			line := sc.Bytes()
			logFile.Write(append(line, '\n'))
			var m struct{ Msg, Addr string }
			if !sent && json.Unmarshal(line, &m) == nil && m.Msg == "listening" {
				addr <- m.Addr
				sent = true
			}
		}
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case <-time.After(30 * time.Second):
		return errors.New("ccfpush serve did not start; see " + logFile.Name())
	}

	res, err := load(ctx, o, base)
	if err != nil {
		return err
	}
	if err := waitStored(ctx, o, emu, res); err != nil {
		return err
	}
	if m, err := scrape(base + "/metrics"); err == nil {
		res.Uploads = m[`ccfpush_upload_requests_total{code="204"}`]
		res.Retries = m["ccfpush_upload_retries_total"]
		res.CPUSeconds = m["process_cpu_seconds_total"]
		res.MaxRSSMB = m["process_resident_memory_bytes"] / (1 << 20)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("ccfpush serve: %w", err)
	}
	if err := emu.Close(); err != nil { // its store is read next
		return err
	}
	if err := measureE2E(filepath.Join(o.dir, "emulator", "emulator.db"), res); err != nil {
		return err
	}
	report(os.Stdout, o, res)
	if res.Distinct != int(res.Records) {
		return fmt.Errorf("%d records acknowledged, %d arrived", res.Records, res.Distinct)
	}
	return nil
}

// load posts until the duration is over or max-records are acknowledged.
func load(ctx context.Context, o options, base string) (*result, error) {
	res := &result{}
	var (
		next     atomic.Int64 // next request number
		acked    atomic.Int64
		requests atomic.Int64
		refused  atomic.Int64
		errs     atomic.Int64
		mu       sync.Mutex
	)
	maxReq := int64(o.maxRecords / o.batch)
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: o.clients}}
	lctx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for range o.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			var body bytes.Buffer
			for lctx.Err() == nil {
				n := next.Add(1) - 1
				if n >= maxReq {
					break
				}
				for lctx.Err() == nil {
					t0 := time.Now()
					body.Reset()
					records(&body, n, o.batch, t0)
					req, _ := http.NewRequestWithContext(context.WithoutCancel(lctx), http.MethodPost, base+"/v1/records", bytes.NewReader(body.Bytes()))
					req.Header.Set("Authorization", "Bearer "+token)
					req.Header.Set("Content-Type", "application/json")
					resp, err := c.Do(req)
					if err != nil {
						errs.Add(1)
						time.Sleep(50 * time.Millisecond)
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == http.StatusAccepted {
						lat = append(lat, time.Since(t0))
						acked.Add(int64(o.batch))
						requests.Add(1)
						break
					}
					refused.Add(1)
					time.Sleep(100 * time.Millisecond)
				}
			}
			mu.Lock()
			res.Intake = append(res.Intake, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Load = time.Since(start)
	res.Records, res.Requests, res.Refused, res.Errors = acked.Load(), requests.Load(), refused.Load(), errs.Load()
	if res.Records == 0 {
		return nil, errors.New("no request was acknowledged")
	}
	return res, nil
}

// records writes the JSON array of request n: FindingIds soak-<k>, the
// post time in ScanId.
func records(b *bytes.Buffer, n int64, batch int, t0 time.Time) {
	ts := t0.UTC().Format(time.RFC3339)
	ns := strconv.FormatInt(t0.UnixNano(), 10)
	b.WriteByte('[')
	for i := range batch {
		if i > 0 {
			b.WriteByte(',')
		}
		k := n*int64(batch) + int64(i)
		fmt.Fprintf(b, `{"FindingId":"soak-%d","ScanId":"%s","TimeGenerated":"%s","Severity":"High","CvssScore":7.5,"Hostname":"host-%d","CveId":"CVE-2026-%05d","Description":"soak test record"}`,
			k, ns, ts, k%97, k%100000)
	}
	b.WriteByte(']')
}

// waitStored waits until the emulator holds as many rows as were acknowledged.
func waitStored(ctx context.Context, o options, emu *emulator.Emulator, res *result) error {
	start := time.Now()
	deadline := start.Add(o.drainTimeout)
	for {
		n, err := emu.Count(dcr.DefaultTable)
		if err != nil && !errors.Is(err, emulator.ErrUnknownTable) {
			return err
		}
		if n >= res.Records {
			res.Drain = time.Since(start)
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%d of %d acknowledged records stored after %s", n, res.Records, o.drainTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// measureE2E reads every row's post time and storage time from the
// emulator's SQLite store (after the emulator's writes are done).
func measureE2E(dbPath string, res *result) error {
	db, err := sql.Open("sqlite", "file:"+dbPath+"?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.Query(`SELECT "FindingId", "ScanId", "_ingested_at" FROM "` + dcr.DefaultTable + `"`)
	if err != nil {
		return fmt.Errorf("read the emulator's rows: %w", err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	for rows.Next() {
		var id, posted, stored string
		if err := rows.Scan(&id, &posted, &stored); err != nil {
			return err
		}
		res.Rows++
		if seen[id] {
			continue // a duplicate: its first copy counts
		}
		seen[id] = true
		ns, err := strconv.ParseInt(posted, 10, 64)
		if err != nil {
			return fmt.Errorf("row %s: ScanId %q", id, posted)
		}
		at, err := time.Parse(time.RFC3339Nano, stored)
		if err != nil {
			return fmt.Errorf("row %s: _ingested_at %q", id, stored)
		}
		res.E2E = append(res.E2E, at.Sub(time.Unix(0, ns)))
	}
	res.Distinct = len(seen)
	return rows.Err()
}

func scrape(url string) (map[string]float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
				out[line[:i]] = v
			}
		}
	}
	return out, sc.Err()
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(p / 100 * float64(len(d)-1))
	return d[i]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func report(w io.Writer, o options, r *result) {
	slices.Sort(r.Intake)
	slices.Sort(r.E2E)
	secs := r.Load.Seconds()
	cpu := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	fmt.Fprintf(w, "machine: %d cores (%s), %s/%s, %s\n", runtime.NumCPU(), cpu, runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Fprintf(w, "load: %d clients x %d records/request for %s; serve --concurrency %d; emulator latency %s, fail rates %q\n",
		o.clients, o.batch, r.Load.Round(time.Millisecond), o.concurrency, o.latency, o.failRate)
	fmt.Fprintf(w, "intake: %d records, %d requests acknowledged: %.0f records/s, %.0f requests/s; %d refused (503), %d errors\n",
		r.Records, r.Requests, float64(r.Records)/secs, float64(r.Requests)/secs, r.Refused, r.Errors)
	fmt.Fprintf(w, "intake latency (POST -> 202): p50 %s  p90 %s  p99 %s  max %s\n",
		ms(pct(r.Intake, 50)), ms(pct(r.Intake, 90)), ms(pct(r.Intake, 99)), ms(pct(r.Intake, 100)))
	fmt.Fprintf(w, "end to end (POST -> row stored): p50 %s  p90 %s  p99 %s  max %s\n",
		ms(pct(r.E2E, 50)), ms(pct(r.E2E, 90)), ms(pct(r.E2E, 99)), ms(pct(r.E2E, 100)))
	fmt.Fprintf(w, "drain after the load: %s; uploads %.0f (204), retries %.0f\n", r.Drain.Round(time.Millisecond), r.Uploads, r.Retries)
	fmt.Fprintf(w, "serve process: %.1f CPU-s (%.0f%% of one core over the load), RSS %.0f MB at the end\n",
		r.CPUSeconds, 100*r.CPUSeconds/(r.Load+r.Drain).Seconds(), r.MaxRSSMB)
	fmt.Fprintf(w, "records: %d acknowledged, %d distinct stored, %d rows (%d duplicates)\n", r.Records, r.Distinct, r.Rows, r.Rows-r.Distinct)
}
