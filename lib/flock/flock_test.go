package flock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Child processes are this test binary re-executed with these variables.
// A child takes the lock, prints "locked" (or "busy" when TryLock fails),
// holds it until its stdin closes, and exits.
const (
	envChild = "FLOCK_TEST_CHILD" // the call to make: "try" or "acquire"
	envMode  = "FLOCK_TEST_MODE"  // "shared" or "exclusive"
	envPath  = "FLOCK_TEST_PATH"

	childArgv0 = "flock-child"
)

func TestMain(m *testing.M) {
	if call := os.Getenv(envChild); call != "" {
		os.Exit(runChild(call, os.Getenv(envMode), os.Getenv(envPath)))
	}
	os.Exit(m.Run())
}

func runChild(call, modeName, path string) int {
	mode := Shared
	if modeName == "exclusive" {
		mode = Exclusive
	}
	var l *Lock
	var err error
	if call == "try" {
		l, err = TryLock(path, mode)
	} else {
		l, err = Acquire(context.Background(), path, mode)
	}
	if errors.Is(err, ErrWouldBlock) {
		fmt.Println("busy")
		return 3
	}
	if err != nil {
		fmt.Println("error:", err)
		return 2
	}
	fmt.Println("locked")
	io.Copy(io.Discard, os.Stdin)
	if err := l.Release(); err != nil {
		fmt.Println("error:", err)
		return 2
	}
	return 0
}

// childEnv returns the environment of a child. It turns off the race
// detector's one-second pause at exit to keep the tests quick.
func childEnv(call, mode, path string) []string {
	return append(os.Environ(), envChild+"="+call, envMode+"="+mode, envPath+"="+path, "GORACE=atexit_sleep_ms=0")
}

type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

// startChild starts a child that takes a lock on path. The child's argv is
// "flock-child CALL MODE" so its command line is predictable.
func startChild(t *testing.T, call string, mode Mode, path string) *child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Args = []string{childArgv0, call, mode.String()}
	cmd.Env = childEnv(call, mode.String(), path)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	t.Cleanup(func() {
		c.stdin.Close()
		c.cmd.Process.Kill()
		c.cmd.Wait()
	})
	return c
}

// status returns the child's first output line, blocking until it prints.
func (c *child) status(t *testing.T) string {
	t.Helper()
	line, err := c.out.ReadString('\n')
	if err != nil {
		t.Fatalf("child %d: reading status: %v", c.cmd.Process.Pid, err)
	}
	return strings.TrimSpace(line)
}

// holdLock starts a child that holds a lock on path and waits until it has it.
func holdLock(t *testing.T, mode Mode, path string) *child {
	t.Helper()
	c := startChild(t, "try", mode, path)
	if s := c.status(t); s != "locked" {
		t.Fatalf("child holding %s lock: status %q, want locked", mode, s)
	}
	return c
}

// release makes the child release its lock and exit, and waits for it.
func (c *child) release(t *testing.T) {
	t.Helper()
	c.stdin.Close()
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("child %d: %v", c.cmd.Process.Pid, err)
	}
}

// waitUntil polls cond until it is true. The deadline only bounds a hung test.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func findHolder(hs []Holder, pid int, waiting bool) (Holder, bool) {
	for _, h := range hs {
		if h.PID == pid && h.Waiting == waiting {
			return h, true
		}
	}
	return Holder{}, false
}

func mustHolders(t *testing.T, path string) []Holder {
	t.Helper()
	hs, err := Holders(path)
	if err != nil {
		t.Fatalf("Holders(%s): %v", path, err)
	}
	return hs
}

func TestTryLockHeldByChild(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.lock")
	c := holdLock(t, Exclusive, path)

	for _, mode := range []Mode{Shared, Exclusive} {
		l, err := TryLock(path, mode)
		if !errors.Is(err, ErrWouldBlock) {
			l.Release()
			t.Errorf("TryLock %s while a child holds it exclusive: error %v, want ErrWouldBlock", mode, err)
		}
	}

	h, ok := findHolder(mustHolders(t, path), c.cmd.Process.Pid, false)
	if !ok {
		t.Fatalf("Holders does not list child pid %d", c.cmd.Process.Pid)
	}
	if h.Mode != Exclusive {
		t.Errorf("child holder mode = %s, want exclusive", h.Mode)
	}
	if h.Command != "flock-child try exclusive" {
		t.Errorf("child holder command = %q, want %q", h.Command, "flock-child try exclusive")
	}

	c.release(t)
	l, err := TryLock(path, Exclusive)
	if err != nil {
		t.Fatalf("TryLock after the child exited: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
}

func TestSharedLocksCoexist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "llc.lock")
	c := holdLock(t, Shared, path)

	mine, err := TryLock(path, Shared)
	if err != nil {
		t.Fatalf("TryLock shared next to a shared holder: %v", err)
	}
	defer mine.Release()

	excl := startChild(t, "try", Exclusive, path)
	if s := excl.status(t); s != "busy" {
		t.Errorf("exclusive TryLock in a child while shared locks are held: status %q, want busy", s)
	}

	hs := mustHolders(t, path)
	for _, pid := range []int{c.cmd.Process.Pid, os.Getpid()} {
		h, ok := findHolder(hs, pid, false)
		if !ok {
			t.Errorf("Holders %+v lacks pid %d", hs, pid)
			continue
		}
		if h.Mode != Shared {
			t.Errorf("pid %d mode = %s, want shared", pid, h.Mode)
		}
	}
}

