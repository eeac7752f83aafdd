package kbuild

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ktstr/ktbuild/internal/fakekernel"
	"github.com/ktstr/ktbuild/lib/progress"
)

// configuredTree returns a fake tree that has run make defconfig.
func configuredTree(t *testing.T) string {
	t.Helper()
	dir := fakekernel.New(t, fakekernel.Options{})
	cmd := exec.Command("make", "defconfig")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make defconfig: %v\n%s", err, out)
	}
	return dir
}

func TestMakeCountsObjects(t *testing.T) {
	dir := configuredTree(t)
	logPath := filepath.Join(t.TempDir(), "build.log")
	var status, verbose bytes.Buffer
	reporter := progress.NewMode(&status, progress.Mode{})
	reporter.Phase("build")

	result, err := Make(context.Background(), MakeRequest{
		Dir: dir, Jobs: 2, LogPath: logPath, Progress: reporter,
		ExpectedObjects: fakekernel.Objects, Verbose: &verbose,
	})
	reporter.Done()
	if err != nil {
		t.Fatalf("Make: %v", err)
	}

	if result.Objects != fakekernel.Objects {
		t.Errorf("Objects = %d, want %d", result.Objects, fakekernel.Objects)
	}
	if fakekernel.CompileCount(dir) != 1 {
		t.Errorf("fake tree compiled %d times, want 1", fakekernel.CompileCount(dir))
	}
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"### ktbuild: make -j2 KCFLAGS=-Wno-error in " + dir, "  CC      kernel/sched/ext.o\n", "bzImage is ready"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if !strings.Contains(verbose.String(), "  CC      kernel/fork.o\n") {
		t.Errorf("verbose stream lacks the CC lines:\n%s", verbose.String())
	}
	if want := fmt.Sprintf("(%d objects)", fakekernel.Objects); !strings.Contains(status.String(), want) {
		t.Errorf("progress output lacks %q:\n%s", want, status.String())
	}
}

func TestMakeAppendsLog(t *testing.T) {
	dir := configuredTree(t)
	logPath := filepath.Join(t.TempDir(), "build.log")
	for range 2 {
		if _, err := Make(context.Background(), MakeRequest{Dir: dir, LogPath: logPath}); err != nil {
			t.Fatal(err)
		}
	}
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(log), "bzImage is ready"); n != 2 {
		t.Errorf("log holds %d builds, want 2", n)
	}
}

func TestMakeFailureReport(t *testing.T) {
	dir := configuredTree(t)
	logPath := filepath.Join(t.TempDir(), "build.log")
	_, err := Make(context.Background(), MakeRequest{
		Dir: dir, LogPath: logPath, Env: append(os.Environ(), "FAKE_KERNEL_FAIL=1"),
	})

	var makeErr *MakeError
	if !errors.As(err, &makeErr) {
		t.Fatalf("Make = %v, want a *MakeError", err)
	}
	if makeErr.ExitCode != 2 {
		t.Errorf("ExitCode = %d, want 2", makeErr.ExitCode)
	}
	if len(makeErr.Lines) == 0 || !strings.Contains(makeErr.Lines[0], "error: implicit declaration") {
		t.Errorf("first line = %q, want the compiler error", makeErr.Lines)
	}
	if len(makeErr.Lines) != failureLines {
		t.Errorf("report has %d lines, want %d", len(makeErr.Lines), failureLines)
	}
	if last := makeErr.Lines[len(makeErr.Lines)-1]; last != "  CC      drivers/fake/noise29.o" {
		t.Errorf("last line = %q, want the last line of output", last)
	}
	if !strings.Contains(strings.Join(makeErr.Lines[:3], "\n"), "] Error 2") {
		t.Errorf("make's final Error 2 is not among the error lines first:\n%s", strings.Join(makeErr.Lines, "\n"))
	}
	msg := err.Error()
	for _, want := range []string{"failed in " + dir, "exit status 2", logPath, "noise29.o", "make[4]: ***"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "noise0.o") {
		t.Errorf("error shows the start of the noise instead of only the tail:\n%s", msg)
	}
}

func TestMakeWithoutConfigReportsStars(t *testing.T) {
	dir := fakekernel.New(t, fakekernel.Options{})
	_, err := Make(context.Background(), MakeRequest{Dir: dir})
	var makeErr *MakeError
	if !errors.As(err, &makeErr) {
		t.Fatalf("Make = %v, want a *MakeError", err)
	}
	if !strings.Contains(makeErr.Lines[0], ".config is missing") {
		t.Errorf("first line = %q, want the *** .config message", makeErr.Lines[0])
	}
}

