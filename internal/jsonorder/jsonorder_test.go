package jsonorder

import "testing"

func TestObjectKeepsOrderAndText(t *testing.T) {
	o := Of("z", 1, "a", Of("kql", "source | where a > 1 && b < 2"), "m", []any{"x&y", nil})
	// json.Marshal would escape what MarshalJSON returns; Marshal does not.
	got, err := Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"z":1,"a":{"kql":"source | where a > 1 && b < 2"},"m":["x&y",null]}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	ind, err := MarshalIndent(Of("b", 1, "a", 2))
	if err != nil {
		t.Fatal(err)
	}
	if want := "{\n  \"b\": 1,\n  \"a\": 2\n}\n"; string(ind) != want {
		t.Errorf("indented: %q, want %q", ind, want)
	}
	if _, err := Marshal(Of("f", func() {})); err == nil {
		t.Error("a value JSON cannot hold was written")
	}
}
