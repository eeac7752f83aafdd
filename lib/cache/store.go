package cache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ktstr/ktbuild/lib/flock"
)

// StoreRequest describes a built kernel for Store to put into the cache.
type StoreRequest struct {
	Key          string
	ImagePath    string // boot image to copy
	VmlinuxPath  string // vmlinux to strip and copy; "" = none
	BuildLogPath string // build log to keep, gzip-compressed, as build.log.gz; "" = none

	// Meta is written to metadata.json. Store sets HasVmlinux and
	// VmlinuxStripped, fills an empty ImageName with the base name of
	// ImagePath and an empty BuiltAt with the current time, and sets
	// Build.StoreSecs when Build is present and StoreSecs is 0.
	Meta Metadata

	// Strip writes a stripped copy of src to dst. When it is nil or fails,
	// the entry gets the unstripped vmlinux and VmlinuxStripped=false.
	Strip func(src, dst string) error
	// Warn receives warnings such as a failed strip; nil means slog.Warn.
	Warn func(format string, args ...any)
	// LockTimeout bounds the wait for the entry lock; 0 means
	// DefaultStoreLockTimeout.
	LockTimeout time.Duration
}

// Store copies a built kernel into the entry of req.Key.
//
// It takes the exclusive entry lock, so it waits for readers and other
// stores of the key, removes store directories that crashed processes left,
// builds the entry in root/.tmp-{key}-{pid}, and publishes it with one
// rename. An existing entry is swapped with renameat2(RENAME_EXCHANGE) and
// then removed, so the key names a complete entry at every moment. On any
// error, the store directory is removed and the old entry, if any, is left as
// it was.
func (c *Cache) Store(ctx context.Context, req StoreRequest) (Entry, error) {
	start := time.Now()
	meta := req.Meta
	if meta.ImageName == "" {
		meta.ImageName = filepath.Base(req.ImagePath)
	}
	if err := ValidateKey(req.Key); err != nil {
		return Entry{}, err
	}
	if err := validateImageName(meta.ImageName); err != nil {
		return Entry{}, err
	}
	if _, err := meta.Source.MarshalJSON(); err != nil {
		return Entry{}, fmt.Errorf("cache store %s: %w", req.Key, err)
	}
	if meta.BuiltAt == "" {
		meta.BuiltAt = FormatBuiltAt(start)
	}
	warn := req.Warn
	if warn == nil {
		warn = func(format string, args ...any) { slog.Warn(fmt.Sprintf(format, args...)) }
	}
	if err := checkSourceFile("image", req.ImagePath); err != nil {
		return Entry{}, err
	}
	if err := checkSourceContent(meta.ImageName, req.ImagePath); err != nil {
		return Entry{}, fmt.Errorf("cache store %s: %w", req.Key, err)
	}
	if req.VmlinuxPath != "" {
		if err := checkSourceFile("vmlinux", req.VmlinuxPath); err != nil {
			return Entry{}, err
		}
		if err := checkSourceContent(VmlinuxName, req.VmlinuxPath); err != nil {
			return Entry{}, fmt.Errorf("cache store %s: %w", req.Key, err)
		}
	}

	timeout := req.LockTimeout
	if timeout == 0 {
		timeout = DefaultStoreLockTimeout
	}
	lock, err := flock.AcquireTimeout(ctx, c.EntryLockPath(req.Key), flock.Exclusive, timeout)
	if err != nil {
		return Entry{}, fmt.Errorf("cache store %s: %w", req.Key, err)
	}
	defer lock.Release()

	tmp := c.tmpDir(req.Key)
	c.sweep(req.Key, tmp, warn)
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return Entry{}, c.storeError(req.Key, "create the store directory", err)
	}
	// After a successful rename tmp no longer exists; after a swap it holds
	// the replaced entry. Either way it goes.
	defer func() {
		if err := os.RemoveAll(tmp); err != nil {
			warn("cache: removing %s failed: %v — a later store of the key removes it", tmp, err)
		}
	}()

	// The image copy runs while vmlinux is stripped or copied, because
	// the two are independent and the strip mostly uses the CPU.
	imageDone := make(chan error, 1)
	go func() { imageDone <- copyFile(req.ImagePath, filepath.Join(tmp, meta.ImageName)) }()
	meta.HasVmlinux, meta.VmlinuxStripped = false, false
	var vmlinuxErr error
	if req.VmlinuxPath != "" {
		meta.HasVmlinux = true
		meta.VmlinuxStripped, vmlinuxErr = storeVmlinux(req, tmp, warn)
	}
	if err := <-imageDone; err != nil {
		return Entry{}, c.storeError(req.Key, "copy the image", err)
	}
	if vmlinuxErr != nil {
		return Entry{}, c.storeError(req.Key, "copy vmlinux", vmlinuxErr)
	}
	if req.BuildLogPath != "" {
		if err := storeBuildLog(req.BuildLogPath, tmp, warn); err != nil {
			return Entry{}, c.storeError(req.Key, "copy the build log", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return Entry{}, fmt.Errorf("cache store %s: %w", req.Key, err)
	}

	if meta.Build != nil && meta.Build.StoreSecs == 0 {
		facts := *meta.Build
		facts.StoreSecs = time.Since(start).Seconds()
		meta.Build = &facts
	}
	data, err := meta.Encode()
	if err != nil {
		return Entry{}, fmt.Errorf("cache store %s: %w", req.Key, err)
	}
	if err := writeNewFile(filepath.Join(tmp, MetadataName), data); err != nil {
		return Entry{}, c.storeError(req.Key, "write metadata.json", err)
	}
	// Every file must be on disk before the rename can be: a crash may then
	// lose the new entry, but never leave one with missing bytes.
	if err := syncDir(tmp); err != nil {
		return Entry{}, c.storeError(req.Key, "sync the entry's files", err)
	}

	final := c.EntryDir(req.Key)
	old := filepath.Join(c.Root, tmpPrefix+req.Key+".old-"+strconv.Itoa(os.Getpid()))
	if err := publish(tmp, final, old, warn); err != nil {
		return Entry{}, c.storeError(req.Key, "publish the entry", err)
	}

	e := Entry{Key: req.Key, Dir: final, Meta: meta, ImagePath: filepath.Join(final, meta.ImageName)}
	if meta.HasVmlinux {
		e.VmlinuxPath = filepath.Join(final, VmlinuxName)
	}
	return e, nil
}

func (c *Cache) tmpDir(key string) string {
	return filepath.Join(c.Root, tmpPrefix+key+"-"+strconv.Itoa(os.Getpid()))
}

func checkSourceFile(kind, path string) error {
	info, err := os.Stat(path)
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		err = pathErr.Err
	}
	if err != nil {
		return fmt.Errorf("cache store: %s %s: %w — pass the file the build produced", kind, path, err)
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("cache store: %s %s is not a regular file — pass the file the build produced", kind, path)
	}
	return nil
}

