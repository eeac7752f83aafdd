package remote

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ktstr/ktbuild/lib/cache"
	"github.com/ktstr/ktbuild/lib/flock"
)

// workDirPrefix starts the names of the directories that hold compressed
// blobs of a push and downloaded files of a pull, under the cache root.
// The leading "." keeps the cache from listing them as entries.
const workDirPrefix = ".remote-"

// workDir is a scratch directory under the cache root, locked by its owner.
//
// Its lock file, root/.locks/{name}.lock, is held exclusively for the
// directory's whole life, which lets sweepWorkDirs tell a crashed owner's
// leftover from a live one without trusting PIDs across PID namespaces.
type workDir struct {
	dir      string
	lockPath string
	lock     *flock.Lock
}

func newWorkDir(c *cache.Cache) (*workDir, error) {
	var random [8]byte
	rand.Read(random[:])
	name := workDirPrefix + hex.EncodeToString(random[:])

	// The lock is taken before the directory exists, so a sweep never finds
	// the directory unlocked.
	lockPath := c.LockPath(name + ".lock")
	lock, err := flock.TryLock(lockPath, flock.Exclusive)
	if err != nil {
		return nil, fmt.Errorf("lock a scratch directory under %s: %w", c.Root, err)
	}
	dir := filepath.Join(c.Root, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		os.Remove(lockPath)
		lock.Release()
		return nil, fmt.Errorf("create a scratch directory under %s: %w — check that the cache root is writable", c.Root, err)
	}
	return &workDir{dir: dir, lockPath: lockPath, lock: lock}, nil
}

func (w *workDir) path(name string) string { return filepath.Join(w.dir, name) }

// remove deletes the directory and its lock file, then releases the lock.
func (w *workDir) remove(warn func(string, ...any)) {
	if err := os.RemoveAll(w.dir); err != nil {
		warn("remote cache: removing the scratch directory %s failed: %v — remove it by hand", w.dir, err)
	}
	os.Remove(w.lockPath)
	w.lock.Release()
}

// SweepScratch removes the .remote-* scratch directories under c's root
// that no process holds, the leftovers of a push or pull that was killed.
func SweepScratch(c *cache.Cache, warn func(string, ...any)) {
	sweepWorkDirs(c, warn)
}

// sweepWorkDirs removes scratch directories that no process holds, the
// leftovers of a push or pull that was killed.
func sweepWorkDirs(c *cache.Cache, warn func(string, ...any)) {
	dirents, err := os.ReadDir(c.Root)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			warn("remote cache: listing %s for leftover scratch directories failed: %v", c.Root, err)
		}
		return
	}
	for _, d := range dirents {
		if !d.IsDir() || !strings.HasPrefix(d.Name(), workDirPrefix) {
			continue
		}
		lockPath := c.LockPath(d.Name() + ".lock")
		lock, err := flock.TryLock(lockPath, flock.Exclusive)
		if err != nil {
			continue
		}
		stale := &workDir{dir: filepath.Join(c.Root, d.Name()), lockPath: lockPath, lock: lock}
		stale.remove(warn)
	}
}
