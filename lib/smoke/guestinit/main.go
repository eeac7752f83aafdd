// Command guestinit is the /init of the smoke-test initramfs. It mounts proc,
// sysfs and devtmpfs, prints one report line on the console and powers the
// guest off.
//
// The host finds the line by its marker prefix; the rest of the line is a
// JSON object. This program uses the standard library only, so the smoke
// package can build it from its embedded source without fetching modules.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// marker starts the report line; lib/smoke looks for the same string.
const marker = "KTBUILD-SMOKE "

// report is the JSON object after the marker. Field names are the wire
// format shared with lib/smoke.
type report struct {
	Version       int      `json:"v"`
	Release       string   `json:"release"`
	CPUs          int      `json:"cpus"`
	SchedExt      bool     `json:"sched_ext"`
	SchedExtState string   `json:"sched_ext_state"`
	BTF           bool     `json:"btf"`
	Errors        []string `json:"errors,omitempty"`
}

const (
	schedExtDir   = "/sys/kernel/sched_ext"
	schedExtState = "/sys/kernel/sched_ext/state"
	btfVmlinux    = "/sys/kernel/btf/vmlinux"
	cpuOnline     = "/sys/devices/system/cpu/online"
)

func main() {
	var r report
	r.Version = 1

	for _, m := range []struct{ source, target, fstype string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
	} {
		if err := mount(m.source, m.target, m.fstype); err != nil {
			r.Errors = append(r.Errors, err.Error())
		}
	}

	// Console level 1 keeps late kernel messages from splitting the report line.
	_, _, _ = syscall.Syscall(syscall.SYS_SYSLOG, 8, 0, 1)

	var uts syscall.Utsname
	if err := syscall.Uname(&uts); err == nil {
		r.Release = cString(uts.Release[:])
	} else {
		r.Errors = append(r.Errors, "uname: "+err.Error())
	}

	r.CPUs = onlineCPUs()

	if fi, err := os.Stat(schedExtDir); err == nil && fi.IsDir() {
		r.SchedExt = true
	}
	if b, err := os.ReadFile(schedExtState); err == nil {
		r.SchedExtState = strings.TrimSpace(string(b))
	} else if r.SchedExt {
		r.Errors = append(r.Errors, err.Error())
	}

	if _, err := os.Stat(btfVmlinux); err == nil {
		r.BTF = true
	}

	line, err := json.Marshal(r)
	if err != nil {
		line = []byte(fmt.Sprintf(`{"v":1,"errors":[%q]}`, err.Error()))
	}
	emit("\n" + marker + string(line) + "\n")

	powerOff()
}

func mount(source, target, fstype string) error {
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	err := syscall.Mount(source, target, fstype, syscall.MS_NOSUID|syscall.MS_NOEXEC, "")
	if err != nil && !errors.Is(err, syscall.EBUSY) {
		return fmt.Errorf("mount %s on %s: %w", fstype, target, err)
	}
	return nil
}

// onlineCPUs parses a cpulist such as "0-3,6"; it falls back to the
// affinity mask when sysfs has no such file.
func onlineCPUs() int {
	b, err := os.ReadFile(cpuOnline)
	if err != nil {
		return runtime.NumCPU()
	}
	n := 0
	for _, part := range strings.Split(strings.TrimSpace(string(b)), ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		first, err1 := strconv.Atoi(lo)
		last := first
		var err2 error
		if isRange {
			last, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || last < first {
			return runtime.NumCPU()
		}
		n += last - first + 1
	}
	return n
}

func cString(b []int8) string {
	var sb strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		sb.WriteByte(byte(c))
	}
	return sb.String()
}

// emit writes to the console the kernel gave us as stdout, and opens
// /dev/console itself when the initramfs had no console node.
func emit(s string) {
	if _, err := os.Stdout.WriteString(s); err == nil {
		return
	}
	if f, err := os.OpenFile("/dev/console", os.O_WRONLY, 0); err == nil {
		_, _ = f.WriteString(s)
		_ = f.Close()
	}
}

// powerOff never returns, because PID 1 exiting makes the kernel panic.
func powerOff() {
	syscall.Sync()
	if err := syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		emit("guestinit: power off failed: " + err.Error() + "\n")
	}
	// A kernel without power-off support still restarts, and QEMU runs with
	// -no-reboot, so a restart ends the guest too.
	_ = syscall.Reboot(syscall.LINUX_REBOOT_CMD_RESTART)
	for {
		time.Sleep(time.Hour)
	}
}
