package smoke

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// These tests boot real QEMU (TCG) with tiny multiboot kernels written by
// multibootImage. Such a kernel prints fixed text on the serial port and
// halts, so Run's timeout, panic and verdict paths run against a real QEMU
// process without a Linux kernel. realkernel_test.go boots real kernels.

func TestRunMissingQEMU(t *testing.T) {
	tests := []struct{ arch, binary, pkg string }{
		{"x86_64", "qemu-system-x86_64", "qemu-system-x86"},
		{"aarch64", "qemu-system-aarch64", "qemu-system-arm"},
	}
	for _, tt := range tests {
		t.Run(tt.arch, func(t *testing.T) {
			t.Setenv("PATH", t.TempDir())
			_, err := Run(context.Background(), Options{Image: writeImage(t, ""), Arch: tt.arch})
			if err == nil {
				t.Fatal("Run without QEMU on PATH succeeded")
			}
			for _, want := range []string{tt.binary, "apt-get install " + tt.pkg} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}

			checks := Doctor(context.Background(), tt.arch)
			if len(checks) != 1 || checks[0].Name != "qemu" || checks[0].OK {
				t.Fatalf("Doctor = %v, want one failed qemu check", checks)
			}
			if checks[0].Fix != "apt-get install "+tt.pkg {
				t.Errorf("Doctor fix = %q, want apt-get install %s", checks[0].Fix, tt.pkg)
			}
		})
	}
}

func TestRunHungGuestTimesOut(t *testing.T) {
	t.Parallel()
	image := writeImage(t, "early line one\r\nearly line two\r\n")
	logPath := filepath.Join(t.TempDir(), "console.log")

	start := time.Now()
	rep, err := Run(context.Background(), Options{
		Image: image, Accel: "tcg", Timeout: 3 * time.Second,
		LogPath: logPath, CacheDir: testCacheDir,
	})
	elapsed := time.Since(start)

	if err == nil {
		t.Fatal("Run of a hung guest succeeded")
	}
	for _, want := range []string{"timed out after 3s", "guest killed", "early line two", image} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if rep.Reported {
		t.Error("report marked as received from a guest that printed none")
	}
	if rep.Accel != "tcg" {
		t.Errorf("Accel = %q, want tcg", rep.Accel)
	}
	// The bound is loose on purpose: it catches a guest left running, not
	// a slow host.
	if elapsed > 30*time.Second {
		t.Errorf("Run took %s with a 3s timeout: the guest was not killed", elapsed)
	}

	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "early line one") {
		t.Errorf("console log %q lacks the guest output", log)
	}
}

func TestRunPanicShowsLines(t *testing.T) {
	t.Parallel()
	image := writeImage(t, "[ 1.0] VFS: Cannot open root device\r\n"+
		"[ 1.1] Kernel panic - not syncing: VFS: Unable to mount root fs\r\n"+
		"[ 1.2] Call Trace:\r\n")

	rep, err := Run(context.Background(), Options{
		Image: image, Accel: "tcg", Timeout: 30 * time.Second, CacheDir: testCacheDir,
	})
	if err == nil {
		t.Fatal("Run of a panicking guest succeeded")
	}
	for _, want := range []string{"panicked", "Cannot open root device", "Kernel panic - not syncing: VFS: Unable to mount root fs", "Call Trace:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "timed out") {
		t.Errorf("panic reported as a timeout: %v", err)
	}
	if !strings.Contains(rep.ConsoleLog, "Kernel panic") {
		t.Errorf("ConsoleLog %q lacks the panic", rep.ConsoleLog)
	}
}

// TestRunPanicNamesOopsAndLog has a guest print the captured console of a
// real oops, so the error must show the oops and RIP lines that sit far
// above the panic, and name the log that holds the rest.
func TestRunPanicNamesOopsAndLog(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("testdata/int3-oops.log")
	if err != nil {
		t.Fatal(err)
	}
	image := writeImage(t, strings.ReplaceAll(string(raw), "\n", "\r\n"))
	logPath := filepath.Join(t.TempDir(), "console.log")

	_, err = Run(context.Background(), Options{
		Image: image, Accel: "tcg", Timeout: 30 * time.Second,
		LogPath: logPath, CacheDir: testCacheDir,
	})
	if err == nil {
		t.Fatal("Run of a panicking guest succeeded")
	}
	for _, want := range []string{"panicked", "Oops: int3", "RIP: 0010:sched_clock_cpu+0x9/0x190", "Fatal exception in interrupt", "full console log: " + logPath} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "smpboot_thread_fn") {
		t.Errorf("console log %s lacks the call trace", logPath)
	}
}

