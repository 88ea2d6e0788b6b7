package ingest_test

import (
	"strings"
	"testing"

	"github.com/ccfpush/ccfpush/internal/ingest"
)

func TestAdvice(t *testing.T) {
	tests := []struct {
		name string
		ue   *ingest.UploadError
		want string // a substring; "" means no advice at all
	}{
		{"nil", nil, ""},
		{"wrong secret", &ingest.UploadError{Kind: ingest.KindUnauthorized, Cause: ingest.CauseSecretInvalid, Code: "AADSTS7000215"}, "not its Secret ID"},
		{"unknown app", &ingest.UploadError{Kind: ingest.KindUnauthorized, Cause: ingest.CauseAppNotFound, Code: "AADSTS700016"}, "application_id was not found in tenant_id"},
		{"unknown tenant", &ingest.UploadError{Kind: ingest.KindUnauthorized, Cause: ingest.CauseTenantNotFound, Code: "AADSTS90002"}, "tenant_id was not found"},
		{"other 401", &ingest.UploadError{Kind: ingest.KindUnauthorized, StatusCode: 401}, "authentication failed"},
		{"vault: no secret", &ingest.UploadError{Kind: ingest.KindUnauthorized, Cause: ingest.CauseVaultNotFound, Code: "SecretNotFound"}, "names no secret of that vault"},
		{"vault: no role", &ingest.UploadError{Kind: ingest.KindUnauthorized, Cause: ingest.CauseVaultForbidden, Code: "ForbiddenByRbac"}, `"Key Vault Secrets User" role`},
		{"vault: disabled", &ingest.UploadError{Kind: ingest.KindUnauthorized, Cause: ingest.CauseVaultDisabled, Code: "SecretDisabled"}, "is disabled"},
		{"vault: no token", &ingest.UploadError{Kind: ingest.KindUnauthorized, Cause: ingest.CauseVaultNoToken}, "secret_ref_auth got no token"},
		{"vault: other", &ingest.UploadError{Kind: ingest.KindUnauthorized, Cause: ingest.CauseVaultOther, Code: "Unauthorized"}, "Key Vault did not give"},
		{"403", &ingest.UploadError{Kind: ingest.KindForbidden, StatusCode: 403}, `"Monitoring Metrics Publisher" role on the DCR`},
		{"404", &ingest.UploadError{Kind: ingest.KindNotFound, StatusCode: 404}, "check dcr_immutable_id"},
		{"bad stream", &ingest.UploadError{Kind: ingest.KindInvalidStream, StatusCode: 400, Code: "InvalidStream"}, "stream_name must be declared"},
		{"other 400", &ingest.UploadError{Kind: ingest.KindRejected, StatusCode: 400, Code: "InvalidRecord", Message: "row 3 is bad"}, "the service refused the request: InvalidRecord row 3 is bad"},
		{"transient", &ingest.UploadError{Kind: ingest.KindTransient, StatusCode: 503}, ""},
		{"throttled", &ingest.UploadError{Kind: ingest.KindThrottled, StatusCode: 429}, ""},
		{"too large", &ingest.UploadError{Kind: ingest.KindTooLarge, StatusCode: 413}, ""},
		{"canceled", &ingest.UploadError{Kind: ingest.KindCanceled}, ""},
		{"local", &ingest.UploadError{Kind: ingest.KindLocal}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ingest.Advice(tt.ue)
			if tt.want == "" {
				if got != "" {
					t.Errorf("Advice = %q, want none", got)
				}
				return
			}
			if !strings.Contains(got, tt.want) {
				t.Errorf("Advice = %q, want it to contain %q", got, tt.want)
			}
		})
	}
}
