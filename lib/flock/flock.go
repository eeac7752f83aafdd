// Package flock takes flock(2) locks on lock files shared with other
// processes, ktstr among them, and lists who holds a lock from /proc/locks.
//
// A Lock is tied to one open file description and is released only by
// Release or by the process exiting. Locks are advisory, so they exclude
// only processes that also call flock on the same file.
package flock

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Mode is the kind of lock: many Shared holders may coexist, an Exclusive
// holder excludes every other holder.
type Mode int

const (
	Shared Mode = iota
	Exclusive
)

// String returns "shared" or "exclusive".
func (m Mode) String() string {
	switch m {
	case Shared:
		return "shared"
	case Exclusive:
		return "exclusive"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

func (m Mode) flockOp() (int, error) {
	switch m {
	case Shared:
		return unix.LOCK_SH, nil
	case Exclusive:
		return unix.LOCK_EX, nil
	}
	return 0, fmt.Errorf("flock: invalid mode %d — use Shared or Exclusive", int(m))
}

var (
	// ErrWouldBlock is returned, wrapped, by TryLock when another open file
	// holds a conflicting lock.
	ErrWouldBlock = errors.New("lock is held by another process")

	// ErrSymlink is returned, wrapped, when the lock path is a symbolic link.
	ErrSymlink = errors.New("lock file is a symbolic link")

	// ErrForeignOwner is returned, wrapped, when Locker.RejectForeignOwner is
	// set and the lock file belongs to a user who is neither root nor us.
	ErrForeignOwner = errors.New("lock file is owned by another user")
)

// Locker opens and locks lock files with the given options. The zero
// Locker is what the package-level functions use.
type Locker struct {
	// RejectForeignOwner rejects a lock file owned by a user other than root
	// or the effective user, so that another user cannot plant a file whose
	// permissions keep us out or whose lock they control. ktstr's
	// /tmp/ktstr-llc-N.lock files are opened this way.
	RejectForeignOwner bool

	// SkipFilesystemCheck skips the CheckFilesystem test of the lock file's
	// directory.
	SkipFilesystemCheck bool

	// OnWait, if set, is called once by Acquire and AcquireTimeout when the
	// lock is busy, before they block, with the holders visible at that
	// time (nil when /proc could not be read).
	OnWait func(path string, holders []Holder)

	// Proc is the procfs to read holders from; the zero value is /proc.
	Proc Proc
}

// Lock is a held flock lock on an open lock file.
type Lock struct {
	path string
	mode Mode

	mu sync.Mutex
	fd int // -1 after Release
}

// Path returns the lock file's path as given to the function that took it.
func (l *Lock) Path() string { return l.path }

// Mode returns the mode the lock is held in.
func (l *Lock) Mode() Mode { return l.mode }

// Release unlocks and closes the lock file. Calling it again, or on a nil
// Lock, does nothing and returns nil.
func (l *Lock) Release() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fd < 0 {
		return nil
	}
	fd := l.fd
	l.fd = -1

	// Closing drops the lock too; unlocking first keeps that true even if
	// the descriptor was somehow duplicated.
	unlockErr := unix.Flock(fd, unix.LOCK_UN)
	closeErr := unix.Close(fd)
	if err := errors.Join(unlockErr, closeErr); err != nil {
		return fmt.Errorf("release lock %s: %w", l.path, err)
	}
	return nil
}

// TryLock takes a lock on path without waiting, using the zero Locker.
func TryLock(path string, mode Mode) (*Lock, error) {
	return Locker{}.TryLock(path, mode)
}

// Acquire waits for a lock on path, using the zero Locker.
func Acquire(ctx context.Context, path string, mode Mode) (*Lock, error) {
	return Locker{}.Acquire(ctx, path, mode)
}

// AcquireTimeout waits at most timeout for a lock on path, using the zero
// Locker.
func AcquireTimeout(ctx context.Context, path string, mode Mode, timeout time.Duration) (*Lock, error) {
	return Locker{}.AcquireTimeout(ctx, path, mode, timeout)
}

// TryLock takes a lock on path without waiting. It creates missing parent
// directories (0777 minus umask) and the file (0666 minus umask), and
// returns an error wrapping ErrWouldBlock when a conflicting lock is held.
func (lk Locker) TryLock(path string, mode Mode) (*Lock, error) {
	op, err := mode.flockOp()
	if err != nil {
		return nil, err
	}

	// A file unlinked or replaced between open and flock would give us a
	// lock that other processes cannot see, so the loop retries on the new
	// file.
	for range maxReplaced {
		fd, err := lk.open(path)
		if err != nil {
			return nil, err
		}
		if err := flockRetry(fd, op|unix.LOCK_NB); err != nil {
			unix.Close(fd)
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, fmt.Errorf("lock %s: %w", path, ErrWouldBlock)
			}
			return nil, fmt.Errorf("lock %s: flock failed: %w", path, err)
		}
		if linked(fd, path) {
			return &Lock{path: path, mode: mode, fd: fd}, nil
		}
		unix.Close(fd)
	}
	return nil, replacedError(path)
}

