package sandbox

import (
	"errors"
	"fmt"
	"io/fs"

	"golang.org/x/sys/unix"
)

// Reason is the cause of a sandbox being weaker than requested.
type Reason int

const (
	// NoCgroupFS: no cgroup filesystem is mounted under the cgroup root, or
	// /proc/self/cgroup cannot be read.
	NoCgroupFS Reason = iota + 1
	// NoCpuset: neither the cgroup v2 hierarchy nor a v1 hierarchy offers
	// the cpuset controller to this process's cgroup.
	NoCpuset
	// PermissionDenied: this process may not create or configure a cgroup.
	PermissionDenied
	// RootCgroup: on cgroup v2 this process is in the root cgroup, and the
	// root does not delegate cpuset to its children.
	RootCgroup
	// Narrowed: the parent cgroup allows only some of the requested CPUs,
	// so make runs on fewer CPUs than planned.
	Narrowed
	// CreateFailed: creating or configuring the group failed for another
	// reason, such as a value the kernel rejected.
	CreateFailed
)

func (r Reason) String() string {
	switch r {
	case NoCgroupFS:
		return "no cgroup filesystem"
	case NoCpuset:
		return "no cpuset controller"
	case PermissionDenied:
		return "permission denied"
	case RootCgroup:
		return "root cgroup"
	case Narrowed:
		return "narrowed CPU set"
	case CreateFailed:
		return "cgroup setup failed"
	default:
		return fmt.Sprintf("Reason(%d)", int(r))
	}
}

// DegradedError describes a sandbox that is weaker than requested. New
// returns it when Options.Strict is set, and otherwise passes its message
// to Options.Warn and carries on without a cpuset or with a narrower one.
type DegradedError struct {
	Reason Reason
	// Detail describes what was found, naming the path or CPU set involved.
	Detail string
	// Remedy is the change the operator can make.
	Remedy string
	// Err is the underlying error, if any.
	Err error
}

func (e *DegradedError) Error() string {
	msg := "sandbox: " + e.Detail
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg + " — " + e.Remedy
}

func (e *DegradedError) Unwrap() error { return e.Err }

// unsetCap ends every remedy, because a degradation is only an error when
// the operator asked for a CPU cap.
const unsetCap = "or unset the CPU cap (-cpucap, KTSTR_CPU_CAP) to build without a cpuset"

func degraded(reason Reason, err error, format string, args ...any) *DegradedError {
	e := &DegradedError{Reason: reason, Detail: fmt.Sprintf(format, args...), Err: err}
	switch reason {
	case NoCgroupFS:
		e.Remedy = "mount cgroup2 (or the v1 cpuset hierarchy) under /sys/fs/cgroup, " + unsetCap
	case NoCpuset:
		e.Remedy = "enable cpuset for this cgroup (v2: add +cpuset to each ancestor's cgroup.subtree_control; v1: mount the cpuset hierarchy), " + unsetCap
	case PermissionDenied:
		e.Remedy = "run as root or from a cgroup delegated to you (systemd-run --user --scope -p Delegate=yes ...), " + unsetCap
	case RootCgroup:
		e.Remedy = "start the build inside a child cgroup with cpuset delegated (systemd-run --scope -p Delegate=yes ...), " + unsetCap
	case Narrowed:
		e.Remedy = "widen the parent cgroup's cpuset or lower the CPU cap to fit it"
	case CreateFailed:
		e.Remedy = "check the cgroup's files and the kernel log (dmesg), " + unsetCap
	}
	return e
}

// permissionError reports whether err means we lack the right to change
// the cgroup tree, as opposed to a missing controller or a bad value.
func permissionError(err error) bool {
	return errors.Is(err, fs.ErrPermission) || errors.Is(err, unix.EROFS)
}
