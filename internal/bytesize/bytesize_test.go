package bytesize

import "testing"

func TestFormat(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {50, "50 B"}, {1023, "1023 B"}, {1024, "1.0 KB"}, {70 << 10, "70.0 KB"}, {250_880, "245 KB"},
		{1 << 20, "1.0 MB"}, {48 << 20, "48.0 MB"}, {1024*1024 - 1, "1.0 MB"}, {3 << 29, "1.5 GB"}, {-2048, "-2.0 KB"},
	} {
		if got := Format(tt.n); got != tt.want {
			t.Errorf("Format(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

// TestParse is the former daemon flag test (cli/daemon_test.go), moved
// with the code.
func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		bad  bool
	}{
		{"1073741824", 1 << 30, false},
		{"1GiB", 1 << 30, false},
		{"512MiB", 512 << 20, false},
		{"64KiB", 64 << 10, false},
		{"1G", 1 << 30, false},
		{"100MB", 100_000_000, false},
		{"1.5GiB", 3 << 29, false},
		{" 2 gib ", 2 << 30, false},
		{"10b", 10, false},
		{"", 0, true},
		{"-1MiB", 0, true},
		{"lots", 0, true},
		{"1XB", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.bad {
				if err == nil {
					t.Fatalf("got %d, want an error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %d, %v; want %d", got, err, tt.want)
			}
		})
	}
	for _, n := range []int64{1 << 30, 512 << 20, 64 << 10, 1000} {
		var s Flag
		if err := s.Set(Exact(n)); err != nil || int64(s) != n {
			t.Errorf("round trip of %d via %q: %d, %v", n, Exact(n), s, err)
		}
	}
}
