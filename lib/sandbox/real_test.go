package sandbox

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ktstr/ktbuild/lib/topology"
)

// requireRealCpuset skips unless this host offers a writable cpuset to
// root. The CI host (hybrid cgroups, root) does, so these tests run there.
func requireRealCpuset(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cpuset cgroups")
	}
	if _, err := findHierarchy("/sys/fs/cgroup", "/proc"); err != nil {
		t.Skipf("host has no usable cpuset hierarchy: %v", err)
	}
}

func allowedCPUs(t *testing.T) []int {
	t.Helper()
	cpus, err := topology.AllowedCPUs("/proc")
	if err != nil {
		t.Fatal(err)
	}
	return cpus
}

func statusField(status, field string) string {
	for line := range strings.SplitSeq(status, "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func TestRealSandboxConfinesChild(t *testing.T) {
	requireRealCpuset(t)
	before, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	allowed := allowedCPUs(t)
	plan := []int{allowed[len(allowed)-1]}

	s, err := New(context.Background(), Options{CPUs: plan, Mems: []int{0}, Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	cmd := exec.Command("sh", "-c", "cat /proc/self/status; echo ---; cat /proc/self/cgroup")
	if err := s.Wrap(cmd); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("wrapped child: %v\n%s", err, out)
	}
	status, cgroups, _ := strings.Cut(string(out), "---")
	if got, want := statusField(status, "Cpus_allowed_list"), topology.FormatList(plan); got != want {
		t.Errorf("child Cpus_allowed_list = %q, want %q", got, want)
	}
	if !strings.Contains(cgroups, filepath.Base(s.Dir)) {
		t.Errorf("child cgroups do not name %s:\n%s", filepath.Base(s.Dir), cgroups)
	}

	after, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Errorf("test process moved from\n%s\nto\n%s", before, after)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("group %s still exists after Close: %v", s.Dir, err)
	}
}

func TestRealSandboxCloseMovesTasks(t *testing.T) {
	requireRealCpuset(t)
	s, err := New(context.Background(), Options{CPUs: allowedCPUs(t)[:1], Mems: []int{0}, Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// A child that outlives the build keeps the group busy until Close
	// moves it out.
	cmd := exec.Command("sleep", "30")
	if err := s.Wrap(cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	waitForTask(t, s.Dir, cmd.Process.Pid)

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("group %s still exists after Close: %v", s.Dir, err)
	}
}

func waitForTask(t *testing.T, dir string, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		data, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		for _, f := range strings.Fields(string(data)) {
			if f == strconv.Itoa(pid) {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("pid %d never joined %s", pid, dir)
}

func TestRealSandboxNarrowed(t *testing.T) {
	requireRealCpuset(t)
	allowed := allowedCPUs(t)
	beyond := allowed[len(allowed)-1] + 64
	var w warnings

	s, err := New(context.Background(), Options{CPUs: []int{allowed[0], beyond}, Mems: []int{0}, Warn: w.warn})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Degraded == nil || s.Degraded.Reason != Narrowed || len(s.CPUs) != 1 || s.CPUs[0] != allowed[0] {
		t.Errorf("sandbox CPUs %v Degraded %v, want narrowed to CPU %d", s.CPUs, s.Degraded, allowed[0])
	}
	if !strings.Contains(w.String(), strconv.Itoa(beyond)) {
		t.Errorf("warning %q does not name the planned CPU %d", w.String(), beyond)
	}

	_, err = New(context.Background(), Options{CPUs: []int{allowed[0], beyond}, Mems: []int{0}, Strict: true})
	var d *DegradedError
	if !errors.As(err, &d) || d.Reason != Narrowed {
		t.Errorf("strict: error = %v, want Narrowed", err)
	}
}

func TestRealSandboxSweepsOrphan(t *testing.T) {
	requireRealCpuset(t)
	h, err := findHierarchy("/sys/fs/cgroup", "/proc")
	if err != nil {
		t.Fatal(err)
	}

	exited := exec.Command("true")
	if err := exited.Run(); err != nil {
		t.Fatal(err)
	}
	orphan := filepath.Join(h.dir, GroupPrefix+"1-"+strconv.Itoa(exited.Process.Pid))
	if err := os.Mkdir(orphan, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeDir(orphan) })
	dayOld := time.Now().Add(-25 * time.Hour)
	if err := os.Chtimes(orphan, dayOld, dayOld); err != nil {
		t.Fatal(err)
	}

	s, err := New(context.Background(), Options{CPUs: allowedCPUs(t)[:1], Mems: []int{0}, Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(orphan); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("orphan %s still exists: %v", orphan, err)
	}
}
