package emulator

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ccfpush/ccfpush/internal/dcr"
)

// LogErrorsTable is where the emulator records its ingestion errors, as a
// DCR with a "Log Errors" diagnostic setting does in Azure.
const LogErrorsTable = "DCRLogErrors"

// logErrorsColumns are the columns of Azure's DCRLogErrors table
// (azure-monitor reference, tables/dcrlogerrors).
var logErrorsColumns = []dcr.Column{
	{Name: dcr.TimeGenerated, Type: dcr.TypeDatetime},
	{Name: "_BilledSize", Type: dcr.TypeReal},
	{Name: "ClientRequestId", Type: dcr.TypeString}, // the x-ms-client-request-id the sender set
	{Name: "CorrelationId", Type: dcr.TypeString},
	{Name: "InputStreamId", Type: dcr.TypeString},
	{Name: "_IsBillable", Type: dcr.TypeString},
	{Name: "Message", Type: dcr.TypeString},
	{Name: "OperationName", Type: dcr.TypeString}, // Ingestion or Transformation
	{Name: "_ResourceId", Type: dcr.TypeString},
	{Name: "SourceSystem", Type: dcr.TypeString},
	{Name: "_SubscriptionId", Type: dcr.TypeString},
	{Name: "TenantId", Type: dcr.TypeString}, // the workspace id
	{Name: "Type", Type: dcr.TypeString},
}

// logError records one failed ingestion request in DCRLogErrors. Azure
// logs "any HTTP response other than 200/202" of a Logs Ingestion API
// call it can associate with a DCR; calls to an unknown DCR (404) and
// some internal errors are not logged. The emulator logs every error
// answer to a known DCR except the transient faults it injects in front
// of the service (they stand for a failing front end, which never reaches
// the DCR). A failure to log is itself logged, never answered.
func (e *Emulator) logError(ctx context.Context, rule *dcr.Rule, stream, clientRequestID, requestID, code, msg string, at time.Time) {
	arm := strings.ToLower(ruleARMID(rule))
	sub := ""
	if parts := strings.Split(arm, "/"); len(parts) > 2 && parts[1] == "subscriptions" {
		sub = parts[2]
	}
	message := code + ": " + msg
	row := map[string]any{
		dcr.TimeGenerated: at.UTC(),
		"_BilledSize":     float64(len(message)),
		"ClientRequestId": clientRequestID,
		"CorrelationId":   requestID,
		"InputStreamId":   stream,
		"_IsBillable":     "false",
		"Message":         message,
		"OperationName":   "Ingestion",
		"_ResourceId":     arm,
		"SourceSystem":    "Azure",
		"_SubscriptionId": sub,
		"TenantId":        e.opts.WorkspaceID,
		"Type":            LogErrorsTable,
	}
	res := &dcr.Result{Tables: []dcr.TableRows{{Table: LogErrorsTable, Columns: logErrorsColumns, Rows: []map[string]any{row}}}}
	if _, err := e.store.insert(context.WithoutCancel(ctx), requestID, at, res); err != nil {
		e.log.Error(fmt.Sprintf("emulator: record the error in %s", LogErrorsTable), "request_id", requestID, "err", err)
	}
}
