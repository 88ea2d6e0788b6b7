package azure

import "runtime/debug"

// sdkModules are the Azure SDK modules this package builds on.
var sdkModules = map[string]bool{
	"github.com/Azure/azure-sdk-for-go/sdk/monitor/ingestion/azlogs": true,
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity":               true,
	"github.com/Azure/azure-sdk-for-go/sdk/azcore":                   true,
}

// SDKModules lists the Azure SDK modules the binary was built with, for
// "ccfpush version" (none when the build information is missing).
func SDKModules() []*debug.Module {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}
	var out []*debug.Module
	for _, m := range bi.Deps {
		if sdkModules[m.Path] {
			out = append(out, m)
		}
	}
	return out
}
