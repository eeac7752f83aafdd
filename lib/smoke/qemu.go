package smoke

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
)

// machine is the QEMU setup for one guest architecture.
type machine struct {
	arch    string // kernel arch name
	binary  string // QEMU system emulator
	pkg     string // Debian package that ships binary
	board   string // -M value
	console string // kernel console device
}

var machines = map[string]machine{
	"x86_64":  {arch: "x86_64", binary: "qemu-system-x86_64", pkg: "qemu-system-x86", board: "pc", console: "ttyS0"},
	"aarch64": {arch: "aarch64", binary: "qemu-system-aarch64", pkg: "qemu-system-arm", board: "virt", console: "ttyAMA0"},
}

// HostArch returns the kernel arch name of the machine running this code:
// "x86_64" or "aarch64" (or GOARCH for anything else).
func HostArch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	}
	return runtime.GOARCH
}

func machineFor(arch string) (machine, error) {
	switch arch {
	case "", "host":
		arch = HostArch()
	case "amd64":
		arch = "x86_64"
	case "arm64":
		arch = "aarch64"
	}
	m, ok := machines[arch]
	if !ok {
		return machine{}, fmt.Errorf("smoke: unsupported arch %q — use x86_64 or aarch64", arch)
	}
	return m, nil
}

// findQEMU returns the path of m's emulator, or an error that names the
// package and the install command.
func findQEMU(m machine) (string, error) {
	path, err := exec.LookPath(m.binary)
	if err != nil {
		return "", fmt.Errorf("smoke: %s not found on PATH — install it with: apt-get install %s (Debian/Ubuntu)", m.binary, m.pkg)
	}
	return path, nil
}

// kvmUsable reports whether KVM could run a guest of m's arch here: the
// host has the same arch and /dev/kvm opens for reading and writing. It
// does not prove that guests boot; Run watches for that.
func kvmUsable(m machine, devKVM string) error {
	if m.arch != HostArch() {
		return fmt.Errorf("kvm runs only guests of the host arch %s, not %s", HostArch(), m.arch)
	}
	f, err := os.OpenFile(devKVM, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	return f.Close()
}

// tcgAccel is the -accel value for TCG boots: still a multi-CPU guest, but
// its vCPUs take turns on one host thread (checked on QEMU 7.2).
const tcgAccel = "tcg,thread=single"

// bootArgs holds what varies between QEMU invocations of one machine.
type bootArgs struct {
	accel     string
	kernel    string
	initrd    string
	append    string
	cpus      int
	memoryMiB int
	extra     []string
}

// qemuArgs returns the argument list for booting a on m. The guest has no
// network, disk or display, and its serial console is QEMU's stdout; a
// guest reboot ends QEMU (-no-reboot), which panic=-1 turns a panic into.
func qemuArgs(m machine, a bootArgs) []string {
	cpu, accel := "max", a.accel
	switch a.accel {
	case "kvm":
		cpu = "host"
	case "tcg":
		// Multi-threaded TCG can run a stale int3 that the kernel's text
		// patching already removed, and the guest oopses. One host thread
		// for all vCPUs keeps their view of patched code coherent.
		accel = tcgAccel
	}
	args := []string{
		"-M", m.board,
		"-accel", accel,
		"-cpu", cpu,
		"-smp", strconv.Itoa(a.cpus),
		"-m", strconv.Itoa(a.memoryMiB),
		"-nodefaults",
		"-display", "none",
		"-serial", "stdio",
		"-no-reboot",
		"-kernel", a.kernel,
	}
	if a.initrd != "" {
		args = append(args, "-initrd", a.initrd)
	}
	if a.append != "" {
		args = append(args, "-append", a.append)
	}
	return append(args, a.extra...)
}

// kernelCmdline returns the command line for a smoke boot on m, with extra
// (if any) last so it overrides the defaults.
func kernelCmdline(m machine, extra string) string {
	s := "console=" + m.console + " panic=-1 rdinit=/init"
	if extra != "" {
		s += " " + extra
	}
	return s
}
