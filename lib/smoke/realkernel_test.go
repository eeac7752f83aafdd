package smoke

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// Real kernels are too large to ship and too slow to build in the default
// test run, so these tests run only when an environment variable names one:
//
//	KTBUILD_SMOKE_IMAGE=path/to/bzImage        a kernel built with the
//	                                          sched_ext fragment
//	KTBUILD_SMOKE_NOSCX_IMAGE=path/to/vmlinuz  a kernel without sched_ext,
//	                                          such as a Debian 6.1 kernel
//
// Both boot with accel auto, so a host whose KVM fails also covers the
// fallback to TCG.

func realImage(t *testing.T, env string) string {
	t.Helper()
	path := os.Getenv(env)
	if path == "" {
		t.Skipf("%s is not set — set it to a kernel image to boot a real kernel", env)
	}
	return path
}

func TestRealKernelHasSchedExt(t *testing.T) {
	image := realImage(t, "KTBUILD_SMOKE_IMAGE")
	var stderr strings.Builder
	rep, err := Run(context.Background(), Options{
		Image: image, CacheDir: testCacheDir, Stderr: &stderr,
		Timeout: 3 * time.Minute,
	})
	t.Logf("boot of %s:\n%s%s", image, rep, stderr.String())
	if err != nil {
		t.Fatalf("Run: %v\nconsole:\n%s", err, rep.ConsoleLog)
	}
	if rep.SchedExtState != "disabled" {
		t.Errorf("sched_ext state = %q, want disabled", rep.SchedExtState)
	}
	if !rep.SchedExtPresent || !rep.BTFPresent {
		t.Errorf("report = %+v, want sched_ext and BTF present", rep)
	}
	if rep.CPUs != DefaultCPUs {
		t.Errorf("CPUs = %d, want %d", rep.CPUs, DefaultCPUs)
	}
	if rep.Release == "" {
		t.Error("no release in the report")
	}
	if len(rep.GuestErrors) > 0 {
		t.Errorf("guest init errors: %q", rep.GuestErrors)
	}
}

// TestRealKernelPanics points rdinit at a missing file, so the kernel looks
// for a root device, finds none and panics.
func TestRealKernelPanics(t *testing.T) {
	image := realImage(t, "KTBUILD_SMOKE_IMAGE")
	rep, err := Run(context.Background(), Options{
		Image: image, CacheDir: testCacheDir, Append: "rdinit=/missing",
		Timeout: 3 * time.Minute,
	})
	if err == nil {
		t.Fatal("Run of a kernel without an init succeeded")
	}
	if !strings.Contains(err.Error(), "panicked") || !strings.Contains(err.Error(), "Kernel panic - not syncing") {
		t.Errorf("error %q does not show the panic", err)
	}
	if rep.Reported {
		t.Error("a report came from a guest whose init never ran")
	}
}

func TestRealKernelWithoutSchedExt(t *testing.T) {
	image := realImage(t, "KTBUILD_SMOKE_NOSCX_IMAGE")
	rep, err := Run(context.Background(), Options{
		Image: image, CacheDir: testCacheDir, Timeout: 3 * time.Minute,
	})
	t.Logf("boot of %s:\n%s", image, rep)
	if err == nil {
		t.Fatal("Run accepted a kernel without sched_ext")
	}
	if !strings.Contains(err.Error(), "CONFIG_SCHED_CLASS_EXT") {
		t.Errorf("error %q does not name CONFIG_SCHED_CLASS_EXT", err)
	}
	if !rep.Reported || rep.SchedExtPresent || rep.SchedExtState != "" {
		t.Errorf("report = %+v, want a report without sched_ext", rep)
	}
}
