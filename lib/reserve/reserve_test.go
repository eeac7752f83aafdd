package reserve_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ktstr/ktbuild/lib/flock"
	"github.com/ktstr/ktbuild/lib/reserve"
	"github.com/ktstr/ktbuild/lib/topology/sysfstest"
)

// holdLockEnv makes the test binary a lock holder: "exclusive:PATH" or
// "shared:PATH". The holder prints "locked" and keeps the lock until its
// stdin closes.
const holdLockEnv = "RESERVE_TEST_HOLD_LOCK"

func TestMain(m *testing.M) {
	if spec := os.Getenv(holdLockEnv); spec != "" {
		os.Exit(holdLock(spec))
	}
	os.Exit(m.Run())
}

func holdLock(spec string) int {
	modeName, path, _ := strings.Cut(spec, ":")
	mode := flock.Shared
	if modeName == "exclusive" {
		mode = flock.Exclusive
	}
	l, err := flock.TryLock(path, mode)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer l.Release()
	fmt.Println("locked")
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// lockHolder is a child process holding a lock file.
type lockHolder struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

func startHolder(t *testing.T, mode, path string) *lockHolder {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdLockEnv+"="+mode+":"+path)
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
	h := &lockHolder{cmd: cmd, stdin: stdin}
	t.Cleanup(h.stop)

	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("lock holder for %s: read %q, %v", path, line, err)
	}
	return h
}

func (h *lockHolder) pid() int { return h.cmd.Process.Pid }

func (h *lockHolder) stop() {
	if h.stdin != nil {
		h.stdin.Close()
		h.stdin = nil
		h.cmd.Wait()
	}
}

// logRecorder collects Log lines and signals each one.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
	ch    chan string
}

func newLogRecorder() *logRecorder { return &logRecorder{ch: make(chan string, 100)} }

func (r *logRecorder) logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.mu.Lock()
	r.lines = append(r.lines, msg)
	r.mu.Unlock()
	select {
	case r.ch <- msg:
	default:
	}
}

func (r *logRecorder) all() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

func baseOptions(t *testing.T, tree sysfstest.Tree, budget int, rec *logRecorder) reserve.Options {
	topo := loadTree(t, tree)
	return reserve.Options{
		Topology:       topo,
		Allowed:        topo.CPUs,
		Budget:         budget,
		LockDir:        t.TempDir(),
		Log:            rec.logf,
		ReportInterval: 50 * time.Millisecond,
		PollInterval:   10 * time.Millisecond,
	}
}

func holderPIDs(t *testing.T, path string, mode flock.Mode) []int {
	t.Helper()
	hs, err := flock.Holders(path)
	if err != nil {
		t.Fatalf("Holders(%s): %v", path, err)
	}
	var pids []int
	for _, h := range hs {
		if h.Mode == mode && !h.Waiting {
			pids = append(pids, h.PID)
		}
	}
	return pids
}

func TestReserveLocksPlanShared(t *testing.T) {
	rec := newLogRecorder()
	opts := baseOptions(t, twoByTwo, 5, rec)
	opts.Reason = "cap 5 from -cpucap"

	r, err := reserve.Reserve(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.LLCs, []int{0, 1}) || !slices.Equal(r.CPUs, span(0, 4)) || !slices.Equal(r.Mems, []int{0, 1}) {
		t.Errorf("reservation = LLCs %v CPUs %v Mems %v", r.LLCs, r.CPUs, r.Mems)
	}
	if r.Jobs != 5 || r.Reason != opts.Reason || !r.Planned() {
		t.Errorf("Jobs = %d, Reason = %q, Planned = %v", r.Jobs, r.Reason, r.Planned())
	}
	if !strings.Contains(rec.all(), "spans NUMA nodes 0-1") {
		t.Errorf("log %q has no NUMA warning", rec.all())
	}
	for _, index := range r.LLCs {
		path := reserve.LockPath(opts.LockDir, index)
		if pids := holderPIDs(t, path, flock.Shared); !slices.Contains(pids, os.Getpid()) {
			t.Errorf("%s shared holders = %v, want our pid %d", path, pids, os.Getpid())
		}
	}

	if err := r.Release(); err != nil {
		t.Fatal(err)
	}
	if err := r.Release(); err != nil {
		t.Errorf("second Release: %v", err)
	}
	if pids := holderPIDs(t, reserve.LockPath(opts.LockDir, 0), flock.Shared); len(pids) != 0 {
		t.Errorf("holders after Release = %v", pids)
	}
}