// waitForFile polls until path has content or the test's deadline nears.
func waitForFile(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if data, err := os.ReadFile(path); err == nil && len(bytes.TrimSpace(data)) > 0 {
			return strings.TrimSpace(string(data))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never appeared", path)
	return ""
}

// alive reports whether pid runs and is not a zombie.
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// procStat is one process's line of /proc/PID/stat.
type procStat struct {
	pid, ppid, pgrp int
	comm, state     string
}

// processes reads /proc/PID/stat of every process.
func processes(t *testing.T) []procStat {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []procStat
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		lparen, rparen := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
		if lparen < 0 || rparen < lparen {
			continue
		}
		// Fields after "comm)": state, ppid, pgrp.
		fields := strings.Fields(string(data[rparen+1:]))
		if len(fields) < 3 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		pgrp, _ := strconv.Atoi(fields[2])
		out = append(out, procStat{pid: pid, ppid: ppid, pgrp: pgrp, comm: string(data[lparen+1 : rparen]), state: fields[0]})
	}
	return out
}

// groupMembers returns the live processes whose process group is pgid.
func groupMembers(t *testing.T, pgid int) []int {
	t.Helper()
	var members []int
	for _, p := range processes(t) {
		if p.state != "Z" && p.pgrp == pgid {
			members = append(members, p.pid)
		}
	}
	return members
}

// killLater kills pid, a process this test started, when the test ends.
func killLater(t *testing.T, pid int) {
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
}

func TestMakeCancelKillsProcessGroup(t *testing.T) {
	dir := configuredTree(t)
	pidFile := filepath.Join(t.TempDir(), "linger.pid")
	var cmd *exec.Cmd
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	done := make(chan error, 1)
	go func() {
		_, err := Make(ctx, MakeRequest{
			Dir:       dir,
			Env:       append(os.Environ(), "FAKE_KERNEL_DELAY=60", "FAKE_KERNEL_LINGER="+pidFile),
			Wrap:      func(c *exec.Cmd) error { cmd = c; return nil },
			KillGrace: 2 * time.Second,
		})
		done <- err
	}()
	grandchild, err := strconv.Atoi(waitForFile(t, pidFile))
	if err != nil {
		t.Fatal(err)
	}
	killLater(t, grandchild)
	cancel()

	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Make did not return after cancellation")
	}
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "was cancelled") {
		t.Errorf("Make = %v, want a cancellation error wrapping context.Canceled", err)
	}
	if alive(grandchild) {
		t.Errorf("grandchild %d survived the cancellation", grandchild)
	}
	if members := groupMembers(t, cmd.Process.Pid); len(members) != 0 {
		t.Errorf("processes %v are still in make's group %d", members, cmd.Process.Pid)
	}
	if fakekernel.CompileCount(dir) != 0 {
		t.Errorf("cancelled build counted as a compile")
	}
}

func TestMakeReturnsDespiteLingeringChild(t *testing.T) {
	dir := configuredTree(t)
	pidFile := filepath.Join(t.TempDir(), "linger.pid")
	_, err := Make(context.Background(), MakeRequest{
		Dir: dir, Env: append(os.Environ(), "FAKE_KERNEL_LINGER="+pidFile),
	})
	if err != nil {
		t.Fatalf("Make: %v", err)
	}
	grandchild, err := strconv.Atoi(waitForFile(t, pidFile))
	if err != nil {
		t.Fatal(err)
	}
	killLater(t, grandchild)

	// The grandchild sleeps 60 s holding make's output open; Make returning
	// while it still runs shows Make did not wait for the pipe to close.
	if !alive(grandchild) {
		t.Errorf("grandchild %d already gone, so the test proves nothing", grandchild)
	}
	if fakekernel.CompileCount(dir) != 1 {
		t.Errorf("build did not complete")
	}
}

func TestMakeWrapRunsAndKeepsProcessGroup(t *testing.T) {
	dir := configuredTree(t)
	statusPath := filepath.Join(t.TempDir(), "status")
	var cmd *exec.Cmd
	_, err := Make(context.Background(), MakeRequest{
		Dir: dir,
		Wrap: func(c *exec.Cmd) error {
			cmd = c
			c.Env = append(os.Environ(), "FAKE_KERNEL_CHILD_STATUS="+statusPath)
			c.SysProcAttr = &syscall.SysProcAttr{} // drops Setpgid; Make must restore it
			return nil
		},
	})
	if err != nil {
		t.Fatalf("Make: %v", err)
	}

	status := waitForFile(t, statusPath)
	want := fmt.Sprintf("NSpgid:\t%d", cmd.Process.Pid)
	if !strings.Contains(status, want) {
		t.Errorf("child status lacks %q, so make did not lead its own group:\n%s", want, status)
	}
}

