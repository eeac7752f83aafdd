package kbuild

import (
	"errors"
	"log/slog"
	"syscall"
	"time"
)

// groupKiller ends a cancelled make's process group: SIGTERM to every
// member at once, then SIGKILL to whatever is left after the grace period.
type groupKiller struct {
	pgid   int
	grace  time.Duration
	exited chan struct{}
	killed chan struct{} // closed once SIGKILL went out or was not needed
}

func newGroupKiller(pgid int, grace time.Duration) *groupKiller {
	if grace <= 0 {
		grace = DefaultKillGrace
	}
	return &groupKiller{pgid: pgid, grace: grace, exited: make(chan struct{}), killed: make(chan struct{})}
}

// terminate runs when the context is cancelled, on its own goroutine.
func (k *groupKiller) terminate() {
	slog.Debug("cancelling make", "pgid", k.pgid)
	k.signal(syscall.SIGTERM)
	defer close(k.killed)

	deadline := time.NewTimer(k.grace)
	defer deadline.Stop()
	select {
	case <-deadline.C:
	case <-k.exited:
		// make is gone; give the rest of the group the remaining grace.
		if k.waitEmpty(deadline.C) {
			return
		}
	}
	k.signal(syscall.SIGKILL)
}

// finish marks make as exited. When terminate has started, it waits until
// the group is dead or SIGKILLed, so Make never returns while compilers of
// a cancelled build still run.
func (k *groupKiller) finish(terminating bool) {
	close(k.exited)
	if terminating {
		<-k.killed
	}
}

// waitEmpty polls until no process is left in the group or the deadline
// fires, and reports whether the group emptied.
func (k *groupKiller) waitEmpty(deadline <-chan time.Time) bool {
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for {
		if errors.Is(syscall.Kill(-k.pgid, 0), syscall.ESRCH) {
			return true
		}
		select {
		case <-deadline:
			return false
		case <-poll.C:
		}
	}
}

func (k *groupKiller) signal(sig syscall.Signal) {
	if err := syscall.Kill(-k.pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		slog.Debug("signal make's process group", "pgid", k.pgid, "signal", sig, "err", err)
	}
}