func TestReserveSkipsExclusiveHolder(t *testing.T) {
	opts := baseOptions(t, twoByTwo, 2, newLogRecorder())
	startHolder(t, "exclusive", reserve.LockPath(opts.LockDir, 0))

	r, err := reserve.Reserve(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	if !slices.Equal(r.LLCs, []int{1}) || !slices.Equal(r.CPUs, []int{4, 5}) {
		t.Errorf("LLCs %v CPUs %v, want LLC 1 and CPUs 4-5", r.LLCs, r.CPUs)
	}
}

func TestReserveJoinsSharedHolder(t *testing.T) {
	opts := baseOptions(t, eightOnOne, 2, newLogRecorder())
	other := startHolder(t, "shared", reserve.LockPath(opts.LockDir, 6))

	r, err := reserve.Reserve(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	if !slices.Equal(r.LLCs, []int{6}) {
		t.Errorf("LLCs = %v, want [6] held shared by pid %d", r.LLCs, other.pid())
	}
}

func TestReserveWaitsForExclusiveHolder(t *testing.T) {
	rec := newLogRecorder()
	opts := baseOptions(t, sysfstest.Tree{LLCs: [][]int{{0, 1}}}, 1, rec)
	holder := startHolder(t, "exclusive", reserve.LockPath(opts.LockDir, 0))

	type result struct {
		r   *reserve.Reservation
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := reserve.Reserve(context.Background(), opts)
		done <- result{r, err}
	}()

	want := "pid " + strconv.Itoa(holder.pid())
	deadline := time.After(20 * time.Second)
	for reports := 0; reports < 2; {
		select {
		case msg := <-rec.ch:
			if strings.Contains(msg, "waiting for LLC locks") && strings.Contains(msg, want) && strings.Contains(msg, "exclusive") {
				reports++
			}
		case res := <-done:
			t.Fatalf("Reserve returned while LLC 0 was held exclusive: %+v, %v", res.r, res.err)
		case <-deadline:
			t.Fatalf("no repeated waiting report naming %s; log:\n%s", want, rec.all())
		}
	}

	holder.stop()
	select {
	case res := <-done:
		if res.err != nil {
			t.Fatal(res.err)
		}
		defer res.r.Release()
		if !slices.Equal(res.r.LLCs, []int{0}) || !slices.Equal(res.r.CPUs, []int{0}) {
			t.Errorf("LLCs %v CPUs %v, want LLC 0 and CPU 0", res.r.LLCs, res.r.CPUs)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Reserve still waiting after the holder exited")
	}
}

func TestReserveContextEndsWait(t *testing.T) {
	opts := baseOptions(t, sysfstest.Tree{LLCs: [][]int{{0, 1}}}, 1, newLogRecorder())
	holder := startHolder(t, "exclusive", reserve.LockPath(opts.LockDir, 0))

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := reserve.Reserve(ctx, opts)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want context.DeadlineExceeded", err)
	}
	if !strings.Contains(err.Error(), "pid "+strconv.Itoa(holder.pid())) {
		t.Errorf("error %q does not name holder pid %d", err, holder.pid())
	}
}

// With /proc unreadable the plan cannot see the exclusive holder, so the
// lock is lost at TryLock; Reserve re-plans once and then waits.
func TestReserveLostRaceWaits(t *testing.T) {
	rec := newLogRecorder()
	opts := baseOptions(t, sysfstest.Tree{LLCs: [][]int{{0, 1}, {2, 3}}}, 2, rec)
	opts.Proc = flock.Proc{Root: t.TempDir()}
	holder := startHolder(t, "exclusive", reserve.LockPath(opts.LockDir, 0))

	done := make(chan error, 1)
	var got *reserve.Reservation
	go func() {
		var err error
		got, err = reserve.Reserve(context.Background(), opts)
		done <- err
	}()

	select {
	case msg := <-rec.ch:
		if !strings.Contains(msg, "taken exclusive while we locked") {
			t.Errorf("waiting report = %q", msg)
		}
	case err := <-done:
		t.Fatalf("Reserve returned while LLC 0 was held exclusive: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("no waiting report")
	}
	if pids := holderPIDs(t, reserve.LockPath(opts.LockDir, 1), flock.Shared); len(pids) != 0 {
		t.Errorf("LLC 1 held by %v while waiting, want it released", pids)
	}

	holder.stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	defer got.Release()
	if !slices.Equal(got.LLCs, []int{0}) {
		t.Errorf("LLCs = %v, want [0]", got.LLCs)
	}
}

func TestReserveRejectsSymlink(t *testing.T) {
	opts := baseOptions(t, sysfstest.Tree{LLCs: [][]int{{0, 1}}}, 1, newLogRecorder())
	target := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.Symlink(target, reserve.LockPath(opts.LockDir, 0)); err != nil {
		t.Fatal(err)
	}

	_, err := reserve.Reserve(context.Background(), opts)
	if !errors.Is(err, flock.ErrSymlink) {
		t.Fatalf("error = %v, want flock.ErrSymlink", err)
	}
	if !strings.Contains(err.Error(), "ktstr-llc-0.lock") {
		t.Errorf("error %q does not name the lock file", err)
	}
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("symlink target was created: %v", err)
	}
}

func TestReserveRejectsForeignOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the lock file to another user")
	}
	opts := baseOptions(t, sysfstest.Tree{LLCs: [][]int{{0, 1}}}, 1, newLogRecorder())
	path := reserve.LockPath(opts.LockDir, 0)
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}

	_, err := reserve.Reserve(context.Background(), opts)
	if !errors.Is(err, flock.ErrForeignOwner) {
		t.Fatalf("error = %v, want flock.ErrForeignOwner", err)
	}
}