// checkSourceContent rejects a file that readEntry would report as corrupt
// once stored as name, so a store never publishes an entry that cannot be a hit.
func checkSourceContent(name, path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	n := bzImageMagicOffset + len(bzImageMagic)
	if name == VmlinuxName {
		n = len(elfMagic)
	}
	head, err := readHead(os.Open, path, n)
	if err != nil {
		return err
	}
	problem := imageProblem(name, info.Size(), head)
	kind := "image"
	if name == VmlinuxName {
		problem, kind = vmlinuxProblem(info.Size(), head), "vmlinux"
	}
	if problem != "" {
		return fmt.Errorf("%s %s %s — pass the file the build produced", kind, path, problem)
	}
	return nil
}

// storeVmlinux writes vmlinux into the store directory, stripped when
// req.Strip succeeds, and reports whether it was stripped.
func storeVmlinux(req StoreRequest, tmp string, warn func(string, ...any)) (stripped bool, err error) {
	dst := filepath.Join(tmp, VmlinuxName)
	if req.Strip != nil {
		err := req.Strip(req.VmlinuxPath, dst)
		if err == nil {
			return true, nil
		}
		if isNoSpace(err) {
			return false, err
		}
		warn("cache: stripping %s failed, storing it unstripped (larger entry): %v", req.VmlinuxPath, err)
		if err := os.Remove(dst); err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, err
		}
	}
	return false, copyFile(req.VmlinuxPath, dst)
}

