package kernelorg

import "testing"

func TestParseVersion(t *testing.T) {
	cases := []struct {
		in     string
		want   Version
		series bool
		ok     bool
	}{
		{"6.12", Version{6, 12, 0, 0}, true, true},
		{"6.12.3", Version{6, 12, 3, 0}, false, true},
		{"6.12.0", Version{6, 12, 0, 0}, false, true},
		{"6.13-rc2", Version{6, 13, 0, 2}, false, true},
		{"4.19.325", Version{4, 19, 325, 0}, false, true},
		{"6", Version{}, false, false},
		{"6.12.3.1", Version{}, false, false},
		{"6.12.3-rc1", Version{}, false, false},
		{"6.13-rc0", Version{}, false, false},
		{"6.13-rc", Version{}, false, false},
		{"0.12", Version{}, false, false},
		{"6.012", Version{}, false, false},
		{"6.+1", Version{}, false, false},
		{"v6.12", Version{}, false, false},
		{"", Version{}, false, false},
		{"next-20241204", Version{}, false, false},
	}
	for _, c := range cases {
		got, series, err := parseVersion(c.in)
		if (err == nil) != c.ok {
			t.Errorf("parseVersion(%q) err = %v, want ok=%v", c.in, err, c.ok)
			continue
		}
		if !c.ok {
			continue
		}
		if got != c.want {
			t.Errorf("parseVersion(%q) = %+v, want %+v", c.in, got, c.want)
		}
		if series != c.series {
			t.Errorf("parseVersion(%q) series = %v, want %v", c.in, series, c.series)
		}
	}
}

func TestVersionString(t *testing.T) {
	cases := map[Version]string{
		{6, 12, 0, 0}: "6.12",
		{6, 12, 3, 0}: "6.12.3",
		{6, 13, 0, 2}: "6.13-rc2",
	}
	for v, want := range cases {
		if got := v.String(); got != want {
			t.Errorf("%+v.String() = %q, want %q", v, got, want)
		}
	}
}

func TestVersionCompare(t *testing.T) {
	ordered := []string{"5.19.17", "6.0", "6.1-rc1", "6.1-rc7", "6.1", "6.1.1", "6.1.10", "6.2-rc1", "6.10"}
	for i := range ordered {
		for j := range ordered {
			a, _ := ParseVersion(ordered[i])
			b, _ := ParseVersion(ordered[j])
			want := compareInt(i, j)
			if got := a.Compare(b); got != want {
				t.Errorf("Compare(%s, %s) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
}

func TestIsEOLFunc(t *testing.T) {
	releases := []Release{
		{Moniker: "mainline", Version: Version{6, 13, 0, 2}},
		{Moniker: "stable", Version: Version{6, 12, 3, 0}},
		{Moniker: "stable", Version: Version{6, 11, 11, 0}, EOL: true},
		{Moniker: "longterm", Version: Version{6, 6, 64, 0}},
	}
	cases := map[string]bool{
		"6.12.3":     false,
		"6.12":       false,
		"6.12.1":     false,
		"6.13.0-rc2": false,
		"6.11.2":     true,
		"6.10.14":    true,
		"6.6.1":      false,
		"5.4.280":    true,
		"6.14.0":     false,
		"7.0":        false,
		"local":      false,
		"":           false,
	}
	for version, want := range cases {
		if got := IsEOL(releases, version); got != want {
			t.Errorf("IsEOL(%q) = %v, want %v", version, got, want)
		}
	}
	if IsEOL(nil, "4.4.1") {
		t.Error("IsEOL with no releases must not guess")
	}
}
