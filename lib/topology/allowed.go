package topology

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// AllowedCPUs returns the CPUs this process may run on, ascending. With
// procRoot "/proc" (or "") it calls sched_getaffinity and falls back to
// Cpus_allowed_list in /proc/self/status. Any other procRoot reads only
// that file, so tests can inject a status file.
func AllowedCPUs(procRoot string) ([]int, error) {
	if procRoot == "" || filepath.Clean(procRoot) == "/proc" {
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(0, &set); err == nil {
			return cpuSetList(&set), nil
		}
		procRoot = "/proc"
	}
	return allowedFromStatus(filepath.Join(procRoot, "self", "status"))
}

func cpuSetList(set *unix.CPUSet) []int {
	var cpus []int
	for cpu := 0; cpu < len(set)*64; cpu++ {
		if set.IsSet(cpu) {
			cpus = append(cpus, cpu)
		}
	}
	return cpus
}

func allowedFromStatus(path string) ([]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("allowed CPUs: %w", err)
	}
	defer f.Close()

	sc := bufio.NewScanner(f)
	for sc.Scan() {
		value, ok := strings.CutPrefix(sc.Text(), "Cpus_allowed_list:")
		if !ok {
			continue
		}
		cpus, err := ParseList(value)
		if err != nil {
			return nil, fmt.Errorf("allowed CPUs: %s: %w", path, err)
		}
		if len(cpus) == 0 {
			return nil, fmt.Errorf("allowed CPUs: %s has an empty Cpus_allowed_list — check the process's affinity", path)
		}
		return cpus, nil
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("allowed CPUs: read %s: %w", path, err)
	}
	return nil, fmt.Errorf("allowed CPUs: %s has no Cpus_allowed_list line — is %s a Linux procfs?", path, filepath.Dir(filepath.Dir(path)))
}
