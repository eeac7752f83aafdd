package kbuild

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ktstr/ktbuild/lib/progress"
)

const (
	// DefaultKillGrace is how long a cancelled make's process group has
	// between SIGTERM and SIGKILL.
	DefaultKillGrace = 3 * time.Second
	// pipeDrain is how long make's output pipe may stay open after make
	// exits. A grandchild that inherited it (a daemon, a stray sleep) would
	// otherwise hold the read side open and stall Wait.
	pipeDrain = 500 * time.Millisecond
)

// MakeRequest describes one make run in a kernel tree.
type MakeRequest struct {
	Dir string
	// Jobs is make's -j value. 0 or less means the number of CPUs this
	// process may run on.
	Jobs    int
	Targets []string
	// Env is make's whole environment, and nil inherits this process's.
	// Pass the same Env to Configure and Make so both see one toolchain.
	Env []string
	// LogPath is the log file that make's stdout and stderr are appended
	// to. "" keeps no log.
	LogPath string
	// Progress, when set, is fed the count of compiled objects.
	Progress        *progress.Reporter
	ExpectedObjects int
	// Verbose, when set, receives make's raw output as it arrives.
	Verbose io.Writer
	// Wrap adjusts the command after it is built and before it starts,
	// e.g. to set SysProcAttr.UseCgroupFD or to prefix a helper that joins
	// a cpuset and execs make. The started process must become make, so it
	// leads the process group that Make sets up again after Wrap returns.
	Wrap func(*exec.Cmd) error
	// KillGrace is the time between SIGTERM and SIGKILL on cancellation.
	// 0 means DefaultKillGrace.
	KillGrace time.Duration
}

// MakeResult reports a finished make run.
type MakeResult struct {
	Objects  int
	Duration time.Duration
}

// MakeError is a make run that exited non-zero. Its message shows the lines
// that matter and where the full log is.
type MakeError struct {
	Args     []string
	Dir      string
	ExitCode int
	// Lines are error-looking lines first, then the end of the output.
	Lines   []string
	LogPath string
}

func (e *MakeError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kbuild: make %s failed in %s with exit status %d", strings.Join(e.Args, " "), e.Dir, e.ExitCode)
	if e.LogPath != "" {
		fmt.Fprintf(&b, " — read the full output in %s", e.LogPath)
	}
	for _, line := range e.Lines {
		b.WriteString("\n  " + line)
	}
	return b.String()
}

// Make runs make -jN KCFLAGS=-Wno-error and the request's targets in
// req.Dir. make's stdin is /dev/null, so a config prompt fails instead of
// waiting, and it runs in its own process group.
//
// When ctx is cancelled, Make sends SIGTERM to the whole process group and
// SIGKILL after KillGrace, and returns an error wrapping ctx.Err(). A
// non-zero exit returns a *MakeError.
func Make(ctx context.Context, req MakeRequest) (MakeResult, error) {
	jobs := req.Jobs
	if jobs <= 0 {
		jobs = runtime.NumCPU()
	}
	args := append([]string{"-j" + strconv.Itoa(jobs), "KCFLAGS=-Wno-error"}, req.Targets...)
	return runMake(ctx, runSpec{
		dir:       req.Dir,
		args:      args,
		env:       req.Env,
		logPath:   req.LogPath,
		progress:  req.Progress,
		expected:  req.ExpectedObjects,
		verbose:   req.Verbose,
		wrap:      req.Wrap,
		killGrace: req.KillGrace,
	})
}

// MrProper runs make mrproper in dir, removing .config and every build
// output, with output appended to logPath.
func MrProper(ctx context.Context, dir string, env []string, logPath string) error {
	_, err := runMake(ctx, runSpec{dir: dir, args: []string{"mrproper"}, env: env, logPath: logPath})
	return err
}

// CompileCommands runs make compile_commands.json in dir so editors and
// clangd can index a built local tree. It passes the build's own -j and
// KCFLAGS: kbuild records each object's command line, so any difference
// would make it compile the whole kernel again.
func CompileCommands(ctx context.Context, dir string, jobs int, env []string, logPath string) error {
	if jobs <= 0 {
		jobs = runtime.NumCPU()
	}
	args := []string{"-j" + strconv.Itoa(jobs), "KCFLAGS=-Wno-error", "compile_commands.json"}
	_, err := runMake(ctx, runSpec{dir: dir, args: args, env: env, logPath: logPath})
	return err
}

