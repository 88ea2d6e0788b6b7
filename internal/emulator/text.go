package emulator

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ccfpush/ccfpush/internal/config"
	"github.com/ccfpush/ccfpush/internal/console"
	"github.com/ccfpush/ccfpush/internal/dcr"
)

// StatusLabel names an upload answer of Stats.Ingest.ByStatus: the HTTP
// status, or "cut" for a connection cut without an answer ("0").
func StatusLabel(status string) string {
	if status == "0" {
		return "cut"
	}
	return status
}

// WriteBanner says where the started emulator listens and what it serves:
// the CA to trust, the apps, the rules and their streams, the faults.
func (e *Emulator) WriteBanner(w io.Writer) {
	opts := e.opts
	fmt.Fprintf(w, "ccfpush emulator listening on %s\n", e.URL())
	fmt.Fprintf(w, "  CA certificate (trust it via ca_file): %s\n", e.CAFile())
	fmt.Fprintf(w, "  data directory:  %s\n", opts.DataDir)
	for _, a := range e.Apps() {
		fmt.Fprintf(w, "  tenant id:       %s\n", a.TenantID)
		fmt.Fprintf(w, "  application id:  %s\n", a.ClientID)
		fmt.Fprintf(w, "  secret:          %s (in %s; use --write-config to get a ready config)\n", a.Secret.Mask(), filepath.Join(opts.DataDir, "client-secret"))
	}
	for _, r := range e.Rules() {
		fmt.Fprintf(w, "  DCR immutable id: %s\n", r.ImmutableID)
		for _, s := range Streams(r) {
			var tables []string
			for _, f := range r.Flows {
				for _, fsName := range f.Streams {
					if fsName == s {
						tables = append(tables, dcr.OutputTable(f.OutputStream))
					}
				}
			}
			fmt.Fprintf(w, "    stream %s -> %s\n", s, strings.Join(tables, ", "))
		}
	}
	if faults := opts.Faults.Flags(); faults != "" {
		fmt.Fprintf(w, "  faults: %s\n", faults)
	}
	if l := opts.Limits; l.RequestsPerMinute > 0 || l.BytesPerMinute > 0 {
		fmt.Fprintf(w, "  limits per DCR: %d requests/min, %d bytes/min (0 = none)\n", l.RequestsPerMinute, l.BytesPerMinute)
	}
	fmt.Fprintf(w, "  workspace id:    %s (Logs Query API at %s/v1/workspaces/%s/query)\n", opts.WorkspaceID, e.URL(), opts.WorkspaceID)
	if opts.VisibilityDelay > 0 {
		fmt.Fprintf(w, "  rows become queryable %s after their 204 (--visibility-delay)\n", opts.VisibilityDelay)
	}
	fmt.Fprintf(w, "  inspect: %s/_emulator/stats, %s/_emulator/tables/{table}\n", e.URL(), e.URL())
	if names := e.vault.names(); len(names) > 0 {
		fmt.Fprintf(w, "  key vault:       %s, secrets: %s\n", e.VaultURL(), strings.Join(names, ", "))
	}
	if p := opts.ConfigFile; p != "" {
		c := e.configToWrite()
		secretKeys := []string{config.KeyApplicationSecret}
		if c.ApplicationSecretRef != "" {
			secretKeys = []string{config.KeyApplicationSecretRef, config.KeySecretRefAuth}
		}
		fmt.Fprintf(w, "Wrote connector config %s:\n", p)
		keys := append([]string{config.KeyTenantID, config.KeyApplicationID}, secretKeys...)
		c.WriteValues(w, "  ", append(keys, config.KeyDCEEndpoint, config.KeyDCRImmutableID, config.KeyStreamName,
			config.KeyAuthorityHost, config.KeyCAFile, config.KeyWorkspaceID, config.KeyQueryEndpoint)...)
		if c.ApplicationSecretRef != "" {
			// The header is a credential of the emulator's identity
			// endpoint: named by its file, not printed.
			env := e.ManagedIdentityEnv()
			fmt.Fprintf(w, "Its secret is read from the vault with the emulator's managed identity; in the shell that runs ccfpush:\n"+
				"  export IDENTITY_ENDPOINT=%s IDENTITY_HEADER=\"$(cat %s)\"\n",
				env["IDENTITY_ENDPOINT"], config.ShellQuote(filepath.Join(opts.DataDir, identityHdrFile)))
		}
	}
}

// RunAnnounced is Run for a person at a terminal: the banner first, and a
// line when it stops.
func (e *Emulator) RunAnnounced(ctx context.Context, w io.Writer) error {
	e.WriteBanner(w)
	fmt.Fprintln(w, "Press Ctrl+C to stop.")
	if err := e.Run(ctx); err != nil {
		return err
	}
	fmt.Fprintln(w, "Emulator stopped.")
	return nil
}

