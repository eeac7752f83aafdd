package kernelorg

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is a kernel.org release number: MAJOR.MINOR, MAJOR.MINOR.PATCH or
// MAJOR.MINOR-rcN. Patch 0 is the series' first release, whose tarball is
// named without a patch number ("linux-6.12.tar.xz").
type Version struct {
	Major, Minor, Patch int
	// RC is the release-candidate number, 0 for a release.
	RC int
}

// ParseVersion parses "6.12", "6.12.3" or "6.13-rc2". A release candidate
// takes no patch number.
func ParseVersion(s string) (Version, error) {
	v, _, err := parseVersion(s)
	return v, err
}

// parseVersion also reports whether s named a series ("6.12"), which Resolve
// reads as "the newest release of 6.12".
func parseVersion(s string) (v Version, series bool, err error) {
	invalid := fmt.Errorf("kernel.org: invalid version %q — use MAJOR.MINOR, MAJOR.MINOR.PATCH or MAJOR.MINOR-rcN", s)

	rest := s
	if base, rc, ok := strings.Cut(s, "-rc"); ok {
		n, ok := parseNumber(rc)
		if !ok || n == 0 {
			return Version{}, false, invalid
		}
		v.RC = n
		rest = base
	}

	parts := strings.Split(rest, ".")
	if len(parts) < 2 || len(parts) > 3 || (v.RC > 0 && len(parts) != 2) {
		return Version{}, false, invalid
	}
	nums := make([]int, len(parts))
	for i, p := range parts {
		n, ok := parseNumber(p)
		if !ok {
			return Version{}, false, invalid
		}
		nums[i] = n
	}
	if nums[0] == 0 {
		return Version{}, false, invalid
	}

	v.Major, v.Minor = nums[0], nums[1]
	if len(nums) == 3 {
		v.Patch = nums[2]
	}
	return v, len(nums) == 2 && v.RC == 0, nil
}

// parseNumber accepts plain decimal digits without a sign or leading zeros.
func parseNumber(s string) (int, bool) {
	if s == "" || len(s) > 6 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// String formats v the way kernel.org names its tarballs: a patch of 0 is
// left out.
func (v Version) String() string {
	switch {
	case v.RC > 0:
		return fmt.Sprintf("%d.%d-rc%d", v.Major, v.Minor, v.RC)
	case v.Patch == 0:
		return fmt.Sprintf("%d.%d", v.Major, v.Minor)
	default:
		return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
	}
}

// Series returns "MAJOR.MINOR".
func (v Version) Series() string {
	return fmt.Sprintf("%d.%d", v.Major, v.Minor)
}

// IsRC reports whether v is a release candidate.
func (v Version) IsRC() bool { return v.RC > 0 }

// Compare returns -1, 0 or +1 as v sorts before, equal to or after w. A
// series' release candidates sort before its first release.
func (v Version) Compare(w Version) int {
	if c := compareInt(v.Major, w.Major); c != 0 {
		return c
	}
	if c := compareInt(v.Minor, w.Minor); c != 0 {
		return c
	}
	switch {
	case v.RC > 0 && w.RC > 0:
		return compareInt(v.RC, w.RC)
	case v.RC > 0:
		return -1
	case w.RC > 0:
		return 1
	}
	return compareInt(v.Patch, w.Patch)
}

func (v Version) sameSeries(w Version) bool {
	return v.Major == w.Major && v.Minor == w.Minor
}

func compareInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// seriesPrefix reads the leading MAJOR.MINOR of a version string as a
// kernel Makefile writes it ("6.13.0-rc2", "6.12.3-dirty").
func seriesPrefix(s string) (major, minor int, ok bool) {
	majorText, rest, found := strings.Cut(s, ".")
	if !found {
		return 0, 0, false
	}
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	major, ok1 := parseNumber(majorText)
	minor, ok2 := parseNumber(rest[:end])
	if !ok1 || !ok2 || major == 0 {
		return 0, 0, false
	}
	return major, minor, true
}