func TestReserveBypass(t *testing.T) {
	opts := baseOptions(t, twoByTwo, 2, newLogRecorder())
	opts.Bypass = true

	r, err := reserve.Reserve(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if r.Jobs != 8 || !r.Bypass || r.Planned() || len(r.LLCs) != 0 {
		t.Errorf("bypass reservation = %+v, want Jobs 8 and no plan", r)
	}
	entries, err := os.ReadDir(opts.LockDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("bypass created lock files: %v", entries)
	}
}

func TestReserveWithoutTopology(t *testing.T) {
	rec := newLogRecorder()
	opts := reserve.Options{
		TopologyErr: errors.New("no sysfs"),
		Allowed:     span(0, 7),
		Budget:      3,
		LockDir:     t.TempDir(),
		Log:         rec.logf,
	}

	r, err := reserve.Reserve(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if r.Jobs != 3 || r.Planned() {
		t.Errorf("reservation = %+v, want Jobs 3 and no plan", r)
	}
	if !strings.Contains(rec.all(), "no sysfs") {
		t.Errorf("log %q does not carry the topology error", rec.all())
	}

	opts.CapGiven = true
	if _, err := reserve.Reserve(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "unset the cap") {
		t.Errorf("with a cap: error = %v, want one naming the cap", err)
	}
}

func TestReserveInvalidInput(t *testing.T) {
	opts := baseOptions(t, twoByTwo, 9, newLogRecorder())
	if _, err := reserve.Reserve(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "budget 9") {
		t.Errorf("budget above allowed: error = %v", err)
	}

	opts.Budget = 1
	opts.Allowed = []int{40, 41}
	if _, err := reserve.Reserve(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "40-41") {
		t.Errorf("allowed CPUs outside the topology: error = %v", err)
	}

	opts.Allowed = nil
	if _, err := reserve.Reserve(context.Background(), opts); err == nil {
		t.Error("no allowed CPUs: no error")
	}
}
