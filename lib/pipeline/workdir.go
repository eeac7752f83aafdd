package pipeline

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// workPrefix starts the per-process directory under the cache root that
// holds extracted tarballs, downloads and clones. It is on the cache's
// filesystem, and its pid suffix lets a later build remove what an
// interrupted one left: a kernel tree is gigabytes once built, and
// removing it can outlast the grace a runner gives after Ctrl-C.
const workPrefix = ".work-"

// workDir returns this process's work directory, creating it on first use;
// it is removed when the build ends.
func (b *builder) workDir() (string, error) {
	if b.work != "" {
		return b.work, nil
	}
	dir := filepath.Join(b.cache.Root, workPrefix+strconv.Itoa(os.Getpid()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cannot create the work directory %s: %w — check that the cache root is writable", dir, err)
	}
	b.work = dir
	b.onRelease(func() {
		if err := os.RemoveAll(dir); err != nil {
			b.warnf("cannot remove the work directory %s: %v", dir, err)
		}
	})
	return dir, nil
}

// sweepWorkDirs removes the work directories of processes that no longer
// exist.
func (b *builder) sweepWorkDirs() {
	dirents, err := os.ReadDir(b.cache.Root)
	if err != nil {
		return
	}
	for _, d := range dirents {
		pidText, ok := strings.CutPrefix(d.Name(), workPrefix)
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		dir := filepath.Join(b.cache.Root, d.Name())
		b.say("removing %s, left by an interrupted build (pid %d)", dir, pid)
		if err := os.RemoveAll(dir); err != nil {
			b.warnf("cannot remove %s: %v", dir, err)
		}
	}
}

func processAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}
