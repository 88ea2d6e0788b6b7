package azure

import (
	"errors"
	"testing"

	azquery "github.com/Azure/azure-sdk-for-go/sdk/monitor/query/azlogs"

	"github.com/ccfpush/ccfpush/internal/config"
)

func TestQueryCloudsPerCloud(t *testing.T) {
	for _, tt := range []struct {
		cloud, endpoint, wantAudience, wantEndpoint string
	}{
		{"", "", "https://api.loganalytics.io", "https://api.loganalytics.io/v1"},
		{config.CloudUSGovernment, "", "https://api.loganalytics.us", "https://api.loganalytics.us/v1"},
		{config.CloudChina, "", "https://api.loganalytics.azure.cn", "https://api.loganalytics.azure.cn/v1"},
		// The emulator: its URL as the endpoint, the cloud's audience kept.
		{"", "https://127.0.0.1:8443/", "https://api.loganalytics.io", "https://127.0.0.1:8443/v1"},
	} {
		c, err := QueryClouds(&config.Config{Cloud: tt.cloud, QueryEndpoint: tt.endpoint, AuthorityHost: "https://127.0.0.1:8443"})
		if err != nil {
			t.Fatal(err)
		}
		svc := c.Services[azquery.ServiceName]
		if svc.Audience != tt.wantAudience || svc.Endpoint != tt.wantEndpoint || c.ActiveDirectoryAuthorityHost != "https://127.0.0.1:8443/" {
			t.Errorf("cloud %q endpoint %q: %+v %s", tt.cloud, tt.endpoint, svc, c.ActiveDirectoryAuthorityHost)
		}
	}
}

func TestNewQuerierNeedsAWorkspace(t *testing.T) {
	for _, ws := range []string{"", "my-workspace"} {
		_, err := NewQuerier(&config.Config{WorkspaceID: ws}, QuerierOptions{})
		var fe *config.FieldError
		if !errors.As(err, &fe) || fe.Field != config.KeyWorkspaceID {
			t.Errorf("workspace %q: %v", ws, err)
		}
	}
}
