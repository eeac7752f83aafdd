package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// median returns the middle value of ds (the mean of the two middle values
// for an even count).
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// step is one measured operation: its name for the progress log, and a
// function that runs it once and returns the time to count.
type step struct {
	name string
	run  func() (time.Duration, error)
}

// rotate runs each step n times, starting each round with the next step in
// turn so that cache warmth and background load favour none of them, and
// returns the durations of each step. prepare, when not nil, runs untimed
// before every measured call.
func (s *session) rotate(n int, prepare func() error, steps ...step) ([][]time.Duration, error) {
	out := make([][]time.Duration, len(steps))
	for round := range n {
		for k := range steps {
			i := (round + k) % len(steps)
			if prepare != nil {
				if err := prepare(); err != nil {
					return nil, err
				}
			}
			d, err := steps[i].run()
			if err != nil {
				return nil, err
			}
			s.progress("  %s: %s", steps[i].name, formatDuration(d))
			out[i] = append(out[i], d)
		}
	}
	return out, nil
}

// flushDirty writes all dirty page-cache data to disk, so that the writeback
// of one measured step is not charged to the next.
func flushDirty() error {
	syscall.Sync()
	return nil // sync(2) reports no errors; the result type suits rotate
}

// procResult is the outcome of one child process: its output, wall time
// and sampled VmHWM.
type procResult struct {
	stdout, stderr string
	wall           time.Duration
	// hwm is the process's own VmHWM in KiB, sampled from /proc while it
	// ran; 0 when no sample was taken.
	hwm int64
	err error
}

// started is a child process being watched for its VmHWM.
type started struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	start          time.Time
	hwm            int64
	stop           chan struct{}
	watched        sync.WaitGroup
}

// startProc starts cmd with its output captured and, with watch, samples the
// process's VmHWM every 20 ms until it exits.
func startProc(cmd *exec.Cmd, watch bool) (*started, error) {
	p := &started{cmd: cmd, stop: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &p.stdout, &p.stderr
	p.start = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", strings.Join(cmd.Args, " "), err)
	}
	if watch {
		p.watched.Add(1)
		go p.watch()
	}
	return p, nil
}

func (p *started) watch() {
	defer p.watched.Done()
	status := fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		// VmHWM only grows, so the last sample before exit is the peak up
		// to that moment; growth in the final 20 ms can be missed.
		if kib, ok := readVmHWM(status); ok {
			p.hwm = max(p.hwm, kib)
		}
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
	}
}

func (p *started) wait() procResult {
	err := p.cmd.Wait()
	wall := time.Since(p.start)
	close(p.stop)
	p.watched.Wait()

	res := procResult{stdout: p.stdout.String(), stderr: p.stderr.String(), wall: wall, hwm: p.hwm}
	if err != nil {
		res.err = fmt.Errorf("%s: %w\n%s", strings.Join(p.cmd.Args, " "), err, tail(res.stderr, 20))
	}
	return res
}

// runProc runs cmd to the end; see startProc.
func runProc(cmd *exec.Cmd, watch bool) procResult {
	p, err := startProc(cmd, watch)
	if err != nil {
		return procResult{err: err}
	}
	return p.wait()
}

// timeCommand runs name with args in dir and returns its wall time.
func timeCommand(dir, name string, args ...string) (time.Duration, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	res := runProc(cmd, false)
	return res.wall, res.err
}

// peakRSS runs cmd under GNU time and returns the peak RSS in KiB of cmd's
// process or any of its descendants, whichever is largest.
//
// wait4's ru_maxrss of a direct child is useless here: Go starts children
// with clone(CLONE_VM|CLONE_VFORK), and exec records the shared mm's peak in
// the child's ru_maxrss, so it is at least the bench process's own peak.
// GNU time forks its child from a small process of its own.
func peakRSS(cmd *exec.Cmd) (int64, error) {
	const gnuTime = "/usr/bin/time"
	if _, err := os.Stat(gnuTime); err != nil {
		return 0, fmt.Errorf("%s is missing: %w — install it with: apt-get install time", gnuTime, err)
	}
	out, err := os.CreateTemp("", "bench-rss-")
	if err != nil {
		return 0, err
	}
	out.Close()
	defer os.Remove(out.Name())

	wrapped := exec.Command(gnuTime, append([]string{"-f", "%M", "-o", out.Name(), cmd.Path}, cmd.Args[1:]...)...)
	wrapped.Dir, wrapped.Env = cmd.Dir, cmd.Env
	if res := runProc(wrapped, false); res.err != nil {
		return 0, res.err
	}
	data, err := os.ReadFile(out.Name())
	if err != nil {
		return 0, err
	}
	kib, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s wrote %q, not a size in KiB: %w", gnuTime, data, err)
	}
	return kib, nil
}

func readVmHWM(path string) (int64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		return kib, err == nil
	}
	return 0, false
}

// tail returns the last n lines of text.
func tail(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// hostLoad describes the load average and whether .ci/real-kernel.sh (a full
// kernel build) is running, for the notes.
func hostLoad() string {
	load := "load average unknown"
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(data)); len(f) >= 3 {
			load = "load average " + strings.Join(f[:3], " ")
		}
	}
	if pids := processesRunning("real-kernel.sh"); len(pids) > 0 {
		return load + ", real-kernel.sh running (pid " + strings.Join(pids, ", ") + ")"
	}
	return load + ", no real-kernel.sh running"
}

// processesRunning returns the pids whose command line contains needle.
func processesRunning(needle string) []string {
	paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var pids []string
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if bytes.Contains(data, []byte(needle)) {
			pids = append(pids, filepath.Base(filepath.Dir(p)))
		}
	}
	return pids
}
