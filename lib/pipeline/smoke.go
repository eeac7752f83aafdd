package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/ktstr/ktbuild/lib/smoke"
)

// SmokeRequest configures Smoke. Request names the kernel as for Path; an
// empty Spec means the newest valid cache entry.
type SmokeRequest struct {
	Request
	Accel   string        // auto, kvm or tcg
	Timeout time.Duration // 0 means smoke.DefaultTimeout
}

// Smoke boots a cached kernel under QEMU and reports whether sched_ext and
// BTF are there. The error is non-nil when either is missing, the kernel
// panics or the boot times out.
func Smoke(ctx context.Context, req SmokeRequest) (smoke.Report, error) {
	res, err := smokeTarget(ctx, &req.Request)
	if err != nil {
		return smoke.Report{}, err
	}
	logPath := filepath.Join(filepath.Dir(res.ImagePath), "smoke.log")
	if res.Entry == nil {
		logPath = ""
	}
	fmt.Fprintf(req.stderr(), "ktbuild: booting %s under QEMU\n", res.ImagePath)
	return smoke.Run(ctx, smoke.Options{
		Image:   res.ImagePath,
		Accel:   req.Accel,
		Timeout: req.Timeout,
		LogPath: logPath,
		Stderr:  req.stderr(),
	})
}

// smokeTarget finds the kernel to boot: the spec's cached kernel, or the
// newest valid entry when no spec is given.
func smokeTarget(ctx context.Context, req *Request) (Result, error) {
	if req.Spec != "" || req.getenv("KTSTR_KERNEL") != "" {
		return Path(ctx, *req)
	}
	c, err := openCache(req.CacheDir, false)
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
