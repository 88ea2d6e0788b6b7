package ingest

import "fmt"

// Advice says what to check after ue stopped a run: the one wording shared
// by "ccfpush send", the daemons and the web UI, so the fix the user reads
// does not depend on where the run was started. It is "" when there is
// nothing specific to say (transient, throttled, too large, canceled or
// local errors). For a refused request it repeats the service's code and
// message, which the service builds from the request, never from the
// credentials.
func Advice(ue *UploadError) string {
	if ue == nil {
		return ""
	}
	switch ue.Kind {
	case KindUnauthorized:
		switch ue.Cause {
		case CauseSecretInvalid:
			return "application_secret is wrong: use the client secret's Value (shown once when it was created), not its Secret ID, and check it has not expired"
		case CauseAppNotFound:
			return "application_id was not found in tenant_id: check both (Entra ID → App registrations → your app → Overview)"
		case CauseTenantNotFound:
			return "tenant_id was not found: use the Directory (tenant) ID from Entra ID → Overview"
		case CauseVaultNotFound:
			return "application_secret_ref names no secret of that vault: check the name (and version) under Key Vault → Secrets"
		case CauseVaultForbidden:
			return `the identity of secret_ref_auth needs the "Key Vault Secrets User" role on the vault (or Get on secrets, for a vault using access policies)`
		case CauseVaultDisabled:
			return "the version of the secret application_secret_ref reads is disabled: leave the version out to follow rotation, or enable it"
		case CauseVaultNoToken:
			return "secret_ref_auth got no token to read the vault: on Azure, assign an identity to the host; elsewhere use azure_cli, or default with another app's AZURE_CLIENT_ID/AZURE_CLIENT_SECRET"
		case CauseVaultOther:
			return "Key Vault did not give the secret application_secret_ref names: see the message"
		}
		return "authentication failed: check application_secret (the secret's Value, not its ID; not expired) and tenant_id / application_id"
	case KindForbidden:
		return `the app's service principal needs the "Monitoring Metrics Publisher" role on the DCR; role assignments take up to 30 minutes to apply`
	case KindNotFound:
		return "check dcr_immutable_id (the DCR's immutableId, dcr-..., not its resource id), that the DCE and the DCR are in the same region, and that dce_endpoint has no path"
	case KindInvalidStream:
		return "stream_name must be declared in the DCR's streamDeclarations, usually Custom-<Table>"
	case KindRejected:
		return fmt.Sprintf("the service refused the request: %s %s", ue.Code, ue.Message)
	}
	return ""
}