type runSpec struct {
	dir       string
	args      []string
	env       []string
	logPath   string
	progress  *progress.Reporter
	expected  int
	verbose   io.Writer
	wrap      func(*exec.Cmd) error
	killGrace time.Duration
}

func runMake(ctx context.Context, spec runSpec) (MakeResult, error) {
	if err := ctx.Err(); err != nil {
		return MakeResult{}, fmt.Errorf("kbuild: make %s in %s not started: %w", strings.Join(spec.args, " "), spec.dir, err)
	}
	scanner := &outputScanner{verbose: spec.verbose, progress: spec.progress, expected: spec.expected}
	if spec.logPath != "" {
		log, err := os.OpenFile(spec.logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return MakeResult{}, fmt.Errorf("kbuild: open build log %s: %w — check the directory exists and is writable", spec.logPath, err)
		}
		defer log.Close()
		fmt.Fprintf(log, "### ktbuild: make %s in %s at %s\n", strings.Join(spec.args, " "), spec.dir, time.Now().Format(time.RFC3339))
		scanner.log = log
	}

	// Stdin stays nil, which os/exec connects to /dev/null. One writer
	// for stdout and stderr makes os/exec share a single pipe, so the two
	// streams stay in order in the log.
	cmd := exec.Command("make", spec.args...)
	cmd.Dir = spec.dir
	cmd.Env = spec.env
	cmd.Stdout = scanner
	cmd.Stderr = scanner
	cmd.WaitDelay = pipeDrain
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if spec.wrap != nil {
		if err := spec.wrap(cmd); err != nil {
			hint := ""
			if errors.Is(err, exec.ErrNotFound) {
				hint = " — install make (Debian: apt-get install build-essential), or run kernel:doctor to see what is missing"
			}
			return MakeResult{}, fmt.Errorf("kbuild: prepare make %s in %s: %w%s", strings.Join(spec.args, " "), spec.dir, err, hint)
		}
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.Setpgid = true
		cmd.SysProcAttr.Pgid = 0
	}
	// If this process dies without cancelling (SIGKILL, or a signal with
	// no handler), make gets SIGTERM, which GNU make passes on to its jobs
	// before it exits, so no orphaned build races the next one. The
	// signal follows the thread that started make, so that thread stays
	// reserved for this goroutine until make is reaped.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return MakeResult{}, fmt.Errorf("kbuild: start make in %s: %w — is make installed? run kernel:doctor", spec.dir, err)
	}
	slog.Debug("make started", "pid", cmd.Process.Pid, "dir", spec.dir, "args", spec.args)

	killer := newGroupKiller(cmd.Process.Pid, spec.killGrace)
	stopWatch := context.AfterFunc(ctx, killer.terminate)
	waitErr := cmd.Wait()
	cancelled := !stopWatch()
	killer.finish(cancelled)
	scanner.flush()
	result := MakeResult{Objects: scanner.objects, Duration: time.Since(start)}

	if errors.Is(waitErr, exec.ErrWaitDelay) {
		slog.Debug("make exited but a leftover process kept its output open", "dir", spec.dir)
		waitErr = nil
	}
	// A make that finished before the cancellation reached it succeeded.
	if cancelled && waitErr != nil {
		return result, fmt.Errorf("kbuild: make %s in %s was cancelled and its process group killed: %w", strings.Join(spec.args, " "), spec.dir, context.Cause(ctx))
	}
	var exitErr *exec.ExitError
	if errors.As(waitErr, &exitErr) {
		return result, &MakeError{Args: spec.args, Dir: spec.dir, ExitCode: exitErr.ExitCode(), Lines: scanner.report(), LogPath: spec.logPath}
	}
	if waitErr != nil {
		return result, fmt.Errorf("kbuild: wait for make in %s: %w", spec.dir, waitErr)
	}
	return result, nil
}
