package finding

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestDocsListEveryColumn keeps docs/scanners.md true: its column table
// names every column with its type.
func TestDocsListEveryColumn(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "scanners.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range Schema() {
		row := "| `" + c.Name + "` | " + c.Type + " |"
		if !bytes.Contains(doc, []byte(row)) {
			t.Errorf("docs/scanners.md has no row %q", row)
		}
	}
}