// TestRunReportWithoutSchedExt feeds Run the report line of a kernel without
// sched_ext, printed by a crafted guest. realkernel_test.go boots a real
// kernel without sched_ext when one is given.
func TestRunReportWithoutSchedExt(t *testing.T) {
	t.Parallel()
	image := writeImage(t, "[ 0.0] Linux version 6.1.0-test\r\n"+
		`KTBUILD-SMOKE {"v":1,"release":"6.1.0-test","cpus":2,"sched_ext":false,"sched_ext_state":"","btf":true}`+"\r\n")

	rep, err := Run(context.Background(), Options{
		Image: image, Accel: "tcg", Timeout: 30 * time.Second, CacheDir: testCacheDir,
	})
	if err == nil {
		t.Fatal("Run accepted a kernel without sched_ext")
	}
	if !strings.Contains(err.Error(), "CONFIG_SCHED_CLASS_EXT") {
		t.Errorf("error %q does not name CONFIG_SCHED_CLASS_EXT", err)
	}
	if strings.Contains(err.Error(), "CONFIG_DEBUG_INFO_BTF") {
		t.Errorf("error %q blames BTF, which the guest reported", err)
	}
	if !rep.Reported || rep.Release != "6.1.0-test" || rep.SchedExtPresent || !rep.BTFPresent || rep.CPUs != 2 {
		t.Errorf("report = %+v, want release 6.1.0-test, no sched_ext, BTF, 2 CPUs", rep)
	}
	if rep.Duration <= 0 {
		t.Errorf("Duration = %s, want the time to the report line", rep.Duration)
	}
}

// TestRunAutoFallsBackToTCG makes auto believe KVM is usable (the KVM device
// is a plain file). Whatever the host's real KVM does with the silent guest
// (QEMU fails, or the guest stays quiet), Run must end up on TCG.
func TestRunAutoFallsBackToTCG(t *testing.T) {
	t.Parallel()
	fakeKVM := filepath.Join(t.TempDir(), "kvm")
	if err := os.WriteFile(fakeKVM, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder

	rep, err := Run(context.Background(), Options{
		Image: writeImage(t, ""), Accel: "auto", Timeout: 8 * time.Second,
		ProgressWindow: 2 * time.Second, CacheDir: testCacheDir,
		Stderr: &stderr, devKVM: fakeKVM,
	})
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("error = %v, want a timeout of the silent guest", err)
	}
	if rep.Accel != "tcg" {
		t.Errorf("Accel = %q, want tcg after the fallback", rep.Accel)
	}
	if !strings.HasPrefix(rep.Fallback, "kvm: ") || !strings.HasSuffix(rep.Fallback, "used tcg") {
		t.Errorf("Fallback = %q, want a kvm note ending in used tcg", rep.Fallback)
	}
	if !strings.Contains(stderr.String(), rep.Fallback) {
		t.Errorf("stderr %q does not show the fallback", stderr.String())
	}
}

func TestBootStallsWithoutOutput(t *testing.T) {
	t.Parallel()
	m, _ := machineFor("x86_64")
	qemu, err := findQEMU(m)
	if err != nil {
		t.Fatal(err)
	}
	res := boot(context.Background(), qemu, qemuArgs(m, bootArgs{
		accel: "tcg", kernel: writeImage(t, ""), cpus: 1, memoryMiB: 32,
	}), watch{progressWindow: time.Second})
	if !res.stalled {
		t.Errorf("silent guest not detected as stalled: %+v", res)
	}
	if !res.silent() {
		t.Error("stalled attempt not counted as silent")
	}
	if res.timedOut {
		t.Error("stall reported as a timeout")
	}
}

func TestRunKVMNotUsable(t *testing.T) {
	_, err := Run(context.Background(), Options{
		Image: writeImage(t, ""), Accel: "kvm",
		devKVM: filepath.Join(t.TempDir(), "no-kvm"),
	})
	if err == nil || !strings.Contains(err.Error(), "kvm requested but not usable") {
		t.Errorf("error = %v, want kvm requested but not usable", err)
	}
}

func TestRunBadOptions(t *testing.T) {
	image := writeImage(t, "")
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no image", Options{}, "no kernel image"},
		{"missing image", Options{Image: filepath.Join(t.TempDir(), "bzImage")}, "bzImage"},
		{"image is a dir", Options{Image: t.TempDir()}, "not a regular file"},
		{"unknown accel", Options{Image: image, Accel: "hvf"}, `unknown accel "hvf"`},
		{"unknown arch", Options{Image: image, Arch: "riscv64"}, `unsupported arch "riscv64"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Run(context.Background(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestRunCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(time.Second, cancel)
	_, err := Run(ctx, Options{
		Image: writeImage(t, "booting\r\n"), Accel: "tcg", Timeout: time.Minute, CacheDir: testCacheDir,
	})
	if err == nil || !strings.Contains(err.Error(), "cancelled") {
		t.Errorf("error = %v, want a cancellation", err)
	}
}

func TestDoctorProbesTCG(t *testing.T) {
	t.Parallel()
	checks := Doctor(context.Background(), "x86_64")
	byName := map[string]Check{}
	for _, c := range checks {
		byName[c.Name] = c
	}
	if c := byName["qemu"]; !c.OK || !strings.Contains(c.Detail, "qemu-system-x86_64") {
		t.Errorf("qemu check = %+v", c)
	}
	if c := byName["tcg"]; !c.OK || !strings.Contains(c.Detail, "a test guest ran") {
		t.Errorf("tcg check = %+v", c)
	}
	kvm, ok := byName["kvm"]
	if !ok || !kvm.Optional {
		t.Errorf("kvm check = %+v, want an optional check", kvm)
	}
	if !kvm.OK && kvm.Fix == "" {
		t.Errorf("failed kvm check has no fix: %+v", kvm)
	}
	t.Logf("doctor on this host:\n%s\n%s\n%s", byName["qemu"], kvm, byName["tcg"])
}
