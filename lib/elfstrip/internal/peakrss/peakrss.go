// Package peakrss reads a process's peak resident set size from Linux's
// /proc/PID/status.
package peakrss

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Read returns the VmHWM value of the status file at path, in KiB.
func Read(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("peakrss: cannot open %s — this needs Linux procfs: %w", path, err)
	}
	defer f.Close()

	sc := bufio.NewScanner(f)
	for sc.Scan() {
		value, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("peakrss: invalid VmHWM line %q in %s: %w", sc.Text(), path, err)
		}
		return kib, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("peakrss: reading %s failed: %w", path, err)
	}
	return 0, fmt.Errorf("peakrss: no VmHWM line in %s — the kernel does not report peak RSS", path)
}