// Acquire waits for a lock on path until it is held or ctx is done, and
// then returns ctx.Err() wrapped. Files are created as in TryLock.
//
// The wait is a blocking flock(2) call, so other processes see this one
// as a waiter in /proc/locks. Go restarts that call after signals, so it
// cannot be interrupted. After ctx is done it stays queued in a background
// goroutine, which unlocks and closes the file as soon as the call returns.
//
// NOTE: until the lock becomes free, this process is still listed as a
// waiter after a cancelled Acquire. When it does become free, the
// abandoned call holds it for the moment before its unlock, and a TryLock
// elsewhere in that window gets ErrWouldBlock.
func (lk Locker) Acquire(ctx context.Context, path string, mode Mode) (*Lock, error) {
	op, err := mode.flockOp()
	if err != nil {
		return nil, err
	}

	notified := false
	for range maxReplaced {
		fd, err := lk.open(path)
		if err != nil {
			return nil, err
		}

		err = flockRetry(fd, op|unix.LOCK_NB)
		if errors.Is(err, unix.EWOULDBLOCK) {
			if ctx.Err() != nil {
				unix.Close(fd)
				return nil, fmt.Errorf("lock %s: waiting for %s lock: %w", path, mode, ctx.Err())
			}
			if !notified && lk.OnWait != nil {
				notified = true
				lk.OnWait(path, lk.holdersForMessage(path))
			}
			var abandoned bool
			abandoned, err = waitFlock(ctx, fd, op)
			if abandoned {
				return nil, fmt.Errorf("lock %s: waiting for %s lock: %w", path, mode, err)
			}
		}
		if err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("lock %s: flock failed: %w", path, err)
		}

		if linked(fd, path) {
			return &Lock{path: path, mode: mode, fd: fd}, nil
		}
		unix.Flock(fd, unix.LOCK_UN)
		unix.Close(fd)
	}
	return nil, replacedError(path)
}

// TimeoutError is returned by AcquireTimeout when the timeout expires. It
// unwraps to context.DeadlineExceeded.
type TimeoutError struct {
	Path    string
	Mode    Mode
	Timeout time.Duration
	Holders []Holder // from /proc/locks on expiry, without this process's abandoned wait; may be empty
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("lock %s: timed out after %s waiting for %s lock, held by %s — wait for those processes to finish or stop them, then retry",
		e.Path, e.Timeout, e.Mode, DescribeHolders(e.Holders))
}

func (e *TimeoutError) Unwrap() error { return context.DeadlineExceeded }

var errLockTimeout = errors.New("lock timeout expired")

// AcquireTimeout waits for a lock on path like Acquire, but for at most
// timeout, and then returns a *TimeoutError naming the holders. A timeout
// of zero or less makes one attempt without waiting. When ctx ends first,
// the error wraps ctx.Err() instead.
func (lk Locker) AcquireTimeout(ctx context.Context, path string, mode Mode, timeout time.Duration) (*Lock, error) {
	if timeout <= 0 {
		l, err := lk.TryLock(path, mode)
		if errors.Is(err, ErrWouldBlock) {
			return nil, lk.timeoutError(path, mode, timeout)
		}
		return l, err
	}

	tctx, cancel := context.WithTimeoutCause(ctx, timeout, errLockTimeout)
	defer cancel()
	l, err := lk.Acquire(tctx, path, mode)
	if err == nil {
		return l, nil
	}
	if ctx.Err() == nil && errors.Is(context.Cause(tctx), errLockTimeout) {
		return nil, lk.timeoutError(path, mode, timeout)
	}
	return nil, err
}

