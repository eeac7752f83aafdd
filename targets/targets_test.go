package targets

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ktstr/ktbuild/internal/fakekernel"
	"github.com/ktstr/ktbuild/internal/syncbuf"
	"github.com/ktstr/ktbuild/lib/flock"
)

var (
	compileOnce sync.Once
	magePath    string
	compileErr  error
)

// mageBinary compiles this repository's magefile once per test run, the way
// a user's CI would (`mage -compile`).
func mageBinary(t *testing.T) string {
	t.Helper()
	compileOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ktbuild-mage-")
		if err != nil {
			compileErr = err
			return
		}
		magePath = filepath.Join(dir, "kt")
		cmd := exec.Command("go", "run", "mage.go", "-compile", magePath)
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			compileErr = errors.New(string(out))
		}
	})
	if compileErr != nil {
		t.Fatalf("compiling the magefile failed: %v", compileErr)
	}
	return magePath
}

func gitRun(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.invalid",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.invalid", "GIT_CONFIG_GLOBAL=/dev/null")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

func gitTree(t *testing.T, opts fakekernel.Options) string {
	t.Helper()
	dir := fakekernel.New(t, opts)
	gitRun(t, dir, "init", "-q")
	gitRun(t, dir, "add", "-f", "Makefile", "Kconfig", "init", "kernel", ".fake")
	gitRun(t, dir, "commit", "-q", "-m", "fake kernel")
	return dir
}

// kt runs the compiled magefile with a private cache and LLC lock
// directory and returns stdout, stderr and the exit code.
func kt(t *testing.T, cacheDir string, extraEnv []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(mageBinary(t), args...)
	cmd.Env = append(os.Environ(), "KTSTR_CACHE_DIR="+cacheDir, "KTBUILD_OFFLINE=1", "KTSTR_BYPASS_LLC_LOCKS=1")
	cmd.Env = append(cmd.Env, extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("running %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), code
}

func TestBuildPrintsOnlyTheImagePath(t *testing.T) {
	tree := gitTree(t, fakekernel.Options{})
	cacheDir := filepath.Join(t.TempDir(), "cache")

	stdout, stderr, code := kt(t, cacheDir, nil, "kernel:build", "-source="+tree)
	if code != 0 {
		t.Fatalf("kernel:build exited %d\n%s", code, stderr)
	}
	path := strings.TrimSuffix(stdout, "\n")
	if strings.Contains(path, "\n") || !strings.HasPrefix(path, cacheDir+"/local-") || !strings.HasSuffix(path, "/bzImage") {
		t.Fatalf("stdout is not exactly one cached image path: %q", stdout)
	}
	if !strings.Contains(stderr, "build: done") {
		t.Errorf("no build progress on stderr:\n%s", stderr)
	}

	again, stderr, code := kt(t, cacheDir, nil, "kernel:build", "-source="+tree)
	if code != 0 || again != stdout {
		t.Errorf("second kernel:build: exit %d, stdout %q, want %q\n%s", code, again, stdout, stderr)
	}
	if !strings.Contains(stderr, "cache hit") {
		t.Errorf("second kernel:build did not report a cache hit:\n%s", stderr)
	}

	found, _, code := kt(t, cacheDir, nil, "kernel:path", "-source="+tree)
	if code != 0 || found != stdout {
		t.Errorf("kernel:path: exit %d, stdout %q, want %q", code, found, stdout)
	}
}

func TestBuildBadInputExitsNonZero(t *testing.T) {
	cacheDir := filepath.Join(t.TempDir(), "cache")
	cases := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"missing source", []string{"kernel:build", "-source=/nonexistent/linux"}, nil, "/nonexistent/linux"},
		{"ref without git", []string{"kernel:build", "-ref=main"}, nil, "-ref=main needs -git"},
		{"empty source", []string{"kernel:build", "-source="}, nil, "-source is empty"},
		{"empty extra fragment", []string{"kernel:build", "-source=/src", "-extrakconfig="}, nil, "-extrakconfig is empty"},
		{"push key and source", []string{"cache:push", "-key=6.12.3-tarball-x86_64-kcb7244b33", "-source=/src"}, nil, "pass only one"},
		{"two sources", []string{"kernel:build", "-source=/src", "-version=6.12"}, nil, "-source and -version"},
		{"cap with bypass", []string{"kernel:build", "-source=/src", "-cpucap=1"}, nil, "KTSTR_BYPASS_LLC_LOCKS"},
		{"bad HOME", []string{"cache:list"}, []string{"KTSTR_CACHE_DIR=", "XDG_CACHE_HOME=", "HOME=relative/home"}, "HOME"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := kt(t, cacheDir, tc.env, tc.args...)
			if code == 0 {
				t.Fatalf("exit 0, want non-zero\n%s", stderr)
			}
			if stdout != "" {
				t.Errorf("stdout not empty on failure: %q", stdout)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr does not mention %q:\n%s", tc.want, stderr)
			}
		})
	}
}

