package reserve

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ktstr/ktbuild/lib/flock"
	"github.com/ktstr/ktbuild/lib/topology"
)

// DefaultLockDir is the directory of ktstr's LLC lock files.
const DefaultLockDir = "/tmp"

// LockPath returns the path of LLC index's lock file in lockDir, the path
// ktstr uses for the same LLC.
func LockPath(lockDir string, index int) string {
	return filepath.Join(lockDir, "ktstr-llc-"+strconv.Itoa(index)+".lock")
}

const (
	defaultReportInterval = 30 * time.Second
	defaultPollInterval   = 500 * time.Millisecond
)

// Options configures Reserve.
type Options struct {
	// Topology is the host layout. Nil means sysfs could not be read, and
	// TopologyErr is the cause.
	Topology    *topology.Topology
	TopologyErr error
	// Allowed are the CPUs this process may run on.
	Allowed []int
	// Budget is the number of CPUs to reserve, from Budget.
	Budget int
	// Reason is Budget's explanation, copied into the Reservation.
	Reason string
	// CapGiven makes a missing topology an error instead of a warning,
	// because an explicit cap cannot be enforced without a plan.
	CapGiven bool
	// Bypass skips the plan and the locks; Jobs becomes len(Allowed).
	Bypass bool
	// LockDir holds the ktstr-llc-N.lock files; "" means DefaultLockDir.
	LockDir string
	// Log receives warnings and progress while waiting; nil logs with
	// log/slog at warning level.
	Log func(format string, args ...any)
	// ReportInterval is how often a waiting Reserve reports the holders of
	// the LLC locks; 0 means 30 s.
	ReportInterval time.Duration
	// PollInterval is how often a waiting Reserve re-reads the holders and
	// tries again; 0 means 500 ms.
	PollInterval time.Duration
	// Proc is the procfs that lock holders are read from; the zero value
	// reads /proc.
	Proc flock.Proc
}

// Reservation is a set of CPUs whose LLC locks this process holds shared.
// Release it after the build, and after the cpuset sandbox is closed.
type Reservation struct {
	// CPUs are the planned CPUs, ascending; nil without a plan.
	CPUs []int
	// Mems are the NUMA nodes of CPUs, ascending; nil without a plan.
	Mems []int
	// LLCs are the indices of the locked LLCs, ascending.
	LLCs []int
	// Jobs is the make -j value: len(CPUs) with a plan, else the budget,
	// or every allowed CPU in bypass mode.
	Jobs int
	// Reason explains the budget, for messages.
	Reason string
	// Bypass reports that KTSTR_BYPASS_LLC_LOCKS turned the plan off.
	Bypass bool

	locks []*flock.Lock
}

// Planned reports whether the reservation has a CPU plan for a sandbox.
func (r *Reservation) Planned() bool {
	return r != nil && len(r.CPUs) > 0
}

// Release unlocks the LLC locks. Calling it again does nothing.
func (r *Reservation) Release() error {
	if r == nil {
		return nil
	}
	var errs []error
	for _, l := range r.locks {
		errs = append(errs, l.Release())
	}
	r.locks = nil
	return errors.Join(errs...)
}

// Reserve plans CPUs for opts.Budget and takes the chosen LLC locks shared.
//
// When every usable LLC is held exclusive, or a lock is lost twice to a
// process that took it exclusive between planning and locking, Reserve
// waits: it re-plans every PollInterval, reports the holders every
// ReportInterval, and gives up with an error when ctx ends.
func Reserve(ctx context.Context, opts Options) (*Reservation, error) {
	r := &Reservation{Reason: opts.Reason, Bypass: opts.Bypass}
	if r.Reason == "" {
		r.Reason = "budget " + strconv.Itoa(opts.Budget)
	}
	logf := opts.Log
	if logf == nil {
		logf = func(format string, args ...any) { slog.Warn(fmt.Sprintf(format, args...)) }
	}

	if len(opts.Allowed) == 0 {
		return nil, errors.New("reserve: no allowed CPUs — pass the result of topology.AllowedCPUs")
	}
	if opts.Bypass {
		r.Jobs = len(opts.Allowed)
		return r, nil
	}
	if opts.Budget < 1 || opts.Budget > len(opts.Allowed) {
		return nil, fmt.Errorf("reserve: budget %d is outside 1..%d allowed CPUs — compute it with reserve.Budget", opts.Budget, len(opts.Allowed))
	}
	if opts.Topology == nil {
		if opts.CapGiven {
			return nil, fmt.Errorf("reserve: CPU topology unavailable (%v) — a CPU cap needs sysfs to plan LLC locks; mount sysfs at /sys or unset the cap", opts.TopologyErr)
		}
		logf("reserve: CPU topology unavailable (%v) — building with -j%d and no LLC locks or cpuset", opts.TopologyErr, opts.Budget)
		r.Jobs = opts.Budget
		return r, nil
	}

	w := waiter{
		opts:    opts,
		logf:    logf,
		lockDir: cmp.Or(opts.LockDir, DefaultLockDir),
		locker:  flock.Locker{RejectForeignOwner: true, SkipFilesystemCheck: true, Proc: opts.Proc},
	}
	if err := flock.CheckFilesystem(w.lockDir); err != nil {
		return nil, fmt.Errorf("reserve: LLC lock directory %s: %w — point the lock directory at a local filesystem", w.lockDir, err)
	}
	return w.run(ctx, r)
}

