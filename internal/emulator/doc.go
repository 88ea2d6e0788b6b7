// Package emulator is a local stand-in for the Azure services a Logs
// Ingestion client talks to: the Entra ID token endpoint (client-credentials
// flow, with the OpenID discovery documents MSAL reads first), a Data
// Collection Endpoint (POST .../dataCollectionRules/{id}/streams/{stream}),
// a managed identity endpoint (App Service's), the Key Vault secrets
// endpoint a client secret may be kept in, and the Logs Query API of the one Log Analytics workspace the rows land in
// (POST /v1/workspaces/{id}/query), so that what was sent can be read back.
//
// It speaks the real wire protocol over TLS, so the unmodified Azure SDK
// clients (azidentity + azlogs, or any other language's) work against it; the
// only client-side change is trusting its CA and pointing the authority host
// and the endpoint at it. It answers in the real shapes (AADSTS error bodies,
// x-ms-error-code headers, the exact InvalidStream and OperationFailed
// messages) and in the real order of checks, runs records through the data
// collection rule the way the service does (package dcr), stores the rows in
// SQLite for inspection, and reports every silent change the service would
// have made to the data (dropped columns, failed coercions, truncations,
// rewritten TimeGenerated) — the things a 204 hides in production.
//
// Faults (error rates, resets, latency, accept-then-drop, rate limits) and
// forced answers (a given AADSTS code, a 403, ...) let tests and "ccfpush
// doctor" exercise every failure path. What changes over a daemon's life can
// change while the emulator runs, through the Go API and the loopback admin
// endpoints (admin.go, and Client's methods for another process): faults
// switched on and off, issued tokens revoked, a Key Vault secret rotated, an
// app's secret replaced; TokenLifetime shortens the token lifetime, and
// AppSecretInVault keeps the app's secret in the vault (SecretRefConfig).
//
// The package deliberately shares no code with internal/azure: it exists to
// catch bugs in that adapter, which it could not do if both were built from
// the same assumptions.
//
// It serves only rules Azure would create: New refuses a rule that breaks
// one of Azure's documented limits (dcr.Limits) or implies a table Azure
// would refuse, with the answer Azure Resource Manager gives (RefusedError:
// 400 InvalidPayload for the rule, 400 SchemaUpdateFatalError for the
// table; see refuse.go).
//
// Choices where the real service's behaviour is unknown (documented here
// because clients may meet them):
//   - 401 codes: InvalidAudience (token for another resource, the code the
//     real service uses), InvalidAuthenticationToken (missing, malformed or
//     badly signed token) and ExpiredAuthenticationToken. Tokens for the
//     monitor audience of any cloud (.com, .us, .cn) are accepted.
//   - 404 NotFound for an unknown DCR (code reported by third parties only),
//     message "Data collection rule with immutable Id '…' not found.".
//   - A valid token of an app that is not registered (any more) gets the 403
//     OperationFailed answer, like a principal without the role.
//   - api-version is checked after authentication: missing →
//     400 MissingApiVersionParameter, other values → 400 UnsupportedApiVersion.
//   - Content-Encoding other than gzip or identity → 415
//     UnsupportedContentEncoding; a Content-Type that is not JSON → 415
//     UnsupportedMediaType; invalid gzip → 400 InvalidContentEncoding.
//   - An empty body, invalid JSON, or an array holding something other than
//     objects → 400 InvalidRequestBody (the real service answered an empty
//     body with a 500 without error code in Microsoft's own tests; a 400 with
//     a message is what a client can act on).
//   - A single JSON object instead of an array → 204 and nothing stored, as
//     the real service does; the emulator counts it as a dropped request and
//     logs a warning.
//   - A revoked token (RevokeTokens) is answered 401
//     InvalidAuthenticationToken without a WWW-Authenticate challenge,
//     like any other invalid token: a client must drop it and ask Entra
//     again. Access tokens' exp is rounded up to the whole second.
//   - Key Vault: one vault, in memory, reached at
//     https://ccfpush.vault.localhost:<port> (VaultURL); its challenge's
//     resource is the host without the vault name (https://vault.localhost:<port>),
//     so the SDK's resource check passes; tokens for that resource or a
//     real vault audience are accepted. Key Vault's own answers:
//     401 Unauthorized with the challenge, 403 Forbidden (ForbiddenByRbac
//     for a caller not in KeyVault.Readers, SecretDisabled for a disabled
//     version, also when it is the latest), 404 SecretNotFound.
//   - Managed identity: App Service's endpoint (IDENTITY_ENDPOINT,
//     IDENTITY_HEADER, api-version 2019-08-01; ManagedIdentityEnv), over
//     https; identities are known by client id only.
//   - Rate limits (per DCR, sliding one-minute window) count admitted
//     requests and their bytes as received on the wire.
//   - Injected transient faults (Faults.FailRates, resets, and forced 408 or
//     5xx answers) happen before any check, as a failing front end would;
//     forced 401/403/404/InvalidStream/413/429 answers keep their place in
//     the order. The token endpoint only knows forced answers.
//
// The Logs Query endpoint runs the KQL subset of package dcr (a table, then
// where, extend, project, project-away, project-rename, summarize with
// count/dcount/min/max/sum/avg by columns and bin(), count, take/limit,
// sort/order by, top N by, distinct); anything else is answered 400
// BadArgumentError / SemanticError naming the operator, in the real shape.
// Queries are compiled by dcr and evaluated in Go over rows streamed from
// SQLite rather than translated to SQL, so queries and transforms share one
// evaluator and Kusto's semantics; SQLite only prunes columns and narrows
// rows by the leading string equalities and `in` lists (on an index made
// on first use) and TimeGenerated bounds, as a superset the evaluator
// re-checks (see querystore.go). Its choices:
//   - Tokens for https://api.loganalytics.io, .us, .azure.cn, .azure.com
//     and for the emulator's own URL are accepted; a missing token is 401
//     AuthenticationFailed, a bad one 403 InvalidAuthenticationToken, one
//     for another audience 403 InvalidAuthenticationTokenAudience, an app
//     with App.NoWorkspaceRead 403 InsufficientAccessError (the documented
//     codes). An unknown workspace is 404 WorkspaceNotFoundError (code
//     UNVERIFIED).
//   - Rows become queryable Options.VisibilityDelay after their request
//     was answered; the request's timespan bounds TimeGenerated; at most
//     MaxQueryRows rows are answered, with a PartialError beyond. dcount
//     is exact.
//   - Every error answer to an ingestion request naming a known DCR
//     (except the injected front-end faults) is recorded in the
//     DCRLogErrors table, with Azure's columns and ClientRequestId set to
//     the request's x-ms-client-request-id, as a DCR with the "Log Errors"
//     diagnostic setting does.
//
// Routes (one TLS listener):
//
//	GET  /{tenant}/v2.0/.well-known/openid-configuration
//	GET  /{tenant}/discovery/v2.0/keys
//	GET  /common/discovery/instance
//	POST /{tenant}/oauth2/v2.0/token
//	POST /dataCollectionRules/{immutableId}/streams/{stream}?api-version=…   (a path before it: 404 NotFound)
//	GET  /msi/token?api-version=2019-08-01&resource=…[&client_id=…]    (X-IDENTITY-HEADER)
//	GET  /secrets/{name}[/{version}], /secrets/{name}/versions     (Key Vault, any vault host)
//	GET|POST /_emulator/faults, POST /_emulator/tokens/revoke, GET /_emulator/keyvault/secrets,
//	POST /_emulator/keyvault/secrets/{name}, PATCH /_emulator/keyvault/secrets/{name}/{version},
//	POST /_emulator/apps/{client_id}/secret                          (loopback only, no token; admin.go)
//	POST /v1/workspaces/{workspaceId}/query, GET /v1/workspaces/{workspaceId}/query?query=…
//	GET  /_emulator/stats, /_emulator/tables, /_emulator/dcrs (loopback only, no token)
//	GET  /_emulator/tables/{table}?limit=N&offset=M&order=asc|desc (loopback only, no token)
package emulator
