package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestUsageErrorsAreTyped checks that the exit code follows the kind of
// error, not its words: flag and argument errors are usage errors (2), and
// a failure whose text merely reads like one ("invalid argument" is also
// EINVAL's text) is a failure (1).
func TestUsageErrorsAreTyped(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"send", "--nope"}, "unknown flag: --nope"},
		{[]string{"send", "--concurrency", "many"}, `invalid argument "many"`},
		{[]string{"send", "--data"}, "flag needs an argument"},
		{[]string{"send", "extra"}, `unknown command "extra"`},
		{[]string{"frobnicate"}, `unknown command "frobnicate" for "ccfpush"`},
		{[]string{"confg"}, "did you mean config?"},
		{[]string{"config", "frob"}, `unknown command "frob" for "ccfpush config"`},
		{[]string{"watch"}, "accepts 1 arg(s)"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := runMain(t, context.Background(), "", tt.args...)
			if r.code != ExitUsage || !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 and %q", r.code, r.stderr, tt.want)
			}
		})
	}
	var stderr bytes.Buffer
	if code := exitCode(fmt.Errorf("write /dev/x: %w", errors.New("invalid argument")), &stderr); code != ExitFailure {
		t.Errorf("a failure reading like a usage error: exit %d, want 1", code)
	}
	if r := runMain(t, context.Background(), ""); r.code != ExitOK || !strings.Contains(r.stdout, "Available Commands") {
		t.Errorf("no arguments: exit %d, stdout %q; want the help", r.code, r.stdout)
	}
}
