package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeHost is a hand-made cgroup tree and procfs for one test.
type fakeHost struct {
	cgroupRoot string
	procRoot   string
}

func newFakeHost(t *testing.T) fakeHost {
	t.Helper()
	dir := t.TempDir()
	h := fakeHost{cgroupRoot: filepath.Join(dir, "cgroup"), procRoot: filepath.Join(dir, "proc")}
	mustMkdir(t, h.cgroupRoot)
	mustMkdir(t, filepath.Join(h.procRoot, "self"))
	return h
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	mustMkdir(t, filepath.Dir(path))
	if err := os.WriteFile(path, []byte(content+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (h fakeHost) selfCgroup(t *testing.T, content string) {
	mustWrite(t, filepath.Join(h.procRoot, "self", "cgroup"), content)
}

// v2Group writes a cgroup v2 group at mount+group with the given files.
func (h fakeHost) v2Group(t *testing.T, mount, group, controllers, subtree, cpus, mems string) string {
	t.Helper()
	mustWrite(t, filepath.Join(mount, "cgroup.controllers"), "cpuset cpu io memory pids")
	dir := filepath.Join(mount, group)
	mustWrite(t, filepath.Join(dir, "cgroup.controllers"), controllers)
	mustWrite(t, filepath.Join(dir, "cgroup.subtree_control"), subtree)
	mustWrite(t, filepath.Join(dir, "cgroup.procs"), "")
	mustWrite(t, filepath.Join(dir, "cpuset.cpus.effective"), cpus)
	mustWrite(t, filepath.Join(dir, "cpuset.mems.effective"), mems)
	return dir
}

// v1Group writes a cgroup v1 cpuset group at cgroupRoot/cpuset+group.
func (h fakeHost) v1Group(t *testing.T, group, cpus, mems string) string {
	t.Helper()
	mount := filepath.Join(h.cgroupRoot, "cpuset")
	mustWrite(t, filepath.Join(mount, "cpuset.cpus"), cpus)
	mustWrite(t, filepath.Join(mount, "cpuset.mems"), mems)
	mustWrite(t, filepath.Join(mount, "cgroup.procs"), "")
	dir := filepath.Join(mount, group)
	mustWrite(t, filepath.Join(dir, "cpuset.cpus"), cpus)
	mustWrite(t, filepath.Join(dir, "cpuset.mems"), mems)
	mustWrite(t, filepath.Join(dir, "cgroup.procs"), "")
	return dir
}

// warnings collects Warn calls.
type warnings struct {
	mu    sync.Mutex
	lines []string
}

func (w *warnings) warn(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lines = append(w.lines, fmt.Sprintf(format, args...))
}

func (w *warnings) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n")
}

func (h fakeHost) options(cpus []int, w *warnings) Options {
	return Options{CPUs: cpus, Mems: []int{0}, CgroupRoot: h.cgroupRoot, ProcRoot: h.procRoot, Warn: w.warn}
}

func sandboxGroups(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), GroupPrefix) {
			names = append(names, e.Name())
		}
	}
	return names
}

