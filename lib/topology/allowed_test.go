package topology_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ktstr/ktbuild/lib/topology"
)

func writeStatus(t *testing.T, content string) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "self")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "status"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestAllowedCPUsFromStatus(t *testing.T) {
	root := writeStatus(t, "Name:\tmake\nCpus_allowed:\tff\nCpus_allowed_list:\t0-2,6\nMems_allowed_list:\t0\n")
	got, err := topology.AllowedCPUs(root)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{0, 1, 2, 6}; !slices.Equal(got, want) {
		t.Errorf("AllowedCPUs = %v, want %v", got, want)
	}
}

func TestAllowedCPUsStatusErrors(t *testing.T) {
	tests := []struct {
		name, status, want string
	}{
		{"no line", "Name:\tmake\n", "no Cpus_allowed_list"},
		{"malformed", "Cpus_allowed_list:\tx-y\n", "not a CPU number"},
		{"empty", "Cpus_allowed_list:\t\n", "empty Cpus_allowed_list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := topology.AllowedCPUs(writeStatus(t, tt.status))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestAllowedCPUsMissingProc(t *testing.T) {
	if _, err := topology.AllowedCPUs(t.TempDir()); err == nil {
		t.Error("AllowedCPUs on an empty proc root succeeded")
	}
}

func TestAllowedCPUsHostMatchesStatus(t *testing.T) {
	fromKernel, err := topology.AllowedCPUs("/proc")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if value, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			fromStatus, err := topology.ParseList(value)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(fromKernel, fromStatus) {
				t.Errorf("sched_getaffinity = %v, Cpus_allowed_list = %v", fromKernel, fromStatus)
			}
			return
		}
	}
	t.Fatal("no Cpus_allowed_list in /proc/self/status")
}
