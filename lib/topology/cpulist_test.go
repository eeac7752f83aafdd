package topology_test

import (
	"slices"
	"testing"

	"github.com/ktstr/ktbuild/lib/topology"
)

func TestParseList(t *testing.T) {
	tests := []struct {
		in   string
		want []int
	}{
		{"", nil},
		{"\n", nil},
		{"0", []int{0}},
		{"0-3\n", []int{0, 1, 2, 3}},
		{"0-3,8,10-11", []int{0, 1, 2, 3, 8, 10, 11}},
		{"8,0-1,1", []int{0, 1, 8}},
		{"5-5", []int{5}},
	}
	for _, tt := range tests {
		got, err := topology.ParseList(tt.in)
		if err != nil {
			t.Errorf("ParseList(%q): %v", tt.in, err)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("ParseList(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestParseListInvalid(t *testing.T) {
	for _, in := range []string{"a", "1-", "-1", "3-1", "1,,2", "0-99999999", "1.5"} {
		if got, err := topology.ParseList(in); err == nil {
			t.Errorf("ParseList(%q) = %v, want an error", in, got)
		}
	}
}

func TestFormatList(t *testing.T) {
	tests := []struct {
		in   []int
		want string
	}{
		{nil, ""},
		{[]int{0}, "0"},
		{[]int{0, 1}, "0-1"},
		{[]int{0, 1, 2, 3, 8, 10, 11}, "0-3,8,10-11"},
		{[]int{11, 10, 8, 3, 2, 1, 0, 8}, "0-3,8,10-11"},
		{[]int{1, 3, 5}, "1,3,5"},
	}
	for _, tt := range tests {
		if got := topology.FormatList(tt.in); got != tt.want {
			t.Errorf("FormatList(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFormatListRoundTrip(t *testing.T) {
	in := []int{0, 2, 3, 4, 7, 9, 10}
	got, err := topology.ParseList(topology.FormatList(in))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, in) {
		t.Errorf("round trip = %v, want %v", got, in)
	}
}