func TestMakeWrapError(t *testing.T) {
	dir := configuredTree(t)
	_, err := Make(context.Background(), MakeRequest{
		Dir:  dir,
		Wrap: func(*exec.Cmd) error { return errors.New("no cpuset") },
	})
	if err == nil || !strings.Contains(err.Error(), "no cpuset") {
		t.Errorf("Make = %v, want the wrap error", err)
	}
	if fakekernel.CompileCount(dir) != 0 {
		t.Errorf("make ran although Wrap failed")
	}
}

func TestMakeCancelledBeforeStart(t *testing.T) {
	dir := configuredTree(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Make(ctx, MakeRequest{Dir: dir})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Make = %v, want context.Canceled", err)
	}
	if fakekernel.CompileCount(dir) != 0 {
		t.Errorf("make ran on a cancelled context")
	}
}

func TestMakeStdinIsDevNull(t *testing.T) {
	dir := configuredTree(t)
	makefile := filepath.Join(dir, "Makefile")
	data, err := os.ReadFile(makefile)
	if err != nil {
		t.Fatal(err)
	}
	prompt := "\nprompt:\n\t@read answer; echo \"read returned $$?\"\n"
	if err := os.WriteFile(makefile, append(data, prompt...), 0o644); err != nil {
		t.Fatal(err)
	}
	var verbose bytes.Buffer
	if _, err := Make(context.Background(), MakeRequest{Dir: dir, Targets: []string{"prompt"}, Verbose: &verbose}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(verbose.String(), "read returned 1") {
		t.Errorf("a prompt did not see end of input: %q", verbose.String())
	}
}

func TestMrProperAndCompileCommands(t *testing.T) {
	dir := configuredTree(t)
	logPath := filepath.Join(t.TempDir(), "build.log")
	ctx := context.Background()
	if err := CompileCommands(ctx, dir, 2, nil, logPath); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "compile_commands.json")); err != nil {
		t.Errorf("compile_commands.json not written: %v", err)
	}
	// The build's KCFLAGS must be repeated, or kbuild recompiles every object.
	if log, _ := os.ReadFile(logPath); !strings.Contains(string(log), "make -j2 KCFLAGS=-Wno-error compile_commands.json") {
		t.Errorf("compile_commands.json was made without the build's flags:\n%s", log)
	}
	if err := MrProper(ctx, dir, nil, logPath); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".config")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf(".config survived mrproper (stat err %v)", err)
	}
}

func TestObjectLines(t *testing.T) {
	cases := map[string]bool{
		"  CC      kernel/fork.o":            true,
		"  CC [M]  fs/fuse/inode.o":          true,
		"  LD [M]  fs/fuse/fuse.ko":          true,
		"  AS      arch/x86/entry/entry.o":   true,
		"  AR      kernel/built-in.a":        true,
		"  HOSTCC  scripts/kconfig/conf.o":   true,
		"  GEN     Makefile":                 false,
		"  SYNC    include/config/auto.conf": false,
		"CC      kernel/fork.o":              false,
		"  CC":                               false,
		"  CC [M]  ":                         false,
	}
	for line, want := range cases {
		if got := isObjectLine(line); got != want {
			t.Errorf("isObjectLine(%q) = %v, want %v", line, got, want)
		}
	}
}

func TestReportLongLines(t *testing.T) {
	s := &outputScanner{}
	long := strings.Repeat("x", 3*maxLineBytes)
	fmt.Fprintf(s, "%s error: boom\n", long[:maxLineBytes/2])
	s.Write([]byte(long))
	s.Write([]byte(long + "\nlast"))
	s.flush()
	lines := s.report()
	if len(lines) != 3 || len(lines[1]) != maxLineBytes || lines[2] != "last" {
		t.Errorf("report = %d lines (second %d bytes), want error, one cut line, last", len(lines), len(lines[1]))
	}
}

func TestMakeWrapMissingMakeHint(t *testing.T) {
	dir := configuredTree(t)
	t.Setenv("PATH", t.TempDir())
	_, err := Make(context.Background(), MakeRequest{
		Dir: dir,
		Wrap: func(c *exec.Cmd) error {
			// As a wrap that resolves make on a PATH without it.
			_, err := exec.LookPath("make")
			return err
		},
	})
	if err == nil || !strings.Contains(err.Error(), "build-essential") {
		t.Errorf("Make = %v, want a hint to install make", err)
	}
}
