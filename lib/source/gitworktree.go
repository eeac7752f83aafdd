package source

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// statPolicy holds the core.* settings that decide which stat fields count.
type statPolicy struct {
	fileMode   bool // core.filemode: the executable bit is tracked
	trustCtime bool // core.trustctime
	minimal    bool // core.checkstat=minimal: only mtime seconds and size
}

// worktreeCheck finds tracked files whose worktree copy differs from the
// index, the way `git status` does without refreshing the index.
type worktreeCheck struct {
	rootFD   int
	policy   statPolicy
	idxSec   int64
	idxNsec  int64
	modified atomic.Bool
	bufPool  sync.Pool
}

// checkWorktree reports whether any of entries differs from its worktree
// file under root. Entries are lstat'ed by several goroutines because each
// lstat is a syscall that mostly waits on the dentry cache or the disk.
// Gitlinks (submodules) and entries marked skip-worktree or assume-unchanged
// are not looked at, as `git status` does not look at them.
func checkWorktree(root string, entries []indexEntry, idx *gitIndex, policy statPolicy) (bool, error) {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("git probe: open worktree %s: %w", root, err)
	}
	defer unix.Close(fd)

	c := &worktreeCheck{rootFD: fd, policy: policy, idxSec: idx.mtimeSec, idxNsec: idx.mtimeNsec}
	c.bufPool.New = func() any { b := make([]byte, 64*1024); return &b }

	// Chunks keep the shared counter cold; 512 lstats take a few hundred
	// microseconds, short enough to balance the load.
	const chunk = 512
	var next atomic.Int64
	workers := min(max(4*runtime.GOMAXPROCS(0), 8), 32, (len(entries)+chunk-1)/chunk)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !c.modified.Load() {
				lo := int(next.Add(chunk)) - chunk
				if lo >= len(entries) {
					return
				}
				for i := lo; i < min(lo+chunk, len(entries)); i++ {
					if c.entryModified(&entries[i]) {
						c.modified.Store(true)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	return c.modified.Load(), nil
}

// entryModified compares one entry with its file. A file that cannot be
// read counts as modified, so the probe never calls a tree clean unseen.
func (c *worktreeCheck) entryModified(e *indexEntry) bool {
	if e.mode&modeTypeMask == modeGitlink || e.skipWorktree || e.assumeValid {
		return false
	}
	var st unix.Stat_t
	if err := unix.Fstatat(c.rootFD, e.name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return true
	}

	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		if e.mode&modeTypeMask != modeRegular {
			return true
		}
		if c.policy.fileMode && (st.Mode&0o100 != 0) != (e.mode&0o100 != 0) {
			return true
		}
	case unix.S_IFLNK:
		if e.mode&modeTypeMask != modeSymlink {
			return true
		}
	default:
		return true
	}

	sizeChanged := uint32(st.Size) != e.size
	// git writes size 0 for an entry whose content it could not trust yet,
	// so only a non-zero recorded size proves a change without reading.
	if sizeChanged && e.size != 0 {
		return true
	}
	if !sizeChanged && c.statMatches(e, &st) && !c.racy(e) {
		return false
	}
	return c.contentModified(e, st.Size)
}

// statMatches compares the stat fields git records, each as git truncates
// it to 32 bits. Nanoseconds count only when the index recorded them.
func (c *worktreeCheck) statMatches(e *indexEntry, st *unix.Stat_t) bool {
	if uint32(st.Mtim.Sec) != e.mtimeSec || (e.mtimeNsec != 0 && uint32(st.Mtim.Nsec) != e.mtimeNsec) {
		return false
	}
	if c.policy.minimal {
		return true
	}
	if c.policy.trustCtime && (uint32(st.Ctim.Sec) != e.ctimeSec || (e.ctimeNsec != 0 && uint32(st.Ctim.Nsec) != e.ctimeNsec)) {
		return false
	}
	return uint32(st.Ino) == e.ino && st.Uid == e.uid && st.Gid == e.gid
}

// racy reports whether the file may have changed in the same timestamp tick
// as the index was written, in which case matching stat data proves nothing.
func (c *worktreeCheck) racy(e *indexEntry) bool {
	if int64(e.mtimeSec) != c.idxSec {
		return int64(e.mtimeSec) > c.idxSec
	}
	return e.mtimeNsec == 0 || int64(e.mtimeNsec) >= c.idxNsec
}

// contentModified hashes the file as a blob and compares it with the
// entry's id. Clean and smudge filters and end-of-line conversion are not
// applied, so a tree that uses them reads as modified.
func (c *worktreeCheck) contentModified(e *indexEntry, size int64) bool {
	var id [sha1.Size]byte
	if e.mode&modeTypeMask == modeSymlink {
		target, err := readlinkat(c.rootFD, e.name)
		if err != nil {
			return true
		}
		id = hashObject("blob", []byte(target))
		return id != e.hash
	}

	fd, err := unix.Openat(c.rootFD, e.name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return true
	}
	f := os.NewFile(uintptr(fd), e.name)
	defer f.Close()

	h := sha1.New()
	h.Write([]byte("blob " + strconv.FormatInt(size, 10) + "\x00"))
	bp := c.bufPool.Get().(*[]byte)
	defer c.bufPool.Put(bp)
	n, err := io.CopyBuffer(h, io.LimitReader(f, size+1), *bp)
	if err != nil || n != size {
		return true
	}
	h.Sum(id[:0])
	return !bytes.Equal(id[:], e.hash[:])
}

func readlinkat(dirfd int, name string) (string, error) {
	for size := 256; size <= 1<<20; size *= 4 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
	return "", errors.New("symlink target too long")
}
