package cache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ktstr/ktbuild/lib/flock"
)

// LocksDirName is the directory under the root that holds the lock files.
const LocksDirName = ".locks"

// tmpPrefix starts the name of a store in progress, .tmp-{key}-{pid}.
const tmpPrefix = ".tmp-"

// Timeouts for the entry lock.
const (
	DefaultStoreLockTimeout = 10 * time.Minute // Store, when StoreRequest.LockTimeout is 0
	ReadLockTimeout         = 5 * time.Minute  // ReadLock
)

// Cache is an opened cache root.
type Cache struct {
	Root string // absolute path
}

// ResolveRoot returns the cache root that ktstr uses: $KTSTR_CACHE_DIR when
// set and non-empty, else $XDG_CACHE_HOME/ktstr/kernels, else
// $HOME/.cache/ktstr/kernels. It returns an error when it falls back to a
// HOME that is unset, empty, "/" or relative. It creates nothing.
func ResolveRoot() (string, error) {
	return ResolveRootLookup(os.LookupEnv)
}

// ResolveRootLookup is ResolveRoot with the environment read through
// lookup, which has the signature of os.LookupEnv.
func ResolveRootLookup(lookup func(string) (string, bool)) (string, error) {
	if dir, _ := lookup("KTSTR_CACHE_DIR"); dir != "" {
		return dir, nil
	}
	if xdg, _ := lookup("XDG_CACHE_HOME"); xdg != "" {
		return filepath.Join(xdg, "ktstr", "kernels"), nil
	}

	const fix = "set HOME to your home directory, or set KTSTR_CACHE_DIR (or XDG_CACHE_HOME) to an absolute path"
	home, set := lookup("HOME")
	switch {
	case !set:
		return "", fmt.Errorf("cache root: HOME is not set and neither KTSTR_CACHE_DIR nor XDG_CACHE_HOME is — %s", fix)
	case home == "":
		return "", fmt.Errorf("cache root: HOME is empty and neither KTSTR_CACHE_DIR nor XDG_CACHE_HOME is set — %s", fix)
	case home == "/":
		return "", fmt.Errorf(`cache root: HOME is "/", which would put the cache at /.cache/ktstr/kernels — %s`, fix)
	case !strings.HasPrefix(home, "/"):
		return "", fmt.Errorf("cache root: HOME=%q is not an absolute path — %s", home, fix)
	}
	return filepath.Join(home, ".cache", "ktstr", "kernels"), nil
}

// Open creates root and root/.locks when missing, checks that root is a
// writable directory and that the lock directory is on a filesystem where
// flock(2) works across processes, and returns the cache.
func Open(root string) (*Cache, error) {
	if root == "" {
		return nil, errors.New("cache root: the path is empty — pass a directory, or call ResolveRoot")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("cache root %s: %w", root, err)
	}

	locks := filepath.Join(abs, LocksDirName)
	if err := os.MkdirAll(locks, 0o755); err != nil {
		return nil, unwritableRoot(abs, err)
	}
	probe, err := os.CreateTemp(abs, ".write-test-*")
	if err != nil {
		return nil, unwritableRoot(abs, err)
	}
	probe.Close()
	os.Remove(probe.Name())

	if err := flock.CheckFilesystem(locks); err != nil {
		return nil, fmt.Errorf("cache root %s: lock directory unusable: %w — set KTSTR_CACHE_DIR to a directory on a local filesystem", abs, err)
	}
	return &Cache{Root: abs}, nil
}

// OpenReadOnly returns the cache at root for lookups and listing only. It
// creates and writes nothing, so a cache on a read-only mount can be read.
// A missing root is an empty cache.
func OpenReadOnly(root string) (*Cache, error) {
	if root == "" {
		return nil, errors.New("cache root: the path is empty — pass a directory, or call ResolveRoot")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("cache root %s: %w", root, err)
	}
	info, err := os.Stat(abs)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("cache root %s: %w — check its permissions", abs, err)
	case !info.IsDir():
		return nil, fmt.Errorf("cache root %s is not a directory — set KTSTR_CACHE_DIR to the kernel cache directory", abs)
	}
	return &Cache{Root: abs}, nil
}

func unwritableRoot(root string, err error) error {
	return fmt.Errorf("cache root %s is not a writable directory: %w — fix its permissions, or set KTSTR_CACHE_DIR to a writable directory", root, err)
}

// LockPath returns the path of the lock file name under root/.locks.
func (c *Cache) LockPath(name string) string {
	return filepath.Join(c.Root, LocksDirName, name)
}

// EntryLockPath returns the path of key's entry lock, root/.locks/{key}.lock,
// the file ktstr locks for the same entry.
func (c *Cache) EntryLockPath(key string) string {
	return c.LockPath(key + ".lock")
}

// EntryDir returns the path of key's entry directory.
func (c *Cache) EntryDir(key string) string {
	return filepath.Join(c.Root, key)
}

// ReadLock takes the shared entry lock of key, waiting for a store in
// progress for at most ReadLockTimeout or until ctx is done. Hold it while
// using the entry's files and release it afterwards; Store waits for it.
func (c *Cache) ReadLock(ctx context.Context, key string) (*flock.Lock, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	return flock.AcquireTimeout(ctx, c.EntryLockPath(key), flock.Shared, ReadLockTimeout)
}
