package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ktstr/ktbuild/lib/smoke"
)

// SmokeRequest configures Smoke. Request names the kernel as for Path; an
// empty Spec means the newest valid cache entry.
type SmokeRequest struct {
	Request
	Accel   string        // auto, kvm or tcg
	Timeout time.Duration // 0 means smoke.DefaultTimeout

	guestInitDir string // guest init build cache; "" means smoke's default
}

// Smoke boots a cached kernel under QEMU and reports whether sched_ext and
// BTF are there. The error is non-nil when either is missing, the kernel
// panics or the boot times out.
//
// The console log goes to .logs/smoke-KEY-TIME-PID.log under the cache
// root, never into the entry, whose layout ktstr owns. When the cache is
// read-only it goes to os.TempDir() instead; the first line printed names it.
func Smoke(ctx context.Context, req SmokeRequest) (smoke.Report, error) {
	res, err := smokeTarget(ctx, &req.Request)
	if err != nil {
		return smoke.Report{}, err
	}
	root := ""
	if res.Entry != nil {
		root = filepath.Dir(res.Entry.Dir)
	}
	logPath, fallback, logErr := createSmokeLog(root, res.Key, time.Now())
	switch {
	case logErr != nil:
		fmt.Fprintf(req.stderr(), "ktbuild: booting %s under QEMU, no console log: %v\n", res.ImagePath, logErr)
	case fallback != nil:
		fmt.Fprintf(req.stderr(), "ktbuild: booting %s under QEMU, console log %s (the cache has no writable .logs: %v)\n", res.ImagePath, logPath, fallback)
	default:
		fmt.Fprintf(req.stderr(), "ktbuild: booting %s under QEMU, console log %s\n", res.ImagePath, logPath)
	}
	rep, err := smoke.Run(ctx, smoke.Options{
		Image:    res.ImagePath,
		Accel:    req.Accel,
		Timeout:  req.Timeout,
		LogPath:  logPath,
		Stderr:   req.stderr(),
		CacheDir: req.guestInitDir,
	})
	// A run that failed before booting leaves an empty log, so remove it.
	if logPath != "" {
		if fi, statErr := os.Stat(logPath); statErr == nil && fi.Size() == 0 {
			os.Remove(logPath)
		}
	}
	return rep, err
}

// createSmokeLog creates an empty console log for a smoke boot of key and
// returns its path: in root's .logs when root is set and writable, else in
// os.TempDir(), with fallback giving the reason. It fails only when the
// temp dir rejects the file too.
func createSmokeLog(root, key string, now time.Time) (path string, fallback, err error) {
	if key == "" {
		key = "kernel"
	}
	name := fmt.Sprintf("smoke-%s-%s-%d", key, now.UTC().Format("20060102T150405"), os.Getpid())
	if root != "" {
		dir := filepath.Join(root, ".logs")
		if fallback = os.MkdirAll(dir, 0o755); fallback == nil {
			// Smoke logs share .logs, and its bound, with the build logs.
			pruneLogs(dir, now)
			if path, fallback = createNew(dir, name); fallback == nil {
				return path, nil, nil
			}
		}
	}
	tmp := os.TempDir()
	if path, err = createNew(tmp, "ktbuild-"+name); err != nil {
		return "", fallback, fmt.Errorf("smoke console log: cannot create one in %s: %w — free space in %s or fix its permissions", tmp, errors.Join(fallback, err), tmp)
	}
	return path, fallback, nil
}

// createNew creates dir/name.log, or dir/name-N.log when an earlier boot in
// the same second and process took that name.
func createNew(dir, name string) (string, error) {
	for n := 1; ; n++ {
		path := filepath.Join(dir, name+".log")
		if n > 1 {
			path = filepath.Join(dir, name+"-"+strconv.Itoa(n)+".log")
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) && n < 100 {
			continue
		}
		if err != nil {
			return "", err
		}
		return path, f.Close()
	}
}

// smokeTarget finds the kernel to boot: the spec's cached kernel, or the
// newest valid entry when no spec is given.
func smokeTarget(ctx context.Context, req *Request) (Result, error) {
	if req.Spec != "" || req.getenv("KTSTR_KERNEL") != "" {
		return Path(ctx, *req)
	}
	// Opened read-only because booting must work from a read-only cache mount.
	c, err := openCacheEnv(req.CacheDir, req.Getenv, true)
	if err != nil {
		return Result{}, err
	}
	entries, err := c.List()
	if err != nil {
		return Result{}, err
	}
	for _, le := range entries {
		if le.Valid {
			return *hitResult(le.Entry), nil
		}
	}
	return Result{}, fmt.Errorf("no cached kernel in %s to boot — run `mage kernel:build` first, or name one with -source, -version or -git", c.Root)
}