func TestBuildStopSignalsStopMakeAndCleanUp(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) { checkStopSignal(t, sig) })
	}
}

// checkStopSignal sends sig to a kernel:build in the middle of make and
// checks that nothing of the build is left running, locked or on disk.
func checkStopSignal(t *testing.T, sig syscall.Signal) {
	tree := gitTree(t, fakekernel.Options{Delay: 60 * time.Second})
	cacheDir := filepath.Join(t.TempDir(), "cache")
	cmd := exec.Command(mageBinary(t), "kernel:build", "-source="+tree, "-cpucap=1")
	cmd.Env = append(os.Environ(), "KTSTR_CACHE_DIR="+cacheDir, "KTBUILD_OFFLINE=1")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stderr.String(), "build: started") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)

	start := time.Now()
	cmd.Process.Signal(sig)
	err := cmd.Wait()
	if err == nil {
		t.Errorf("kernel:build stopped by %s exited 0\n%s", sig, stderr.String())
	}
	if time.Since(start) > 6*time.Second {
		t.Errorf("kernel:build took %s to stop after %s", time.Since(start), sig)
	}

	if procs := processesIn(tree); len(procs) > 0 {
		t.Errorf("processes still running in the tree after %s: %v", sig, procs)
	}
	if n := fakekernel.CompileCount(tree); n != 0 {
		t.Errorf("the interrupted compile finished %d times", n)
	}
	locks, _ := filepath.Glob(filepath.Join(cacheDir, ".locks", "*.lock"))
	for _, p := range locks {
		l, err := flock.TryLock(p, flock.Exclusive)
		if err != nil {
			t.Errorf("lock %s still held after %s: %v", p, sig, err)
			continue
		}
		l.Release()
	}
	leftovers, _ := filepath.Glob(filepath.Join(cacheDir, ".tmp-*"))
	groups, _ := filepath.Glob("/sys/fs/cgroup/cpuset/ktstr-build-*-" + strconv.Itoa(cmd.Process.Pid))
	if len(leftovers)+len(groups) > 0 {
		t.Errorf("left behind after %s: %v %v", sig, leftovers, groups)
	}
}

// processesIn lists the pids whose working directory is dir or below it.
func processesIn(dir string) []int {
	var pids []int
	procs, _ := filepath.Glob("/proc/[0-9]*/cwd")
	for _, link := range procs {
		cwd, err := os.Readlink(link)
		if err != nil || (cwd != dir && !strings.HasPrefix(cwd, dir+"/")) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(link)))
		pids = append(pids, pid)
	}
	return pids
}

// syncBuffer collects a process's stderr while the test reads it.
type syncBuffer = syncbuf.Buffer

func TestDoctorReportsToolsAndQEMU(t *testing.T) {
	stdout, stderr, code := kt(t, filepath.Join(t.TempDir(), "cache"), nil, "kernel:doctor")
	if code != 0 {
		t.Fatalf("kernel:doctor exited %d on a host with every tool\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"ok   make:", "ok   pahole: v", "qemu:", "tcg:"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("kernel:doctor output lacks %q:\n%s", want, stdout)
		}
	}
}

func TestBuildSIGTERMWhileBlockedExits(t *testing.T) {
	// Opening a FIFO with no writer blocks, as a hung filesystem would.
	fifo := filepath.Join(t.TempDir(), "linux-6.12.tar.gz")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(mageBinary(t), "kernel:build", "-source="+fifo)
	cmd.Env = append(os.Environ(), "KTSTR_CACHE_DIR="+filepath.Join(t.TempDir(), "cache"), "KTBUILD_OFFLINE=1", "KTSTR_BYPASS_LLC_LOCKS=1")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	time.Sleep(time.Second)
	cmd.Process.Signal(syscall.SIGTERM)

	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err == nil {
			t.Errorf("kernel:build stopped by SIGTERM exited 0\n%s", stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("kernel:build blocked on a FIFO ignored SIGTERM\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "stopped by SIGTERM") {
		t.Errorf("no note that SIGTERM cut the cleanup short:\n%s", stderr.String())
	}
}

func TestBuildCorruptTarballMessage(t *testing.T) {
	// Random bytes make the decoder exit while ktbuild still writes to it.
	junk := make([]byte, 8<<20)
	seed := uint32(3)
	for i := range junk {
		seed = seed*1664525 + 1013904223
		junk[i] = byte(seed >> 24)
	}
	tarball := filepath.Join(t.TempDir(), "linux-6.12.tar.gz")
	if err := os.WriteFile(tarball, junk, 0o644); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_, stderr, code := kt(t, filepath.Join(t.TempDir(), "cache"), nil, "kernel:build", "-source="+tarball)
		if code == 0 {
			t.Fatalf("build of a corrupt tarball exited 0\n%s", stderr)
		}
		if !strings.Contains(stderr, "truncated or corrupt") || strings.Contains(stderr, "context canceled") {
			t.Errorf("build of a corrupt tarball does not say it is corrupt:\n%s", stderr)
		}
	}
}