// storeBuildLog compresses the build log into the store directory. The log
// is not needed to use the entry, so only a full disk fails the store.
func storeBuildLog(path, tmp string, warn func(string, ...any)) error {
	dst := filepath.Join(tmp, BuildLogName)
	err := gzipFile(path, dst)
	if err == nil {
		return nil
	}
	if isNoSpace(err) {
		return err
	}
	warn("cache: storing the build log %s failed, the entry has none: %v", path, err)
	if err := os.Remove(dst); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// publish moves the finished store directory tmp to final. When final
// exists, the two are exchanged in one step and tmp then holds the old entry.
// Where the filesystem cannot exchange, the old entry moves aside to old
// first.
func publish(tmp, final, old string, warn func(string, ...any)) error {
	err := unix.Rename(tmp, final)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EEXIST) && !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.ENOTDIR) {
		return &os.LinkError{Op: "rename", Old: tmp, New: final, Err: err}
	}

	err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, final, unix.RENAME_EXCHANGE)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) {
		return &os.LinkError{Op: "renameat2 RENAME_EXCHANGE", Old: tmp, New: final, Err: err}
	}

	// The filesystem cannot exchange; readers holding the entry lock are
	// still safe because Store holds it exclusively.
	warn("cache: the filesystem of %s does not support renameat2(RENAME_EXCHANGE); replacing the entry in two steps, so a reader without the entry lock may miss it briefly", filepath.Dir(final))
	if err := os.Rename(final, old); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		if rerr := os.Rename(old, final); rerr != nil {
			return fmt.Errorf("%w; restoring the old entry failed too: %v", err, rerr)
		}
		return err
	}
	return os.Rename(old, tmp)
}

func (c *Cache) storeError(key, step string, err error) error {
	if isNoSpace(err) {
		return fmt.Errorf("cache store %s: %s: %w — free space on the filesystem of %s or set KTSTR_CACHE_DIR elsewhere; nothing was stored", key, step, err, c.Root)
	}
	return fmt.Errorf("cache store %s: %s: %w", key, step, err)
}

func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// sweep removes store directories that no store is using: this process's own
// leftover for key, and any .tmp-{key}-{pid} whose pid is dead. A directory
// is also kept while another process holds its key's entry lock, because a
// pid from another PID namespace can look dead here.
func (c *Cache) sweep(key, own string, warn func(string, ...any)) {
	if _, err := os.Lstat(own); err == nil {
		if err := os.RemoveAll(own); err != nil {
			warn("cache: removing the leftover store directory %s failed: %v", own, err)
		}
	}

	dirents, err := os.ReadDir(c.Root)
	if err != nil {
		warn("cache: listing %s to remove leftover store directories failed: %v", c.Root, err)
		return
	}
	for _, d := range dirents {
		otherKey, pid, ok := parseTmpName(d.Name())
		if !ok || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		c.removeOrphan(d.Name(), otherKey, otherKey == key, warn)
		slog.Debug("cache: checked a store directory of a dead process", "name", d.Name(), "pid", pid)
	}
}

// SweepStores removes the .tmp-{key}-{pid} directories of stores whose
// process is gone and whose entry lock is free, such as a store killed by
// SIGKILL. Store runs the same sweep for its own key.
func (c *Cache) SweepStores(warn func(string, ...any)) {
	c.sweep("", "", warn)
}

// removeOrphan removes the store directory name of key unless another
// process holds key's entry lock. locked means the caller holds it already.
func (c *Cache) removeOrphan(name, key string, locked bool, warn func(string, ...any)) {
	if !locked {
		l, err := flock.TryLock(c.EntryLockPath(key), flock.Exclusive)
		if err != nil {
			return
		}
		defer l.Release()
	}
	path := filepath.Join(c.Root, name)
	if err := os.RemoveAll(path); err != nil {
		warn("cache: removing the leftover store directory %s failed: %v", path, err)
	}
}

// parseTmpName splits ".tmp-{key}-{pid}" into key and pid. The key may hold
// "-", so the pid is taken from the end.
func parseTmpName(name string) (key string, pid int, ok bool) {
	rest, found := strings.CutPrefix(name, tmpPrefix)
	if !found {
		return "", 0, false
	}
	i := strings.LastIndexByte(rest, '-')
	if i <= 0 {
		return "", 0, false
	}
	pid, err := strconv.Atoi(rest[i+1:])
	if err != nil || pid <= 0 {
		return "", 0, false
	}
	key = rest[:i]
	if ValidateKey(key) != nil {
		return "", 0, false
	}
	return key, pid, true
}

// processAlive reports whether pid exists; EPERM means it exists under
// another user.
func processAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}
