package schema

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ccfpush/ccfpush/internal/dcr"
)

// API versions of the CCF Push artifacts (protocol.md §5.3).
const (
	CCFDCRAPIVersion           = "2021-09-01-preview" // the CCF Push sample's DCR.json
	ConnectorDefinitionVersion = "2022-09-01-preview"
	DataConnectorAPIVersion    = "2024-09-01"
)

// Resource types of the CCF Push artifacts.
const (
	TypeConnectorDefinition = "Microsoft.SecurityInsights/dataConnectorDefinitions"
	TypeDataConnector       = "Microsoft.SecurityInsights/dataConnectors"
)

// CCF file names, as the Azure-Sentinel packaging tool expects them in
// Solutions/<Name>/Data Connectors/<Name>_ccf/.
const (
	CCFTableFile               = "table.json"
	CCFDCRFile                 = "DCR.json"
	CCFConnectorDefinitionFile = "connectorDefinition.json"
	CCFDataConnectorFile       = "dataConnector.json"
	CCFReadmeFile              = "README.md"
)

// CCFOptions describe the connector.
type CCFOptions struct {
	// Name is the product name shown in Sentinel, e.g. "Contoso Scanner".
	Name string
	// Publisher is the company shown as the connector's publisher.
	Publisher string
	// Description is the connector page's description (markdown); default
	// a sentence built from Name and the table.
	Description string
}

// CCFPackage is a generated connector folder: file name → content.
type CCFPackage struct {
	Base  string // "ContosoScanner": the solution and connector base name
	Files map[string][]byte
}

// FileNames lists the package's files in the order they are described.
func (p *CCFPackage) FileNames() []string {
	return []string{CCFTableFile, CCFDCRFile, CCFConnectorDefinitionFile, CCFDataConnectorFile, CCFReadmeFile}
}