func TestNewV2CreatesGroup(t *testing.T) {
	h := newFakeHost(t)
	parent := h.v2Group(t, h.cgroupRoot, "/build.slice", "cpuset cpu", "", "0-7", "0")
	h.selfCgroup(t, "0::/build.slice")
	var w warnings

	s, err := New(context.Background(), h.options([]int{2, 3}, &w))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	if s.Version != 2 || filepath.Dir(s.Dir) != parent || !strings.HasPrefix(filepath.Base(s.Dir), GroupPrefix) {
		t.Errorf("sandbox Version %d Dir %s, want a v2 group under %s", s.Version, s.Dir, parent)
	}
	if !strings.HasSuffix(s.Dir, "-"+strconv.Itoa(os.Getpid())) {
		t.Errorf("group %s does not end in our pid", s.Dir)
	}
	if got := readTrimmed(filepath.Join(parent, "cgroup.subtree_control")); got != "+cpuset" {
		t.Errorf("parent cgroup.subtree_control = %q, want +cpuset written", got)
	}
	if got := readTrimmed(filepath.Join(s.Dir, "cpuset.cpus")); got != "2-3" {
		t.Errorf("cpuset.cpus = %q, want 2-3", got)
	}
	if got := readTrimmed(filepath.Join(s.Dir, "cpuset.mems")); got != "0" {
		t.Errorf("cpuset.mems = %q, want 0", got)
	}
	if !slices.Equal(s.CPUs, []int{2, 3}) || s.Degraded != nil || w.String() != "" {
		t.Errorf("CPUs %v, Degraded %v, warnings %q", s.CPUs, s.Degraded, w.String())
	}

	cmd := exec.Command("make", "-j2")
	if err := s.Wrap(cmd); err != nil {
		t.Fatal(err)
	}
	if cmd.SysProcAttr == nil || !cmd.SysProcAttr.UseCgroupFD {
		t.Fatalf("SysProcAttr = %+v, want UseCgroupFD", cmd.SysProcAttr)
	}
	link, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(cmd.SysProcAttr.CgroupFD))
	if err != nil || link != s.Dir {
		t.Errorf("CgroupFD points to %q (%v), want %s", link, err, s.Dir)
	}
	if cmd.Args[0] != "make" {
		t.Errorf("v2 Wrap changed Args to %q", cmd.Args)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("group %s still exists after Close: %v", s.Dir, err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.Wrap(exec.Command("true")); err == nil {
		t.Error("Wrap after Close succeeded")
	}
}

func TestNewV2KeepsDelegatedSubtree(t *testing.T) {
	h := newFakeHost(t)
	parent := h.v2Group(t, h.cgroupRoot, "/", "cpuset cpu", "cpuset memory", "0-3", "0")
	h.selfCgroup(t, "0::/")

	s, err := New(context.Background(), h.options([]int{0}, &warnings{}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Version != 2 || filepath.Dir(s.Dir) != parent {
		t.Errorf("sandbox Version %d Dir %s, want a v2 group under the delegating root", s.Version, s.Dir)
	}
	if got := readTrimmed(filepath.Join(parent, "cgroup.subtree_control")); got != "cpuset memory" {
		t.Errorf("root cgroup.subtree_control rewritten to %q", got)
	}
}

func TestNewHybridFallsBackToV1(t *testing.T) {
	h := newFakeHost(t)
	h.v2Group(t, filepath.Join(h.cgroupRoot, "unified"), "/", "", "", "", "")
	parent := h.v1Group(t, "/ci", "0-3", "0")
	h.selfCgroup(t, "3:cpuset:/ci\n1:name=systemd:/\n0::/")

	s, err := New(context.Background(), h.options([]int{1, 2}, &warnings{}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Version != 1 || filepath.Dir(s.Dir) != parent {
		t.Fatalf("sandbox Version %d Dir %s, want a v1 group under %s", s.Version, s.Dir, parent)
	}
	if got := readTrimmed(filepath.Join(s.Dir, "cpuset.cpus")); got != "1-2" {
		t.Errorf("cpuset.cpus = %q, want 1-2", got)
	}

	cmd := exec.Command("make", "-C", "/src", "-j2")
	cmd.Env = []string{"A=1"}
	if err := s.Wrap(cmd); err != nil {
		t.Fatal(err)
	}
	wantTail := []string{s.Dir, cmd.Args[5], "-C", "/src", "-j2"}
	if filepath.Base(cmd.Path) != "sh" || cmd.Args[1] != "-c" || !slices.Equal(cmd.Args[4:], wantTail) {
		t.Errorf("wrapped command = %s %q", cmd.Path, cmd.Args)
	}
	if filepath.Base(cmd.Args[5]) != "make" {
		t.Errorf("wrapped command execs %q, want make", cmd.Args[5])
	}
	if !slices.Equal(cmd.Env, []string{"A=1"}) {
		t.Errorf("Wrap changed Env to %q", cmd.Env)
	}
}

func TestNewDegraded(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(t *testing.T, h fakeHost)
		fail   map[string]error
		reason Reason
		remedy string
	}{
		{
			name:   "no cgroup filesystem",
			setup:  func(t *testing.T, h fakeHost) { h.selfCgroup(t, "0::/") },
			reason: NoCgroupFS,
			remedy: "mount cgroup2",
		},
		{
			name:   "no proc cgroup file",
			setup:  func(t *testing.T, h fakeHost) {},
			reason: NoCgroupFS,
			remedy: "mount cgroup2",
		},
		{
			name: "no cpuset controller",
			setup: func(t *testing.T, h fakeHost) {
				h.v2Group(t, h.cgroupRoot, "/user.slice", "cpu memory", "", "0-3", "0")
				h.selfCgroup(t, "0::/user.slice")
			},
			reason: NoCpuset,
			remedy: "subtree_control",
		},
		{
			name: "hybrid without any cpuset",
			setup: func(t *testing.T, h fakeHost) {
				h.v2Group(t, filepath.Join(h.cgroupRoot, "unified"), "/", "", "", "", "")
				mustWrite(t, filepath.Join(h.cgroupRoot, "memory", "cgroup.procs"), "")
				h.selfCgroup(t, "4:memory:/\n0::/")
			},
			reason: NoCpuset,
			remedy: "mount the cpuset hierarchy",
		},
		{
			name: "root cgroup without delegation",
			setup: func(t *testing.T, h fakeHost) {
				h.v2Group(t, h.cgroupRoot, "/", "cpuset cpu", "cpu", "0-3", "0")
				h.selfCgroup(t, "0::/")
			},
			reason: RootCgroup,
			remedy: "child cgroup",
		},
		{
			name: "permission denied creating the group",
			setup: func(t *testing.T, h fakeHost) {
				h.v1Group(t, "/", "0-3", "0")
				h.selfCgroup(t, "3:cpuset:/\n0::/")
			},
			fail:   map[string]error{"mkdir": &fs.PathError{Op: "mkdir", Path: "x", Err: unix.EACCES}},
			reason: PermissionDenied,
			remedy: "run as root",
		},
		{
			name: "permission denied enabling cpuset",
			setup: func(t *testing.T, h fakeHost) {
				h.v2Group(t, h.cgroupRoot, "/user.slice/user-1000.slice", "cpuset cpu", "", "0-3", "0")
				h.selfCgroup(t, "0::/user.slice/user-1000.slice")
			},
			fail:   map[string]error{"subtree_control": &fs.PathError{Op: "open", Path: "x", Err: unix.EROFS}},
			reason: PermissionDenied,
			remedy: "delegated",
		},
		{
			name: "no planned CPU allowed",
			setup: func(t *testing.T, h fakeHost) {
				h.v1Group(t, "/", "4-7", "0")
				h.selfCgroup(t, "3:cpuset:/\n0::/")
			},
			reason: Narrowed,
			remedy: "lower the CPU cap",
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, strict := range []bool{false, true} {
				h := newFakeHost(t)
				tt.setup(t, h)
				var w warnings
				opts := h.options([]int{0, 1}, &w)
				opts.Strict = strict
				opts.failStep = func(step string) error { return tt.fail[step] }

				s, err := New(context.Background(), opts)
				if strict {
					var d *DegradedError
					if !errors.As(err, &d) || d.Reason != tt.reason {
						t.Fatalf("strict: error = %v, want a DegradedError with reason %v", err, tt.reason)
					}
					if !strings.Contains(err.Error(), tt.remedy) || (tt.reason != Narrowed && !strings.Contains(err.Error(), "unset the CPU cap")) {
						t.Errorf("strict: error %q lacks the remedy %q", err, tt.remedy)
					}
					if s != nil {
						t.Errorf("strict: got a sandbox %+v with the error", s)
					}
					continue
				}

				if err != nil {
					t.Fatalf("error = %v, want a warning", err)
				}
				if s.Degraded == nil || s.Degraded.Reason != tt.reason {
					t.Errorf("Degraded = %v, want reason %v", s.Degraded, tt.reason)
				}
				if s.Dir != "" {
					t.Errorf("degraded sandbox has a group %s", s.Dir)
				}
				if !strings.Contains(w.String(), tt.remedy) || !strings.Contains(w.String(), "without a cpuset") {
					t.Errorf("warning %q lacks the remedy %q", w.String(), tt.remedy)
				}
				cmd := exec.Command("true")
				if err := s.Wrap(cmd); err != nil || cmd.SysProcAttr != nil || len(cmd.Args) != 1 {
					t.Errorf("Wrap on a degraded sandbox changed the command: %v %+v %q", err, cmd.SysProcAttr, cmd.Args)
				}
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}
		})
	}
}

func TestNewNarrowedV2(t *testing.T) {
	for _, strict := range []bool{false, true} {
		h := newFakeHost(t)
		parent := h.v2Group(t, h.cgroupRoot, "/ci", "cpuset", "cpuset", "0-1", "0")
		h.selfCgroup(t, "0::/ci")
		var w warnings
		opts := h.options([]int{0, 1, 2, 3}, &w)
		opts.Strict = strict

		s, err := New(context.Background(), opts)
		if strict {
			var d *DegradedError
			if !errors.As(err, &d) || d.Reason != Narrowed || !strings.Contains(err.Error(), "only CPUs 0-1 of the planned 0-3") {
				t.Fatalf("strict: error = %v, want Narrowed naming both sets", err)
			}
			if groups := sandboxGroups(t, parent); len(groups) != 0 {
				t.Errorf("strict: groups left behind: %v", groups)
			}
			continue
		}

		if err != nil {
			t.Fatal(err)
		}
		if s.Dir == "" || !slices.Equal(s.CPUs, []int{0, 1}) || s.Degraded == nil || s.Degraded.Reason != Narrowed {
			t.Errorf("sandbox Dir %q CPUs %v Degraded %v, want a group narrowed to 0-1", s.Dir, s.CPUs, s.Degraded)
		}
		if !strings.Contains(w.String(), "make runs on CPUs 0-1") {
			t.Errorf("warning = %q", w.String())
		}
		s.Close()
	}
}

func TestNewMemsOutsideParent(t *testing.T) {
	h := newFakeHost(t)
	h.v1Group(t, "/", "0-3", "1")
	h.selfCgroup(t, "3:cpuset:/\n0::/")
	opts := h.options([]int{0}, &warnings{})
	opts.Mems = []int{0}

	s, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := readTrimmed(filepath.Join(s.Dir, "cpuset.mems")); got != "1" {
		t.Errorf("cpuset.mems = %q, want the parent's node 1", got)
	}
}

func TestNewNoCPUs(t *testing.T) {
	if _, err := New(context.Background(), Options{}); err == nil {
		t.Error("New without CPUs succeeded")
	}
}

func TestNewCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := New(ctx, Options{CPUs: []int{0}}); !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", err)
	}
}

func TestGroupDirStripsMountRoot(t *testing.T) {
	roots := map[string]string{"/sys/fs/cgroup/cpuset": "/docker/abc"}
	tests := []struct{ group, want string }{
		{"/docker/abc", "/sys/fs/cgroup/cpuset"},
		{"/docker/abc/inner", "/sys/fs/cgroup/cpuset/inner"},
		{"/docker/abcdef", "/sys/fs/cgroup/cpuset/docker/abcdef"},
		{"/other", "/sys/fs/cgroup/cpuset/other"},
	}
	for _, tt := range tests {
		if got := groupDir("/sys/fs/cgroup/cpuset", tt.group, roots); got != tt.want {
			t.Errorf("groupDir(%q) = %q, want %q", tt.group, got, tt.want)
		}
	}
}

func TestReadMountRoots(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mountinfo")
	mustWrite(t, path, "30 25 0:26 /docker/abc /sys/fs/cgroup/cpuset rw,nosuid - cgroup cgroup rw,cpuset\n"+
		"31 25 0:27 / /mnt/with\\040space rw - tmpfs tmpfs rw")
	roots := readMountRoots(path)
	if roots["/sys/fs/cgroup/cpuset"] != "/docker/abc" || roots["/mnt/with space"] != "/" {
		t.Errorf("roots = %v", roots)
	}
}

func TestNewV1ContainerMountRoot(t *testing.T) {
	h := newFakeHost(t)
	parent := h.v1Group(t, "/", "0-3", "0")
	h.selfCgroup(t, "3:cpuset:/docker/abc\n0::/")
	mount := filepath.Join(h.cgroupRoot, "cpuset")
	mustWrite(t, filepath.Join(h.procRoot, "self", "mountinfo"),
		"30 25 0:26 /docker/abc "+mount+" rw,nosuid - cgroup cgroup rw,cpuset")

	s, err := New(context.Background(), h.options([]int{1}, &warnings{}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if filepath.Dir(s.Dir) != parent {
		t.Errorf("group %s, want it directly under the mount %s", s.Dir, parent)
	}
	if got := readTrimmed(filepath.Join(s.Dir, "cpuset.cpus")); got != "1" {
		t.Errorf("cpuset.cpus = %q, want 1", got)
	}
}
