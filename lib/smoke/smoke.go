// Package smoke boots a kernel image under QEMU with a tiny initramfs and
// reports whether the running kernel has sched_ext and BTF.
//
// The initramfs holds one static Go program (see guestinit) that prints a
// JSON report line on the serial console and powers the guest off. Run
// reads that line, or explains why it never came: a kernel panic, a QEMU
// failure or a timeout.
package smoke

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Defaults for the zero values of Options.
const (
	DefaultTimeout        = 60 * time.Second
	DefaultProgressWindow = 5 * time.Second
	DefaultCPUs           = 2
	DefaultMemoryMiB      = 512
)

// shutdownGrace is the time a guest gets to end on its own after the report
// line or a panic line. Then it is killed, because the verdict is known.
const shutdownGrace = 5 * time.Second

// Options selects the kernel and how to boot it. Only Image is required.
type Options struct {
	// Image is the kernel to boot: a bzImage on x86_64, an Image on aarch64.
	Image string
	// Arch is the guest arch, "x86_64" or "aarch64"; "" means the host's.
	Arch string
	// Accel is "auto", "kvm" or "tcg"; "" means "auto". Auto uses KVM when
	// the guest arch is the host's and /dev/kvm opens read-write, and
	// retries with TCG when the KVM guest prints nothing on the console
	// within ProgressWindow or QEMU fails before it does.
	Accel string
	// Timeout bounds all boot attempts together (guest init build aside);
	// 0 means DefaultTimeout. A guest still running then is killed.
	Timeout time.Duration
	// ProgressWindow is how long an automatic KVM boot may stay silent
	// before Run gives up on KVM; 0 means DefaultProgressWindow.
	ProgressWindow time.Duration
	// LogPath, when set, receives the console output of every attempt.
	LogPath string
	// Stderr, when set, receives one line per step for people (fallback
	// to TCG and the like).
	Stderr io.Writer
	// Console, when set, receives the serial console output as it arrives.
	Console io.Writer
	// CPUs and MemoryMiB size the guest; 0 means DefaultCPUs and
	// DefaultMemoryMiB.
	CPUs      int
	MemoryMiB int
	// Append is added to the end of the kernel command line, so it
	// overrides the defaults (console=, panic=-1, rdinit=/init).
	Append string
	// CacheDir is the directory of cached guest init builds; "" means
	// DefaultCacheDir.
	CacheDir string

	// devKVM is the KVM device; tests point it at a file they control.
	devKVM string
}