// CCF writes a Sentinel Codeless Connector Framework Push connector in the
// layout of the public Azure-Sentinel solutions: table.json, DCR.json,
// connectorDefinition.json (kind Customizable, with the Deploy button and
// the six copyable values), dataConnector.json (kind Push) and a README on
// packaging them with createSolutionV3.ps1. ARM expressions in the files
// ([parameters('workspace')], [variables('workspaceResourceId')],
// [[parameters('dcrConfig')…]) are the ones the packaging tool provides.
func (d Design) CCF(opts CCFOptions) (*CCFPackage, error) {
	if strings.TrimSpace(opts.Name) == "" {
		return nil, errors.New("the connector needs a name")
	}
	if strings.TrimSpace(opts.Publisher) == "" {
		return nil, errors.New("the connector needs a publisher")
	}
	base := BaseName(opts.Name)
	if base == "" {
		return nil, fmt.Errorf("connector name %q has no letters or digits", opts.Name)
	}
	cols, err := d.TableColumns()
	if err != nil {
		return nil, err
	}
	name := strings.TrimSpace(opts.Name)
	publisher := strings.TrimSpace(opts.Publisher)
	connectorID := base + "Push"
	t := d.Table

	tableCols := make([]any, len(cols))
	for i, c := range cols {
		tableCols[i] = o("name", c.Name, "type", c.Type)
	}
	table := o(
		"name", t,
		"type", TypeTable,
		"apiVersion", TablesAPIVersion,
		"properties", o("schema", o("name", t, "columns", tableCols)),
	)

	dcrDoc := o(
		"name", connectorID+"DCR",
		"apiVersion", CCFDCRAPIVersion,
		"type", TypeDCR,
		"location", "[parameters('workspace-location')]",
		"properties", o(
			"streamDeclarations", d.streamDeclaration(true),
			"destinations", o("logAnalytics", []any{o("workspaceResourceId", "[variables('workspaceResourceId')]", "name", DestinationName)}),
			"dataFlows", []any{d.dataFlow()},
			"dataCollectionEndpointId", "[concat('/subscriptions/',parameters('subscription'),'/resourceGroups/',parameters('resourceGroupName'),'/providers/Microsoft.Insights/dataCollectionEndpoints/',parameters('workspace'))]",
		),
	)

	description := opts.Description
	if description == "" {
		description = fmt.Sprintf("The %s connector by %s receives records pushed to the %s table of Microsoft Sentinel through the Azure Monitor Logs Ingestion API, "+
			"using the Codeless Connector Framework (CCF) Push model: deploying the connector creates the table, a data collection rule and endpoint, "+
			"and an Entra application whose credentials the sending application uses.", markdownText(name), markdownText(publisher), t)
	}
	sampleQueries := []any{
		o("description", "All "+name+" records", "query", t+"\n| sort by TimeGenerated desc"),
		o("description", "Records per hour", "query", t+"\n| summarize Records = count() by bin(TimeGenerated, 1h)\n| sort by TimeGenerated desc"),
	}
	if col := groupingColumn(cols); col != "" {
		sampleQueries = append(sampleQueries, o("description", "Records by "+col, "query",
			t+"\n| summarize Records = count() by "+kqlName(col)+"\n| sort by Records desc"))
	}
	copyable := func(label, fill string) obj {
		return o("type", "CopyableLabel", "parameters", o(
			"label", label,
			"fillWith", []string{fill},
			"placeholder", "Deploy the push connector to get the "+label,
		))
	}
	configExample := fmt.Sprintf("#### Configure the sender\nPut the values above into the sender's configuration, for example ccfpush's `connector_config.json`:\n"+
		"```json\n{\n  \"tenant_id\": \"<Tenant ID>\",\n  \"application_id\": \"<Application ID>\",\n  \"application_secret\": \"<Application Secret>\",\n"+
		"  \"dce_endpoint\": \"<Data Collection Endpoint Uri>\",\n  \"dcr_immutable_id\": \"<Data Collection Rule Immutable ID>\",\n  \"stream_name\": %q\n}\n```\n"+
		"Allow 5 to 10 minutes for the first records to appear in %s.", d.Stream, t)
	definition := o(
		"name", connectorID,
		"apiVersion", ConnectorDefinitionVersion,
		"type", TypeConnectorDefinition,
		"location", "[parameters('workspace-location')]",
		"kind", "Customizable",
		"properties", o("connectorUiConfig", o(
			"id", connectorID,
			"title", name+" (Push)",
			"publisher", publisher,
			"descriptionMarkdown", description,
			"graphQueries", []any{o("metricName", "Total data received", "legend", t, "baseQuery", t)},
			"sampleQueries", sampleQueries,
			"dataTypes", []any{o("name", t, "lastDataReceivedQuery", t+"\n| summarize Time = max(TimeGenerated)\n| where isnotempty(Time)")},
			"connectivityCriteria", []any{o("type", "IsConnectedQuery", "value", []string{
				t + "\n| summarize LastLogReceived = max(TimeGenerated)\n| project IsConnected = LastLogReceived > ago(7d)",
			})},
			"availability", o("status", 1, "isPreview", false),
			"permissions", o(
				"resourceProvider", []any{o(
					"provider", "Microsoft.OperationalInsights/workspaces",
					"permissionsDisplayText", "read and write permissions are required.",
					"providerDisplayName", "Workspace",
					"scope", "Workspace",
					"requiredPermissions", o("write", true, "read", true, "delete", true),
				)},
				"customs", []any{
					o("name", "Microsoft Entra", "description", "Permission to create an app registration in Microsoft Entra ID. Typically requires the Entra ID Application Developer role or higher."),
					o("name", "Microsoft Azure", "description", "Permission to assign the Monitoring Metrics Publisher role on the data collection rule (DCR). Typically requires the Azure RBAC Owner or User Access Administrator role."),
				},
			),
			"instructionSteps", []any{
				o(
					"title", "1. Create the Azure resources and the Entra application",
					"description", "Deploying creates the "+t+" table, a data collection endpoint and rule, and an Entra application allowed to send to the rule.",
					"instructions", []any{
						o("type", "Markdown", "parameters", o("content",
							"#### Automated configuration with an Entra application\nSelecting **Deploy** creates a Log Analytics table and a data collection rule (DCR), "+
								"then an Entra application with a client secret that is granted the Monitoring Metrics Publisher role on the DCR. "+
								"The sender uses the application's credentials to get a token and post records to the DCR.")),
						o("type", "DeployPushConnectorButton", "parameters", o(
							"label", "Deploy "+name+" connector resources",
							"applicationDisplayName", name+" Push Connector Application",
						)),
					},
				),
				o(
					"title", "2. Configure "+name,
					"description", "Use these values to configure the application that pushes records to the workspace.",
					"instructions", []any{
						o("type", "CopyableLabel", "parameters", o("label", "Tenant ID (Directory ID)", "fillWith", []string{"TenantId"})),
						copyable("Application ID", "ApplicationId"),
						copyable("Application Secret", "ApplicationSecret"),
						copyable("Data Collection Endpoint Uri", "DataCollectionEndpoint"),
						copyable("Data Collection Rule Immutable ID", "DataCollectionRuleId"),
						o("type", "CopyableLabel", "parameters", o("label", "Stream Name", "value", d.Stream)),
						o("type", "Markdown", "parameters", o("content", configExample)),
					},
				),
			},
		)),
	)

	connector := o(
		"name", connectorID+"Connector",
		"apiVersion", DataConnectorAPIVersion,
		"type", TypeDataConnector,
		"kind", "Push",
		"properties", o(
			"connectorDefinitionName", connectorID,
			"dcrConfig", o(
				"streamName", d.Stream,
				"dataCollectionEndpoint", "[[parameters('dcrConfig').dataCollectionEndpoint]",
				"dataCollectionRuleImmutableId", "[[parameters('dcrConfig').dataCollectionRuleImmutableId]",
			),
			"auth", o(
				"type", "Push",
				"AppId", "[[parameters('auth').appId]",
				"ServicePrincipalId", "[[parameters('auth').servicePrincipalId]",
			),
			"request", o("RetryCount", 1),
			"response", o("eventsJsonPaths", []string{"$"}),
		),
	)

	pkg := &CCFPackage{Base: base, Files: map[string][]byte{}}
	for _, f := range []struct {
		name string
		v    any
	}{{CCFTableFile, table}, {CCFDCRFile, dcrDoc}, {CCFConnectorDefinitionFile, definition}, {CCFDataConnectorFile, connector}} {
		b, err := indentJSON(f.v)
		if err != nil {
			return nil, fmt.Errorf("write %s: %w", f.name, err)
		}
		pkg.Files[f.name] = b
	}
	pkg.Files[CCFReadmeFile] = []byte(ccfReadme(base, name, publisher, d))
	return pkg, nil
}