// Flags renders the faults as the flags of "ccfpush emulator" that set
// them, or "" when there are none.
func (f Faults) Flags() string {
	var parts []string
	if len(f.FailRates) > 0 {
		codes := make([]int, 0, len(f.FailRates))
		for c := range f.FailRates {
			codes = append(codes, c)
		}
		sort.Ints(codes)
		var rates []string
		for _, c := range codes {
			rates = append(rates, fmt.Sprintf("%d=%g", c, f.FailRates[c]))
		}
		parts = append(parts, "--fail-rate "+strings.Join(rates, ","))
	}
	if f.RetryAfter != 0 { // also for forced and limited answers
		parts = append(parts, fmt.Sprintf("--retry-after %v", f.RetryAfter))
	}
	if f.ResetRate > 0 {
		parts = append(parts, fmt.Sprintf("--reset-rate %g", f.ResetRate))
	}
	if f.AcceptThenDropRate > 0 {
		parts = append(parts, fmt.Sprintf("--accept-then-drop-rate %g", f.AcceptThenDropRate))
	}
	if f.Latency > 0 {
		parts = append(parts, fmt.Sprintf("--latency %v", f.Latency))
	}
	if !f.Force.IsZero() {
		parts = append(parts, "--force "+f.Force.String())
	}
	if len(parts) > 0 && f.Seed != 0 {
		parts = append(parts, fmt.Sprintf("--seed %d", f.Seed))
	}
	return strings.Join(parts, " ")
}

// WriteStats writes st for people: tables, uploads by status, tokens,
// faults and the silent changes.
func WriteStats(w io.Writer, st Stats) {
	fmt.Fprintf(w, "Emulator %s, up since %s\n", st.URL, st.Started.Local().Format(time.DateTime))
	fmt.Fprintln(w, "\nTables (rows stored):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, t := range sortedKeys(st.Tables) {
		fmt.Fprintf(tw, "  %s\t%d\n", t, st.Tables[t])
	}
	if len(st.Tables) == 0 {
		fmt.Fprintln(tw, "  (none)")
	}
	tw.Flush()

	in := st.Ingest
	fmt.Fprintf(w, "\nUploads: %d requests, %d records accepted, %d rows stored, %d bytes received\n", in.Requests, in.Records, in.Rows, in.Bytes)
	if len(in.ByStatus) > 0 {
		fmt.Fprintf(w, "  by status: %s\n", statusText(in.ByStatus))
	}
	if len(in.ByDCR) > 1 {
		for _, id := range sortedKeys(in.ByDCR) {
			fmt.Fprintf(w, "  DCR %s: %s\n", id, statusText(in.ByDCR[id]))
		}
	}
	if in.Dropped > 0 {
		fmt.Fprintf(w, "  WARNING: %d request(s) sent a single JSON object instead of an array: answered 204, stored nothing (as Azure does)\n", in.Dropped)
	}
	fmt.Fprintf(w, "Tokens: %d requests, %d issued", st.Tokens.Requests, st.Tokens.Issued)
	if len(st.Tokens.Errors) > 0 {
		var parts []string
		for _, k := range sortedKeys(st.Tokens.Errors) {
			parts = append(parts, fmt.Sprintf("%s: %d", k, st.Tokens.Errors[k]))
		}
		fmt.Fprintf(w, ", errors %s", strings.Join(parts, ", "))
	}
	fmt.Fprintln(w)
	if len(st.Faults) > 0 {
		var parts []string
		for _, k := range sortedKeys(st.Faults) {
			parts = append(parts, fmt.Sprintf("%s: %d", k, st.Faults[k]))
		}
		fmt.Fprintf(w, "Faults injected: %s\n", strings.Join(parts, ", "))
	}
	if len(st.Changes) == 0 {
		fmt.Fprintln(w, "\nSilent changes: none — every record arrived as sent.")
		return
	}
	fmt.Fprintln(w, "\nSilent changes (Azure makes these without telling the sender):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  STREAM\tTABLE\tCOLUMN\tCHANGE\tCOUNT\tEXAMPLE")
	for _, c := range st.Changes {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%s\n", c.Stream, dash(c.Table), dash(c.Column), c.Kind, c.Count, console.Shorten(c.Example, 80))
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// statusText lists upload answers by status: "204 accepted: 9, ...".
func statusText(by map[string]int64) string {
	var parts []string
	for _, k := range sortedKeys(by) {
		parts = append(parts, fmt.Sprintf("%s: %d", StatusLabel(k), by[k]))
	}
	return strings.Join(parts, ", ")
}
