package pipeline

import (
	"fmt"

	"github.com/ktstr/ktbuild/lib/source"
)

// WaitState classifies a local tree after the source-tree lock is taken,
// compared with its state when the build acquired it.
type WaitState int

const (
	// StateClean: unchanged, or not a local source. Only this state lets a
	// build serve the kernel a concurrent build stored while it waited.
	StateClean WaitState = iota
	// StatePreAcquireDirty: the tree was dirty before the wait began.
	StatePreAcquireDirty
	// StateDirtyEdit: clean before the wait, dirty after it.
	StateDirtyEdit
	// StateHashAdvanced: clean before and after, but HEAD moved.
	StateHashAdvanced
	// StateProbeFailed: the git state probe failed after the wait.
	StateProbeFailed
)

func (s WaitState) String() string {
	switch s {
	case StateClean:
		return "clean"
	case StatePreAcquireDirty:
		return "pre-acquire dirty"
	case StateDirtyEdit:
		return "dirty edit"
	case StateHashAdvanced:
		return "hash advanced"
	case StateProbeFailed:
		return "probe failed"
	}
	return fmt.Sprintf("WaitState(%d)", int(s))
}

// Message returns the line shown for the state, or "" for states that need
// none. probeErr is the probe's error for StateProbeFailed.
func (s WaitState) Message(probeErr error) string {
	switch s {
	case StateDirtyEdit:
		return "the tree changed during the wait — rebuilding with your edits"
	case StateHashAdvanced:
		return "HEAD moved during the wait — rebuilding for the new commit"
	case StateProbeFailed:
		return fmt.Sprintf("could not re-check the tree after the wait (%v) — rebuilding to be safe", probeErr)
	}
	return ""
}

// ClassifyWait compares a local tree's git state before the wait with the
// state probed after it. local is false for tarball, version and git
// sources, which cannot change under us.
func ClassifyWait(local bool, before source.GitState, after source.GitState, probeErr error) WaitState {
	switch {
	case !local:
		return StateClean
	case before.Dirty:
		return StatePreAcquireDirty
	case probeErr != nil:
		return StateProbeFailed
	case after.Dirty:
		return StateDirtyEdit
	case after.Hash != before.Hash:
		return StateHashAdvanced
	}
	return StateClean
}

// PostBuildChange describes how a local tree changed while make ran, for the
// message that explains why the kernel is not stored.
type PostBuildChange struct {
	DirtyBefore, DirtyAfter bool
	HashBefore, HashAfter   string
}

// Changed reports whether the tree is no longer the one the cache key names.
func (c PostBuildChange) Changed() bool {
	return c.DirtyAfter || c.moved()
}

// moved reports whether HEAD is known to point at another commit. A dirty
// tree has no hash, so its absence is no evidence about HEAD.
func (c PostBuildChange) moved() bool {
	return c.HashAfter != "" && c.HashAfter != c.HashBefore
}

func (c PostBuildChange) String() string {
	hash := "HEAD unchanged"
	if c.moved() {
		hash = fmt.Sprintf("HEAD moved %s → %s", shortOr(c.HashBefore), shortOr(c.HashAfter))
	}
	return fmt.Sprintf("dirty before: %t, dirty after: %t, %s", c.DirtyBefore, c.DirtyAfter, hash)
}

func shortOr(h string) string {
	if h == "" {
		return "none"
	}
	if len(h) > 7 {
		return h[:7]
	}
	return h
}