// groupingColumn picks a string column worth a "count by" sample query.
func groupingColumn(cols []dcr.Column) string {
	for _, want := range []string{"severity", "level", "priority", "status", "eventtype", "category"} {
		for _, c := range cols {
			if c.Type == dcr.TypeString && strings.EqualFold(strings.ReplaceAll(c.Name, "_", ""), want) {
				return c.Name
			}
		}
	}
	return ""
}

// markdownText escapes the characters markdown would read as formatting.
func markdownText(s string) string {
	r := strings.NewReplacer(`\`, `\\`, "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`, "`", "\\`", "<", "&lt;", ">", "&gt;")
	return r.Replace(s)
}

func ccfReadme(base, name, publisher string, d Design) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s — Microsoft Sentinel CCF Push connector\n\n", name)
	fmt.Fprintf(&b, "Generated by `ccfpush schema ccf`. Publisher: %s. Records are posted to stream `%s` and land in table `%s`.\n\n", publisher, d.Stream, d.Table)
	b.WriteString("| file | resource |\n|---|---|\n")
	fmt.Fprintf(&b, "| `%s` | `%s` (%s) — the custom table |\n", CCFTableFile, TypeTable, TablesAPIVersion)
	fmt.Fprintf(&b, "| `%s` | `%s` (%s) — stream declaration, transform, destination |\n", CCFDCRFile, TypeDCR, CCFDCRAPIVersion)
	fmt.Fprintf(&b, "| `%s` | `%s` (%s, kind `Customizable`) — the connector page |\n", CCFConnectorDefinitionFile, TypeConnectorDefinition, ConnectorDefinitionVersion)
	fmt.Fprintf(&b, "| `%s` | `%s` (%s, kind `Push`) — links the page to the deployed DCR and app |\n\n", CCFDataConnectorFile, TypeDataConnector, DataConnectorAPIVersion)
	fmt.Fprintf(&b, "Transform: `%s`\n\n", d.Transform)
	b.WriteString("## Try it locally first\n\n```sh\n")
	fmt.Fprintf(&b, "ccfpush emulator --dcr %s --write-config emulator_config.json &\n", CCFDCRFile)
	b.WriteString("ccfpush --config emulator_config.json check --data sample.ndjson   # what would be dropped or changed\n")
	b.WriteString("ccfpush --config emulator_config.json send --data sample.ndjson\n```\n\n")
	b.WriteString("## Package it as a Sentinel solution\n\n")
	b.WriteString("1. Fork and clone https://github.com/Azure/Azure-Sentinel.\n")
	fmt.Fprintf(&b, "2. Copy this folder to `Solutions/%s/Data Connectors/%s_ccf/` (no spaces in the solution folder name).\n", base, base)
	fmt.Fprintf(&b, "3. Create `Solutions/%s/Data/Solution_%s.json`:\n\n", base, base)
	fmt.Fprintf(&b, "   ```json\n   {\n     \"Name\": %q,\n     \"Author\": %q,\n     \"Logo\": \"<svg …>\",\n     \"Description\": %q,\n"+
		"     \"Data Connectors\": [\"Data Connectors/%s_ccf/connectorDefinition.json\"],\n     \"BasePath\": \"<absolute path of Solutions/%s>\",\n"+
		"     \"Version\": \"3.0.0\",\n     \"Metadata\": \"SolutionMetadata.json\",\n     \"TemplateSpec\": true,\n     \"Is1PConnector\": false\n   }\n   ```\n\n",
		base, publisher, name+" records in Microsoft Sentinel through a CCF Push connector.", base, base)
	fmt.Fprintf(&b, "4. Create `Solutions/%s/SolutionMetadata.json` (publisherId, offerId, firstPublishDate, providers, categories, support) and `ReleaseNotes.md`.\n", base)
	b.WriteString("5. Run `Tools/Create-Azure-Sentinel-Solution/V3/createSolutionV3.ps1` and give it the absolute path of the solution's `Data` folder. ")
	b.WriteString("It writes `Package/mainTemplate.json`, `createUiDefinition.json` and `testParameters.json`. An arm-ttk (Test-AzTemplate) failure is expected and normal for CCF Push connectors; ")
	b.WriteString("the packaging succeeded when the three JSON files are reported valid.\n")
	b.WriteString("6. Deploy `Package/mainTemplate.json` (portal: Deploy a custom template) into the workspace's resource group, open Microsoft Sentinel → Data connectors → ")
	fmt.Fprintf(&b, "%s (Push) → Open connector page, and select **Deploy**. Copy the six values it shows into the sender's configuration.\n\n", name)
	b.WriteString("The expressions `[parameters('workspace')]`, `[parameters('workspace-location')]`, `[variables('workspaceResourceId')]` and `[[parameters('dcrConfig')…]` ")
	b.WriteString("are filled in by the packaging tool and at connect time; leave them as they are.\n")
	return b.String()
}
