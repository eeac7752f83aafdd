package topology

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// maxCPU bounds a parsed CPU number so a hostile or corrupt list such as
// "0-4000000000" cannot make ParseList allocate gigabytes.
const maxCPU = 1 << 20

// ParseList parses a kernel CPU or node list such as "0-3,8,10-11" into
// ascending, de-duplicated numbers. Surrounding white space and an empty
// list are accepted; an empty list returns nil.
func ParseList(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}

	var out []int
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := parseListNumber(lo, s)
		if err != nil {
			return nil, err
		}
		last := first
		if isRange {
			if last, err = parseListNumber(hi, s); err != nil {
				return nil, err
			}
		}
		if last < first {
			return nil, fmt.Errorf("cpu list %q: range %q runs backwards — write it low-high", s, part)
		}
		for n := first; n <= last; n++ {
			out = append(out, n)
		}
	}

	slices.Sort(out)
	return slices.Compact(out), nil
}

func parseListNumber(field, list string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(field))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("cpu list %q: %q is not a CPU number — use forms like 0-3,8", list, field)
	}
	if n > maxCPU {
		return 0, fmt.Errorf("cpu list %q: %d exceeds the supported maximum %d", list, n, maxCPU)
	}
	return n, nil
}

// FormatList formats numbers as a kernel CPU list, collapsing runs into
// ranges ("0-3,8,10-11"). The input need not be sorted; duplicates are
// dropped. An empty input formats as "".
func FormatList(nums []int) string {
	sorted := slices.Clone(nums)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)

	var b strings.Builder
	for i := 0; i < len(sorted); {
		j := i
		for j+1 < len(sorted) && sorted[j+1] == sorted[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(sorted[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(sorted[j]))
		}
		i = j + 1
	}
	return b.String()
}