func TestExclusiveExcludesInProcess(t *testing.T) {
	// flock locks belong to open files, so two TryLock calls in one
	// process conflict just as two processes do.
	path := filepath.Join(t.TempDir(), "a.lock")
	l, err := TryLock(path, Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TryLock(path, Shared); !errors.Is(err, ErrWouldBlock) {
		t.Errorf("TryLock shared under an exclusive lock: error %v, want ErrWouldBlock", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	s1, err := TryLock(path, Shared)
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Release()
	s2, err := TryLock(path, Shared)
	if err != nil {
		t.Fatalf("second shared TryLock: %v", err)
	}
	defer s2.Release()
	if _, err := TryLock(path, Exclusive); !errors.Is(err, ErrWouldBlock) {
		t.Errorf("TryLock exclusive under shared locks: error %v, want ErrWouldBlock", err)
	}
}

func TestAcquireWaiterListed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.lock")
	holder := holdLock(t, Exclusive, path)
	waiter := startChild(t, "acquire", Shared, path)
	pid := waiter.cmd.Process.Pid

	var h Holder
	waitUntil(t, "the waiting child shows in /proc/locks", func() bool {
		var ok bool
		h, ok = findHolder(mustHolders(t, path), pid, true)
		return ok
	})
	if h.Mode != Shared {
		t.Errorf("waiter mode = %s, want shared", h.Mode)
	}
	if h.Command != "flock-child acquire shared" {
		t.Errorf("waiter command = %q", h.Command)
	}
	if _, ok := findHolder(mustHolders(t, path), pid, false); ok {
		t.Error("waiting child is also listed as a holder")
	}

	holder.release(t)
	if s := waiter.status(t); s != "locked" {
		t.Fatalf("waiter after the holder exited: status %q, want locked", s)
	}
	h, ok := findHolder(mustHolders(t, path), pid, false)
	if !ok || h.Mode != Shared {
		t.Errorf("after its wait, child %d holder entry = %+v, %v; want a shared holder", pid, h, ok)
	}
	waiter.release(t)
}

// fdsOpenOn counts this process's descriptors open on path.
func fdsOpenOn(t *testing.T, path string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && target == path {
			n++
		}
	}
	return n
}

func TestAcquireCancelHoldsNothing(t *testing.T) {
	path := filepath.Join(realDir(t), "a.lock")
	holder := holdLock(t, Exclusive, path)

	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		l   *Lock
		err error
	}
	done := make(chan result, 1)
	go func() {
		l, err := Acquire(ctx, path, Exclusive)
		done <- result{l, err}
	}()
	waitUntil(t, "this process shows as a waiter", func() bool {
		_, ok := findHolder(mustHolders(t, path), os.Getpid(), true)
		return ok
	})

	// The holder keeps its lock, so only cancellation can end the wait.
	cancel()
	r := <-done
	if !errors.Is(r.err, context.Canceled) {
		t.Fatalf("Acquire after cancel: error %v, want context.Canceled", r.err)
	}
	if r.l != nil {
		t.Fatal("Acquire after cancel returned a lock")
	}
	if _, ok := findHolder(mustHolders(t, path), os.Getpid(), false); ok {
		t.Fatal("this process holds the lock after a cancelled Acquire")
	}

	// The abandoned flock call gets the lock once the child lets go, drops
	// it and closes its descriptor.
	holder.release(t)
	waitUntil(t, "the abandoned wait closes its descriptor", func() bool {
		return fdsOpenOn(t, path) == 0
	})
	other := startChild(t, "try", Exclusive, path)
	if s := other.status(t); s != "locked" {
		t.Fatalf("child TryLock after the cancelled wait cleaned up: status %q, want locked", s)
	}
	other.release(t)
}

func TestAcquireAlreadyCancelled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.lock")
	holdLock(t, Exclusive, path)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Acquire(ctx, path, Shared); !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire with a cancelled context: error %v, want context.Canceled", err)
	}
}

func TestAcquireFreeLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.lock")
	l, err := Acquire(context.Background(), path, Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	if l.Path() != path || l.Mode() != Exclusive {
		t.Errorf("lock = %s %s, want %s exclusive", l.Path(), l.Mode(), path)
	}
	c := startChild(t, "try", Shared, path)
	if s := c.status(t); s != "busy" {
		t.Errorf("child TryLock under Acquire's lock: status %q, want busy", s)
	}
	l.Release()
}

func TestAcquireTimeoutNamesHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.lock")
	c := holdLock(t, Exclusive, path)
	pid := c.cmd.Process.Pid

	l, err := AcquireTimeout(context.Background(), path, Shared, 50*time.Millisecond)
	if err == nil {
		l.Release()
		t.Fatal("AcquireTimeout on a held lock: no error")
	}
	var te *TimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("AcquireTimeout error %v (%T), want *TimeoutError", err, err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Error("TimeoutError does not unwrap to context.DeadlineExceeded")
	}
	if _, ok := findHolder(te.Holders, pid, false); !ok {
		t.Errorf("TimeoutError.Holders %+v lacks child %d", te.Holders, pid)
	}
	if _, ok := findHolder(te.Holders, os.Getpid(), true); ok {
		t.Errorf("TimeoutError.Holders %+v lists this process's abandoned wait", te.Holders)
	}
	msg := err.Error()
	for _, part := range []string{path, "timed out", "pid " + strconv.Itoa(pid) + " (flock-child try exclusive)"} {
		if !strings.Contains(msg, part) {
			t.Errorf("message %q lacks %q", msg, part)
		}
	}
}

func TestAcquireTimeoutZero(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.lock")
	c := holdLock(t, Shared, path)
	var te *TimeoutError
	if _, err := AcquireTimeout(context.Background(), path, Exclusive, 0); !errors.As(err, &te) {
		t.Fatalf("AcquireTimeout 0 on a held lock: error %v, want *TimeoutError", err)
	}
	c.release(t)
	l, err := AcquireTimeout(context.Background(), path, Exclusive, 0)
	if err != nil {
		t.Fatalf("AcquireTimeout 0 on a free lock: %v", err)
	}
	l.Release()
}

func TestAcquireTimeoutParentCancel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.lock")
	holdLock(t, Exclusive, path)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err := AcquireTimeout(ctx, path, Exclusive, time.Hour)
	var te *TimeoutError
	if errors.As(err, &te) {
		t.Fatalf("AcquireTimeout cancelled by its parent returned a TimeoutError: %v", err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("AcquireTimeout cancelled by its parent: error %v, want context.Canceled", err)
	}
}

func TestOnWaitReportsHolders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.lock")
	c := holdLock(t, Exclusive, path)
	calls := 0
	var seen []Holder
	lk := Locker{OnWait: func(p string, hs []Holder) {
		calls++
		seen = hs
		c.stdin.Close() // let the child go so the wait ends
	}}
	l, err := lk.Acquire(context.Background(), path, Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if calls != 1 {
		t.Errorf("OnWait called %d times, want 1", calls)
	}
	if _, ok := findHolder(seen, c.cmd.Process.Pid, false); !ok {
		t.Errorf("OnWait holders %+v lack the child %d", seen, c.cmd.Process.Pid)
	}
}

func TestLockSymlinkRejected(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	link := filepath.Join(dir, "a.lock")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if _, err := TryLock(link, Exclusive); !errors.Is(err, ErrSymlink) {
		t.Errorf("TryLock on a symlink: error %v, want ErrSymlink", err)
	}
	if _, err := Acquire(context.Background(), link, Shared); !errors.Is(err, ErrSymlink) {
		t.Errorf("Acquire on a symlink: error %v, want ErrSymlink", err)
	}
	if _, err := os.Lstat(target); !os.IsNotExist(err) {
		t.Errorf("symlink target was created (lstat: %v)", err)
	}
}

func TestLockNotRegularRejected(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "dir.lock")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := TryLock(sub, Exclusive); err == nil {
		t.Error("TryLock on a directory: no error")
	}
	fifo := filepath.Join(dir, "fifo.lock")
	if err := unix.Mkfifo(fifo, 0o666); err != nil {
		t.Fatal(err)
	}
	_, err := TryLock(fifo, Exclusive)
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("TryLock on a FIFO: error %v, want one saying it is not a regular file", err)
	}
}

func umask(t *testing.T) os.FileMode {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			if err != nil {
				t.Fatal(err)
			}
			return os.FileMode(m)
		}
	}
	t.Fatal("no Umask line in /proc/self/status")
	return 0
}

func TestTryLockCreatesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache", ".locks", "k.lock")
	l, err := TryLock(path, Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Mode().IsRegular() {
		t.Errorf("lock file mode %s, want a regular file", fi.Mode())
	}
	if want := 0o666 &^ umask(t); fi.Mode().Perm() != want {
		t.Errorf("lock file permissions %#o, want %#o", fi.Mode().Perm(), want)
	}
	flags, err := unix.FcntlInt(uintptr(l.fd), unix.F_GETFD, 0)
	if err != nil {
		t.Fatal(err)
	}
	if flags&unix.FD_CLOEXEC == 0 {
		t.Error("lock descriptor lacks FD_CLOEXEC")
	}
}

// sharedDir returns a new directory that other users can enter.
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "flock-shared-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestReadOnlyLockFileUsable(t *testing.T) {
	dir := sharedDir(t)
	path := filepath.Join(dir, "ro.lock")
	if err := os.WriteFile(path, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		l, err := TryLock(path, Shared)
		if err != nil {
			t.Fatalf("TryLock on a read-only file: %v", err)
		}
		l.Release()
		return
	}

	// Root may write any file, so the read-only case is run by an
	// unprivileged child, from a copy of this binary that it may execute.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	copyExe := filepath.Join(dir, "flock.test")
	if err := os.WriteFile(copyExe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(copyExe)
	cmd.Args = []string{childArgv0, "try", "shared"}
	cmd.Dir = dir
	cmd.Env = childEnv("try", "shared", path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.Output()
	if got := strings.TrimSpace(string(out)); err != nil || got != "locked" {
		t.Fatalf("TryLock as uid 65534 on a read-only root file: output %q, error %v; want locked", got, err)
	}
}

func TestForeignOwnerRule(t *testing.T) {
	tests := []struct {
		uid, euid uint32
		want      bool
	}{
		{0, 1000, false},
		{1000, 1000, false},
		{0, 0, false},
		{1001, 1000, true},
		{1001, 0, true},
	}
	for _, tt := range tests {
		if got := foreignOwner(tt.uid, tt.euid); got != tt.want {
			t.Errorf("foreignOwner(%d, %d) = %v, want %v", tt.uid, tt.euid, got, tt.want)
		}
	}
}

func TestForeignOwnerRejected(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ktstr-llc-0.lock")
	if err := os.WriteFile(path, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	strict := Locker{RejectForeignOwner: true}

	l, err := strict.TryLock(path, Shared)
	if err != nil {
		t.Fatalf("TryLock on our own file with RejectForeignOwner: %v", err)
	}
	l.Release()

	if os.Geteuid() != 0 {
		t.Skip("planting a file owned by another user needs root; TestForeignOwnerRule covers the rule")
	}
	if err := os.Chown(path, 54321, 54321); err != nil {
		t.Fatal(err)
	}
	if _, err := strict.TryLock(path, Shared); !errors.Is(err, ErrForeignOwner) {
		t.Errorf("TryLock on a file of uid 54321 with RejectForeignOwner: error %v, want ErrForeignOwner", err)
	}
	l, err = Locker{}.TryLock(path, Shared)
	if err != nil {
		t.Fatalf("TryLock on a foreign file without RejectForeignOwner: %v", err)
	}
	l.Release()
}

func TestReleaseIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.lock")
	l, err := TryLock(path, Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatalf("first Release: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	var none *Lock
	if err := none.Release(); err != nil {
		t.Fatalf("Release on nil: %v", err)
	}
	c := startChild(t, "try", Exclusive, path)
	if s := c.status(t); s != "locked" {
		t.Errorf("child TryLock after Release: status %q, want locked", s)
	}
}

func TestAcquireFollowsReplacedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.lock")
	holder := holdLock(t, Exclusive, path)

	done := make(chan error, 1)
	var l *Lock
	go func() {
		var err error
		l, err = Acquire(context.Background(), path, Exclusive)
		done <- err
	}()
	waitUntil(t, "this process shows as a waiter", func() bool {
		_, ok := findHolder(mustHolders(t, path), os.Getpid(), true)
		return ok
	})

	// Unlinking the file while we wait leaves us queued on a dead inode.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	holder.release(t)
	if err := <-done; err != nil {
		t.Fatalf("Acquire after the file was replaced: %v", err)
	}
	defer l.Release()

	c := startChild(t, "try", Shared, path)
	if s := c.status(t); s != "busy" {
		t.Errorf("child TryLock on the new file: status %q, want busy because Acquire must hold it", s)
	}
}

func TestInvalidModeRejected(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.lock")
	if _, err := TryLock(path, Mode(7)); err == nil {
		t.Error("TryLock with Mode(7): no error")
	}
	if _, err := Acquire(context.Background(), path, Mode(7)); err == nil {
		t.Error("Acquire with Mode(7): no error")
	}
}