// waiter carries the state of one Reserve call through plan, lock and wait.
type waiter struct {
	opts    Options
	logf    func(format string, args ...any)
	lockDir string
	locker  flock.Locker
}

func (w *waiter) run(ctx context.Context, r *Reservation) (*Reservation, error) {
	replanned := false
	var lastReport time.Time
	for {
		holders, err := w.readHolders()
		if err != nil {
			return nil, err
		}
		plan := Plan(w.opts.Topology, w.opts.Allowed, w.opts.Budget, holders)
		if len(plan.LLCs) == 0 && len(plan.Blocked) == 0 {
			return nil, fmt.Errorf("reserve: none of the allowed CPUs %s is in an LLC of the sysfs topology (online CPUs %s) — check the sysfs root and the process's affinity",
				topology.FormatList(w.opts.Allowed), topology.FormatList(w.opts.Topology.CPUs))
		}

		if len(plan.LLCs) > 0 {
			locks, lost, err := w.lockAll(plan.LLCs)
			if err != nil {
				return nil, err
			}
			if locks != nil {
				for _, msg := range plan.Warnings {
					w.logf("reserve: %s", msg)
				}
				r.CPUs, r.Mems, r.LLCs, r.Jobs, r.locks = plan.CPUs, plan.Mems, plan.LLCs, len(plan.CPUs), locks
				return r, nil
			}
			slog.Debug("reserve: LLC lock taken exclusive between plan and lock", "lock", LockPath(w.lockDir, lost))
			if !replanned {
				replanned = true
				continue
			}
		}

		if time.Since(lastReport) >= cmp.Or(w.opts.ReportInterval, defaultReportInterval) {
			lastReport = time.Now()
			w.logf("reserve: waiting for LLC locks — %s", w.describeBlocked(holders))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("reserve: stopped waiting for LLC locks (%s): %w", w.describeBlocked(holders), ctx.Err())
		case <-time.After(cmp.Or(w.opts.PollInterval, defaultPollInterval)):
		}
	}
}

// readHolders returns the holders of each LLC lock that has allowed CPUs.
// A lock file that is a symlink is an error; other read failures count as
// no holders, since TryLock still refuses a lock held exclusive.
func (w *waiter) readHolders() (map[int][]flock.Holder, error) {
	allowed := make(map[int]bool, len(w.opts.Allowed))
	for _, cpu := range w.opts.Allowed {
		allowed[cpu] = true
	}
	holders := make(map[int][]flock.Holder)
	for _, llc := range w.opts.Topology.LLCs {
		if len(intersect(llc.CPUs, allowed)) == 0 {
			continue
		}
		path := LockPath(w.lockDir, llc.Index)
		hs, err := w.opts.Proc.Holders(path)
		if errors.Is(err, flock.ErrSymlink) {
			return nil, fmt.Errorf("reserve: LLC lock %s: %w", path, err)
		}
		if err != nil {
			slog.Debug("reserve: cannot read LLC lock holders", "lock", path, "err", err)
			continue
		}
		holders[llc.Index] = hs
	}
	return holders, nil
}

// lockAll takes every LLC lock shared, in ascending order. When one is
// held exclusive it releases the others and returns that LLC's index as
// lost, with nil locks.
func (w *waiter) lockAll(llcs []int) (locks []*flock.Lock, lost int, err error) {
	release := func() {
		for _, l := range locks {
			l.Release()
		}
	}
	for _, index := range llcs {
		path := LockPath(w.lockDir, index)
		l, err := w.locker.TryLock(path, flock.Shared)
		if errors.Is(err, flock.ErrWouldBlock) {
			release()
			return nil, index, nil
		}
		if err != nil {
			release()
			return nil, 0, lockError(path, err)
		}
		locks = append(locks, l)
	}
	return locks, 0, nil
}

func lockError(path string, err error) error {
	switch {
	case errors.Is(err, flock.ErrSymlink):
		return fmt.Errorf("reserve: LLC lock %s: %w — remove the link; a lock file must be a regular file", path, err)
	case errors.Is(err, flock.ErrForeignOwner):
		return fmt.Errorf("reserve: LLC lock %s: %w — ask its owner to remove it, or run as that user", path, err)
	default:
		return fmt.Errorf("reserve: LLC lock %s: %w", path, err)
	}
}

// describeBlocked names the exclusive holders of the LLCs with allowed CPUs.
func (w *waiter) describeBlocked(holders map[int][]flock.Holder) string {
	var parts []string
	for _, llc := range w.opts.Topology.LLCs {
		var exclusive []flock.Holder
		for _, h := range holders[llc.Index] {
			if h.Mode == flock.Exclusive && !h.Waiting {
				exclusive = append(exclusive, h)
			}
		}
		if len(exclusive) > 0 {
			parts = append(parts, fmt.Sprintf("LLC %d (%s) held exclusive by %s", llc.Index, LockPath(w.lockDir, llc.Index), flock.DescribeHolders(exclusive)))
		}
	}
	if len(parts) == 0 {
		return "an LLC lock was taken exclusive while we locked; no holder is visible now"
	}
	return strings.Join(parts, "; ")
}
