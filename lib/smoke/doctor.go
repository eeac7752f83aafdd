package smoke

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Check is one line of Doctor's findings.
type Check struct {
	// Name is the checked item: "qemu", "kvm" or "tcg".
	Name string
	// OK is true when the check passed.
	OK bool
	// Optional is true when smoke boots work without this check passing
	// (KVM is only faster than TCG).
	Optional bool
	// Detail is the finding, such as a version or a QEMU error.
	Detail string
	// Fix is the remedy when OK is false, or "" when there is none.
	Fix string
}

// probeText is the probe guest's output before it ends QEMU.
const probeText = "KTBUILD-PROBE-OK\n"

// probeTimeout bounds one probe boot. Under TCG the probe ends in well
// under a second; a slow host gets plenty of room.
const probeTimeout = 15 * time.Second

// Doctor checks that QEMU for arch ("" = the host's) is installed and which
// accelerators run a guest: it boots a tiny probe kernel under KVM (when
// /dev/kvm opens) and under TCG.
//
// A KVM probe that passes shows that KVM runs guest code, not that every
// kernel boots under it; Run still falls back to TCG when a KVM guest stays
// silent.
func Doctor(ctx context.Context, arch string) []Check {
	m, err := machineFor(arch)
	if err != nil {
		return []Check{{Name: "qemu", Detail: err.Error(), Fix: "use x86_64 or aarch64"}}
	}
	qemu, err := findQEMU(m)
	if err != nil {
		return []Check{{
			Name:   "qemu",
			Detail: m.binary + " not found on PATH",
			Fix:    "apt-get install " + m.pkg,
		}}
	}
	checks := []Check{{Name: "qemu", OK: true, Detail: qemu + " " + qemuVersion(ctx, qemu)}}

	kvm := Check{Name: "kvm", Optional: true}
	if err := kvmUsable(m, "/dev/kvm"); err != nil {
		kvm.Detail = "not usable: " + err.Error()
		kvm.Fix = "smoke boots use tcg, which is slower; load the kvm module and give this user read-write access to /dev/kvm to use kvm"
	} else if detail, err := probe(ctx, m, qemu, "kvm"); err != nil {
		kvm.Detail = "/dev/kvm opens but a test guest did not run: " + err.Error()
		kvm.Fix = "smoke boots fall back to tcg, which is slower; check the host's KVM or nested virtualization support"
	} else {
		kvm.OK = true
		kvm.Detail = detail
	}
	checks = append(checks, kvm)

	tcg := Check{Name: "tcg"}
	if detail, err := probe(ctx, m, qemu, "tcg"); err != nil {
		tcg.Detail = "a test guest did not run: " + err.Error()
		tcg.Fix = "reinstall " + m.pkg + " (apt-get install --reinstall " + m.pkg + ")"
	} else {
		tcg.OK = true
		tcg.Detail = detail
	}
	return append(checks, tcg)
}

// probe boots the multiboot probe under accel and returns how long it took.
// NOTE: the probe kernel is x86 code, so on aarch64 probe reports that it
// cannot check instead of booting anything.
func probe(ctx context.Context, m machine, qemu, accel string) (string, error) {
	if m.arch != "x86_64" {
		return "", fmt.Errorf("no probe guest for %s — run a smoke boot to check", m.arch)
	}
	dir, err := os.MkdirTemp("", "ktbuild-probe-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	img := filepath.Join(dir, "probe.bin")
	if err := os.WriteFile(img, multibootImage(probeText, true), 0o644); err != nil {
		return "", err
	}

	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	res := boot(ctx, qemu, qemuArgs(m, bootArgs{
		accel:     accel,
		kernel:    img,
		cpus:      1,
		memoryMiB: 32,
		extra:     []string{"-device", fmt.Sprintf("isa-debug-exit,iobase=%#x,iosize=0x04", debugExitPort)},
	}), watch{})

	if strings.Contains(res.console, strings.TrimSpace(probeText)) {
		return fmt.Sprintf("a test guest ran in %s", res.duration.Round(time.Millisecond)), nil
	}
	if res.timedOut {
		return "", fmt.Errorf("no output within %s", probeTimeout)
	}
	msg := strings.TrimSpace(res.stderr)
	if msg == "" {
		msg = "no output"
	}
	return "", fmt.Errorf("qemu exited (%v): %s", res.exitErr, strings.ReplaceAll(msg, "\n", "; "))
}

// qemuVersion returns the first line of qemu --version, or "" on failure.
func qemuVersion(ctx context.Context, qemu string) string {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, qemu, "--version")
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return ""
	}
	line, _, _ := strings.Cut(out.String(), "\n")
	return strings.TrimSpace(line)
}

// String returns the check as one line, such as "ok   tcg: a test guest
// ran in 140ms" or "FAIL qemu: ... — apt-get install qemu-system-x86".
func (c Check) String() string {
	status := "ok  "
	switch {
	case !c.OK && c.Optional:
		status = "warn"
	case !c.OK:
		status = "FAIL"
	}
	s := status + " " + c.Name + ": " + c.Detail
	if !c.OK && c.Fix != "" {
		s += " — " + c.Fix
	}
	return s
}
