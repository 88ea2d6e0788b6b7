package azure

import (
	"testing"

	"github.com/ccfpush/ccfpush/internal/ingest"
)

// TestEntraCause checks that Entra's codes are read here, once: the
// advice of a stopped run and doctor get a Cause and the code's digits.
func TestEntraCause(t *testing.T) {
	for _, tt := range []struct {
		code  string
		digit string
		cause ingest.Cause
	}{
		{"AADSTS7000215", "7000215", ingest.CauseSecretInvalid},
		{"AADSTS700016", "700016", ingest.CauseAppNotFound},
		{"AADSTS90002", "90002", ingest.CauseTenantNotFound},
		{"AADSTS50059", "50059", ingest.CauseNone},
		{"invalid_client", "", ingest.CauseNone},
	} {
		te := &TokenError{Code: tt.code}
		if got := te.EntraCode(); got != tt.digit {
			t.Errorf("%s: EntraCode %q, want %q", tt.code, got, tt.digit)
		}
		if got := te.cause(); got != tt.cause {
			t.Errorf("%s: cause %v, want %v", tt.code, got, tt.cause)
		}
	}
}