func (o Options) withDefaults() Options {
	if o.Accel == "" {
		o.Accel = "auto"
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.ProgressWindow <= 0 {
		o.ProgressWindow = DefaultProgressWindow
	}
	if o.CPUs <= 0 {
		o.CPUs = DefaultCPUs
	}
	if o.MemoryMiB <= 0 {
		o.MemoryMiB = DefaultMemoryMiB
	}
	if o.devKVM == "" {
		o.devKVM = "/dev/kvm"
	}
	return o
}

// Run boots opts.Image under QEMU and returns what the guest reported.
//
// The error is nil only when the guest reported both sched_ext
// (/sys/kernel/sched_ext) and BTF (/sys/kernel/btf/vmlinux). Otherwise it is
// one message: the missing options by their CONFIG_ names, the oops and
// panic lines of a kernel panic, or the last console lines of a guest that
// timed out (and was killed) or ended without a report. Messages that quote
// the console end with LogPath when it is set. The Report is filled as far
// as the boot got, also when the error is not nil.
func Run(ctx context.Context, opts Options) (Report, error) {
	opts = opts.withDefaults()
	m, err := machineFor(opts.Arch)
	if err != nil {
		return Report{}, err
	}
	qemu, err := findQEMU(m)
	if err != nil {
		return Report{}, err
	}
	if err := checkImage(opts.Image); err != nil {
		return Report{}, err
	}
	accels, fallbackNote, err := planAccel(m, opts)
	if err != nil {
		return Report{}, err
	}

	initBinary, err := GuestInit(ctx, m.arch, opts.CacheDir)
	if err != nil {
		return Report{}, err
	}
	tmp, err := os.MkdirTemp("", "ktbuild-smoke-*")
	if err != nil {
		return Report{}, fmt.Errorf("smoke: create temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	initrd := filepath.Join(tmp, "initramfs.cpio")
	if err := WriteInitramfs(initBinary, initrd); err != nil {
		return Report{}, err
	}

	// logFile stays a nil interface without LogPath, so console skips it.
	var logFile io.Writer
	if opts.LogPath != "" {
		f, err := os.Create(opts.LogPath)
		if err != nil {
			return Report{}, fmt.Errorf("smoke: create console log %s: %w", opts.LogPath, err)
		}
		defer f.Close()
		logFile = f
	}

	bootCtx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()

	var rep Report
	var res attempt
	for i, accel := range accels {
		lastTry := i == len(accels)-1
		if logFile != nil {
			fmt.Fprintf(logFile, "=== ktbuild smoke: %s %s under %s\n", m.binary, opts.Image, accel)
		}
		window := opts.ProgressWindow
		if lastTry {
			window = 0
		}
		args := qemuArgs(m, bootArgs{
			accel:     accel,
			kernel:    opts.Image,
			initrd:    initrd,
			append:    kernelCmdline(m, opts.Append),
			cpus:      opts.CPUs,
			memoryMiB: opts.MemoryMiB,
		})
		logf(opts.Stderr, "smoke: booting %s under %s", opts.Image, accel)
		slog.Debug("smoke: starting qemu", "qemu", qemu, "args", args)
		res = boot(bootCtx, qemu, args, watch{
			progressWindow: window,
			logFile:        logFile,
			console:        opts.Console,
		})
		if !lastTry && res.silent() && bootCtx.Err() == nil {
			fallbackNote = fmt.Sprintf("%s: %s — used tcg", accel, res.silentReason(opts.ProgressWindow))
			logf(opts.Stderr, "smoke: %s", fallbackNote)
			continue
		}
		rep.Accel = accel
		break
	}
	rep.Fallback = fallbackNote
	rep.Duration = res.duration
	rep.ConsoleLog = res.console

	return rep, verdict(ctx, &rep, res, opts, m)
}

// verdict fills rep from the attempt and returns Run's error.
func verdict(ctx context.Context, rep *Report, res attempt, opts Options, m machine) error {
	g, found, perr := parseReport(res.console)
	switch {
	case found && perr == nil:
		rep.apply(g)
		return rep.Check()
	case found:
		return perr
	}

	var fullLog string
	if opts.LogPath != "" {
		fullLog = "\nfull console log: " + opts.LogPath
	}
	if pl := panicLines(res.console); pl != nil {
		return fmt.Errorf("smoke: kernel %s panicked under %s:\n%s%s", opts.Image, rep.Accel, indent(pl), fullLog)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("smoke: boot of %s cancelled: %w", opts.Image, ctx.Err())
	}
	last := indent(lastLines(res.console, 15))
	if res.timedOut {
		return fmt.Errorf("smoke: boot of %s under %s timed out after %s with no report, guest killed — last console lines:\n%s%s\nraise the timeout if the guest was still booting, or check the kernel's console options (console=%s)",
			opts.Image, rep.Accel, opts.Timeout, last, fullLog, m.console)
	}
	qemuErr := strings.TrimSpace(res.stderr)
	if qemuErr != "" {
		qemuErr = "\nqemu: " + qemuErr
	}
	return fmt.Errorf("smoke: %s exited (%v) under %s without a report from the guest — last console lines:\n%s%s%s",
		m.binary, res.exitErr, rep.Accel, last, qemuErr, fullLog)
}

// planAccel returns the accelerators to try in order, and a note when auto
// skipped KVM for a reason worth showing.
func planAccel(m machine, opts Options) ([]string, string, error) {
	switch opts.Accel {
	case "tcg":
		return []string{"tcg"}, "", nil
	case "kvm":
		if err := kvmUsable(m, opts.devKVM); err != nil {
			return nil, "", fmt.Errorf("smoke: kvm requested but not usable: %w — use accel tcg or auto", err)
		}
		return []string{"kvm"}, "", nil
	case "auto":
		if err := kvmUsable(m, opts.devKVM); err != nil {
			if m.arch == HostArch() {
				return []string{"tcg"}, fmt.Sprintf("kvm not usable (%v) — used tcg", err), nil
			}
			return []string{"tcg"}, "", nil
		}
		return []string{"kvm", "tcg"}, "", nil
	}
	return nil, "", fmt.Errorf("smoke: unknown accel %q — use auto, kvm or tcg", opts.Accel)
}

func checkImage(path string) error {
	if path == "" {
		return errors.New("smoke: no kernel image given — pass the path of a bzImage or Image")
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("smoke: kernel image %s: %w — build one with mage kernel:build", path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("smoke: kernel image %s is not a regular file — pass the bzImage or Image file", path)
	}
	return nil
}

// watch selects what boot watches for besides the report line.
type watch struct {
	// progressWindow > 0 kills a guest that prints nothing for that long.
	progressWindow time.Duration
	logFile        io.Writer
	console        io.Writer
}

// attempt is the outcome of one QEMU run.
type attempt struct {
	console  string
	stderr   string
	exitErr  error // from Wait; nil when QEMU exited 0
	duration time.Duration
	timedOut bool // the context ended and the guest was killed
	stalled  bool // no console output within the progress window
}

// silent reports whether the guest never printed: QEMU failed at once or the
// guest made no console progress. Those are reasons to try another accel.
func (a attempt) silent() bool {
	return a.console == "" && !a.timedOut
}

func (a attempt) silentReason(window time.Duration) string {
	if a.stalled {
		return fmt.Sprintf("guest printed nothing in %s", window)
	}
	msg := strings.TrimSpace(a.stderr)
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	if msg == "" {
		return fmt.Sprintf("qemu exited (%v) before the guest printed anything", a.exitErr)
	}
	return fmt.Sprintf("qemu exited (%v) before the guest printed anything: %s", a.exitErr, msg)
}

// boot runs QEMU once and waits for it to exit. It kills QEMU when ctx ends,
// when the watch's progress window passes in silence, or shutdownGrace
// after the report or a panic line, whichever comes first.
func boot(ctx context.Context, qemu string, args []string, w watch) attempt {
	con := newConsole(w.logFile, w.console)
	var stderr bytes.Buffer
	cmd := exec.Command(qemu, args...)
	cmd.Stdin = nil // /dev/null: QEMU must not put a terminal into raw mode
	cmd.Stdout = con
	cmd.Stderr = &stderr
	// QEMU does not fork, but a wrapper script might; do not wait on its
	// children's copies of the pipes once QEMU is gone.
	cmd.WaitDelay = 2 * time.Second

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return attempt{exitErr: fmt.Errorf("start %s: %w", qemu, err), stderr: err.Error()}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	var progress <-chan time.Time
	if w.progressWindow > 0 {
		t := time.NewTimer(w.progressWindow)
		defer t.Stop()
		progress = t.C
	}
	var grace <-chan time.Time
	startGrace := func() {
		if grace == nil {
			t := time.NewTimer(shutdownGrace)
			grace = t.C
		}
	}

	var res attempt
	var reportedAt time.Time
	output, reported, panicked := con.output, con.reported, con.panicked
	for finished := false; !finished; {
		select {
		case res.exitErr = <-done:
			finished = true
		case <-reported:
			reportedAt = time.Now()
			reported = nil
			startGrace()
		case <-panicked:
			panicked = nil
			startGrace()
		case <-output:
			output, progress = nil, nil
		case <-progress:
			res.stalled = true
			res.exitErr = killWait(cmd, done)
			finished = true
		case <-grace:
			res.exitErr = killWait(cmd, done)
			finished = true
		case <-ctx.Done():
			res.timedOut = reportedAt.IsZero()
			res.exitErr = killWait(cmd, done)
			finished = true
		}
	}

	res.duration = time.Since(start)
	if !reportedAt.IsZero() {
		res.duration = reportedAt.Sub(start)
	}
	res.console = con.String()
	res.stderr = stderr.String()
	return res
}

func killWait(cmd *exec.Cmd, done <-chan error) error {
	_ = cmd.Process.Kill()
	return <-done
}

func logf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}
