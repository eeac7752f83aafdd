package cache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/ktstr/ktbuild/lib/flock"
)

// replacedSince reports whether the entry read as now (or err) is not the
// one listed as e, so a plan made from e no longer applies to it.
func replacedSince(e ListEntry, now Entry, err error) bool {
	if e.Valid != (err == nil) {
		return true
	}
	return e.Valid && now.Meta.BuiltAt != e.Entry.Meta.BuiltAt
}

// CleanOptions selects the entries PlanClean returns.
type CleanOptions struct {
	// Keep is how many of the newest valid entries stay; a negative value
	// means not given, so every valid entry goes unless CorruptOnly is set.
	Keep int
	// CorruptOnly removes corrupt entries only; it conflicts with Keep >= 0.
	CorruptOnly bool
}

// PlanClean returns the entries a clean with opts removes, in List order.
// Corrupt entries always go and never take one of the Keep places.
func (c *Cache) PlanClean(opts CleanOptions) ([]ListEntry, error) {
	if opts.CorruptOnly && opts.Keep >= 0 {
		return nil, fmt.Errorf("cache clean: -corruptonly conflicts with -keep=%d — pass one of them", opts.Keep)
	}
	entries, err := c.List()
	if err != nil {
		return nil, err
	}

	var plan []ListEntry
	keptValid := 0
	for _, e := range entries {
		if e.Valid {
			if opts.CorruptOnly || (opts.Keep >= 0 && keptValid < opts.Keep) {
				keptValid++
				continue
			}
		}
		plan = append(plan, e)
	}
	return plan, nil
}

// Remove deletes the entry of e.Key, as listed in e. It takes the exclusive
// entry lock without waiting, and removes nothing and returns skipped=true
// when a reader or a store holds the lock, or when a store replaced the
// entry after e was listed. A directory that is not a cache entry (see List)
// is never removed. The entry first moves to a hidden name, so the
// key never names a half-deleted directory.
func (c *Cache) Remove(ctx context.Context, e ListEntry) (skipped bool, err error) {
	if err := ValidateKey(e.Key); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}

	lock, err := flock.TryLock(c.EntryLockPath(e.Key), flock.Exclusive)
	if errors.Is(err, flock.ErrWouldBlock) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("cache remove %s: %w", e.Key, err)
	}
	defer lock.Release()

	dir := c.EntryDir(e.Key)
	now, err := readEntry(e.Key, dir)
	var bad *CorruptError
	if !errors.As(err, &bad) && errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if !isEntryDir(e.Key, dir) {
		return false, fmt.Errorf("cache remove %s: %s is not a cache entry (no metadata.json, and its name is not a cache key) — it was left in place, check that KTSTR_CACHE_DIR names the kernel cache", e.Key, dir)
	}
	if replacedSince(e, now, err) {
		return true, nil
	}

	doomed := filepath.Join(c.Root, tmpPrefix+e.Key+"-"+strconv.Itoa(os.Getpid()))
	if err := os.RemoveAll(doomed); err != nil {
		return false, fmt.Errorf("cache remove %s: clearing %s: %w", e.Key, doomed, err)
	}
	if err := os.Rename(dir, doomed); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("cache remove %s: %w", e.Key, err)
	}
	if err := os.RemoveAll(doomed); err != nil {
		return false, fmt.Errorf("cache remove %s: %w — a store after this process exits removes %s", e.Key, err, doomed)
	}
	return false, nil
}
