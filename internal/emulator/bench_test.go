package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// BenchmarkIngest measures one gzip upload of 500 findings (the old tool's
// whole data set) over TLS: auth, gunzip, parse, DCR, SQLite insert.
func BenchmarkIngest(b *testing.B) {
	e := startEmulator(b, Options{})
	body := gz(b, findings(b, 500, time.Now()))
	u := upload{body: body, token: token(b, e, ""), encoding: "gzip"}
	c := client(e)
	b.SetBytes(int64(len(findings(b, 500, time.Now()))))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := c.Do(u.request(b, e))
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	b.ReportMetric(float64(500*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkQueryVerifyBatch measures one verify-shaped query — a thousand
// keys looked up and counted — over 100,000 stored rows, through the
// query endpoint over TLS.
func BenchmarkQueryVerifyBatch(b *testing.B) {
	e := startEmulator(b, Options{})
	tok := token(b, e, "")
	c := client(e)
	for i := 0; i < 100; i++ {
		recs := make([]map[string]any, 1000)
		for j := range recs {
			recs[j] = sampleFinding(i*1000+j, time.Now())
			recs[j]["FindingId"] = fmt.Sprintf("f-%06d", i*1000+j)
		}
		body, _ := json.Marshal(recs)
		if r := (upload{body: body, token: tok}).send(b, e); r.StatusCode != http.StatusNoContent {
			b.Fatalf("upload: %d %s", r.StatusCode, r.body)
		}
	}
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("%q", fmt.Sprintf("f-%06d", i*97))
	}
	q, _ := json.Marshal(map[string]string{"query": "CVEBuster_CL | where TimeGenerated > ago(1d) | where FindingId in (" +
		strings.Join(keys, ", ") + ") | summarize n = count() by FindingId"})
	qtok := token(b, e, "https://api.loganalytics.io/.default")
	b.ResetTimer()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodPost, e.URL()+"/v1/workspaces/"+DefaultWorkspaceID+"/query", bytes.NewReader(q))
		req.Header.Set("Authorization", "Bearer "+qtok)
		req.Header.Set("Content-Type", "application/json")
		r := do(b, c, req)
		if r.StatusCode != http.StatusOK || bytes.Count(r.body, []byte(`"f-`)) != 1000 {
			b.Fatalf("query: %d %.300s", r.StatusCode, r.body)
		}
	}
	b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "keys/s")
}