// timeoutError lists the holders of path, leaving out this process's
// waiters because the wait Acquire just abandoned is still queued.
func (lk Locker) timeoutError(path string, mode Mode, timeout time.Duration) *TimeoutError {
	var others []Holder
	for _, h := range lk.holdersForMessage(path) {
		if h.Waiting && h.PID == os.Getpid() {
			continue
		}
		others = append(others, h)
	}
	return &TimeoutError{Path: path, Mode: mode, Timeout: timeout, Holders: others}
}

// maxReplaced bounds the retries when the lock file keeps being replaced.
// Each retry needs another process to unlink the file within a window of a
// few system calls, so more than one is already rare.
const maxReplaced = 8

func replacedError(path string) error {
	return fmt.Errorf("lock %s: the file was replaced %d times while being locked — find the process that deletes or renames it", path, maxReplaced)
}

// open opens or creates the lock file, rejecting symlinks, files that are
// not regular, foreign owners when asked, and unreliable filesystems.
func (lk Locker) open(path string) (int, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return -1, fmt.Errorf("lock %s: create directory: %w — check that the parent directory is writable", path, err)
	}
	if !lk.SkipFilesystemCheck {
		if err := CheckFilesystem(dir); err != nil {
			return -1, err
		}
	}

	fd, err := unix.Open(path, unix.O_CREAT|unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o666)
	if errors.Is(err, unix.EACCES) {
		// flock needs no write access, and a file created by root or
		// another build with umask 022 is often read-only for us.
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
				return -1, fmt.Errorf("lock %s: %w — remove the symlink, because lock files must be regular files", path, ErrSymlink)
			}
		}
		return -1, fmt.Errorf("lock %s: open: %w — check the path and its permissions", path, err)
	}

	if err := lk.checkOpened(fd, path); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func (lk Locker) checkOpened(fd int, path string) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("lock %s: fstat: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("lock %s: not a regular file (mode %#o) — remove it so a lock file can be created", path, st.Mode&unix.S_IFMT)
	}
	if lk.RejectForeignOwner && foreignOwner(st.Uid, uint32(os.Geteuid())) {
		return fmt.Errorf("lock %s: %w (uid %d) — remove it as root or as that user, then retry", path, ErrForeignOwner, st.Uid)
	}
	return nil
}

// foreignOwner reports whether a file owned by uid is neither ours nor root's.
func foreignOwner(uid, euid uint32) bool {
	return uid != 0 && uid != euid
}

// linked reports whether path still names the file open on fd.
func linked(fd int, path string) bool {
	var open, named unix.Stat_t
	if unix.Fstat(fd, &open) != nil || unix.Lstat(path, &named) != nil {
		return false
	}
	return open.Dev == named.Dev && open.Ino == named.Ino
}

func flockRetry(fd, op int) error {
	for {
		err := unix.Flock(fd, op)
		if err != unix.EINTR {
			return err
		}
	}
}

// waitFlock blocks in flock(2) on fd until the lock is held or ctx is
// done. When ctx is done it returns abandoned=true and ctx.Err(), and fd
// then belongs to a goroutine that closes it once its flock call returns,
// so the caller must not touch it.
func waitFlock(ctx context.Context, fd, op int) (abandoned bool, err error) {
	done := make(chan error, 1)
	go func() { done <- flockRetry(fd, op) }()

	select {
	case err := <-done:
		return false, err
	case <-ctx.Done():
		go func() {
			if <-done == nil {
				unix.Flock(fd, unix.LOCK_UN)
			}
			unix.Close(fd)
		}()
		return true, ctx.Err()
	}
}

func (lk Locker) holdersForMessage(path string) []Holder {
	hs, err := lk.Proc.Holders(path)
	if err != nil {
		slog.Debug("flock: listing holders failed", "path", path, "err", err)
		return nil
	}
	return hs
}
