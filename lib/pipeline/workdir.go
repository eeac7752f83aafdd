package pipeline

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ktstr/ktbuild/lib/flock"
)

// workPrefix starts the per-build directory under the cache root that
// holds extracted tarballs, downloads and clones. It is on the cache's
// filesystem so a later build can remove what an interrupted one left: a
// kernel tree is gigabytes once built, and removing it can outlast the
// grace a runner gives after Ctrl-C.
const workPrefix = ".work-"

// workDir returns this build's work directory, creating it on first use;
// it is removed when the build ends. The directory is named
// .work-{pid}-{random}, and the build holds an exclusive lock on
// .locks/work-{pid}-{random}.lock for as long as the directory exists.
// A sweep decides by the lock, not the pid, that the owner is gone, so builds
// in one process or in other pid namespaces never remove each other's trees.
func (b *builder) workDir() (string, error) {
	if b.work != "" {
		return b.work, nil
	}
	var random [6]byte
	if _, err := rand.Read(random[:]); err != nil {
		return "", fmt.Errorf("cannot name the work directory: %w", err)
	}
	id := strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(random[:])
	lock, err := flock.TryLock(b.workLockPath(id), flock.Exclusive)
	if err != nil {
		return "", fmt.Errorf("cannot lock the work directory %s: %w — check that the cache root is writable", id, err)
	}
	dir := filepath.Join(b.cache.Root, workPrefix+id)
	if err := os.Mkdir(dir, 0o755); err != nil {
		lock.Release()
		return "", fmt.Errorf("cannot create the work directory %s: %w — check that the cache root is writable", dir, err)
	}
	b.work = dir
	b.onRelease(func() {
		if err := os.RemoveAll(dir); err != nil {
			b.warnf("cannot remove the work directory %s: %v", dir, err)
		}
		os.Remove(lock.Path())
		lock.Release()
	})
	return dir, nil
}

// workID matches the {pid}-{random} part of a work directory's name.
var workID = regexp.MustCompile(`^[0-9]+-[0-9a-f]{12}$`)

func (b *builder) workLockPath(id string) string {
	return b.cache.LockPath("work-" + id + ".lock")
}

// sweepWorkDirs removes the work directories whose builds are gone: those
// whose lock is free and whose pid is not running, and those of the older
// .work-{pid} form whose process no longer exists.
func (b *builder) sweepWorkDirs() {
	dirents, err := os.ReadDir(b.cache.Root)
	if err != nil {
		return
	}
	for _, d := range dirents {
		id, ok := strings.CutPrefix(d.Name(), workPrefix)
		if !ok || !d.IsDir() {
			continue
		}
		dir := filepath.Join(b.cache.Root, d.Name())
		if pid, err := strconv.Atoi(id); err == nil {
			if pid == os.Getpid() || processAlive(pid) {
				continue
			}
			b.say("removing %s, left by an interrupted build (pid %d)", dir, pid)
			b.removeWorkDir(dir)
			continue
		}
		if !workID.MatchString(id) {
			continue
		}
		// A live pid keeps the directory even with its lock free, in case
		// the lock file was deleted under a running build. In another pid
		// namespace the number may name an unrelated process, which only
		// delays the sweep.
		if pid, err := strconv.Atoi(id[:strings.IndexByte(id, '-')]); err != nil || processAlive(pid) {
			continue
		}
		lock, err := flock.TryLock(b.workLockPath(id), flock.Exclusive)
		if err != nil {
			continue // held, so its build is running
		}
		// The owner may have finished between ReadDir and the lock.
		if _, err := os.Lstat(dir); err == nil {
			b.say("removing %s, left by an interrupted build", dir)
			b.removeWorkDir(dir)
		}
		os.Remove(lock.Path())
		lock.Release()
	}
}

func (b *builder) removeWorkDir(dir string) {
	if err := os.RemoveAll(dir); err != nil {
		b.warnf("cannot remove %s: %v", dir, err)
	}
}

func processAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}
