package pipeline

import (
	"strconv"
	"strings"
)

// versionLess orders kernel versions numerically ("6.9" < "6.12"), with an
// -rcN release before its final release.
func versionLess(a, b string) bool {
	na, rca := splitVersion(a)
	nb, rcb := splitVersion(b)
	for i := 0; i < len(na) || i < len(nb); i++ {
		x, y := at(na, i), at(nb, i)
		if x != y {
			return x < y
		}
	}
	// A release without -rc sorts after all its release candidates.
	if rca == 0 || rcb == 0 {
		return rca != 0 && rcb == 0
	}
	return rca < rcb
}

func splitVersion(v string) (nums []int, rc int) {
	base := v
	if i := strings.Index(v, "-rc"); i >= 0 {
		base = v[:i]
		rc, _ = strconv.Atoi(v[i+3:])
	}
	for _, p := range strings.Split(base, ".") {
		n, _ := strconv.Atoi(p)
		nums = append(nums, n)
	}
	return nums, rc
}

func at(nums []int, i int) int {
	if i < len(nums) {
		return nums[i]
	}
	return -1
}
