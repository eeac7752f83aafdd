package smoke

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Marker starts the report line the guest init prints on the console; the
// rest of that line is a JSON object. guestinit/main.go holds the same text.
const Marker = "KTBUILD-SMOKE "

// guestReport is the JSON object the guest init prints after Marker.
type guestReport struct {
	Version       int      `json:"v"`
	Release       string   `json:"release"`
	CPUs          int      `json:"cpus"`
	SchedExt      bool     `json:"sched_ext"`
	SchedExtState string   `json:"sched_ext_state"`
	BTF           bool     `json:"btf"`
	Errors        []string `json:"errors"`
}

// Report is the outcome of a smoke boot of a kernel.
type Report struct {
	// SchedExtState is the content of /sys/kernel/sched_ext/state:
	// "disabled" with no BPF scheduler loaded, "enabled" with one, and ""
	// when the file is missing.
	SchedExtState string
	// SchedExtPresent is true when /sys/kernel/sched_ext exists, which
	// needs CONFIG_SCHED_CLASS_EXT=y.
	SchedExtPresent bool
	// BTFPresent is true when /sys/kernel/btf/vmlinux exists, which needs
	// CONFIG_DEBUG_INFO_BTF=y.
	BTFPresent bool
	// Release is the guest's uname -r.
	Release string
	// CPUs is the number of online CPUs the guest saw.
	CPUs int
	// Accel is the QEMU accelerator of the boot that produced the report:
	// "kvm" or "tcg".
	Accel string
	// Fallback is the reason an automatic KVM boot was abandoned for TCG,
	// or "".
	Fallback string
	// GuestErrors lists what the guest init could not do, such as a mount
	// that failed.
	GuestErrors []string
	// Duration is the wall time of the boot that produced the report, from
	// starting QEMU to the report line.
	Duration time.Duration
	// ConsoleLog is the serial console output of that boot.
	ConsoleLog string
	// Reported is true when the guest printed its report line; the other
	// guest fields are zero without it.
	Reported bool
}

// parseReport finds the last complete report line in console output.
func parseReport(console string) (guestReport, bool, error) {
	var last string
	found := false
	for _, line := range strings.Split(console, "\n") {
		if i := strings.Index(line, Marker); i >= 0 {
			last = strings.TrimRight(line[i+len(Marker):], "\r")
			found = true
		}
	}
	if !found {
		return guestReport{}, false, nil
	}
	var g guestReport
	if err := json.Unmarshal([]byte(last), &g); err != nil {
		return guestReport{}, true, fmt.Errorf("smoke: unreadable guest report %q: %w — see the console log", last, err)
	}
	if g.Version != 1 {
		return guestReport{}, true, fmt.Errorf("smoke: guest report version %d, expected 1 — rebuild the guest init", g.Version)
	}
	return g, true, nil
}

// apply copies the guest's findings into r.
func (r *Report) apply(g guestReport) {
	r.Reported = true
	r.SchedExtState = g.SchedExtState
	r.SchedExtPresent = g.SchedExt
	r.BTFPresent = g.BTF
	r.Release = g.Release
	r.CPUs = g.CPUs
	r.GuestErrors = g.Errors
}

// Check returns nil when the report shows a kernel fit for sched_ext tests,
// and otherwise one error naming each missing kernel option.
func (r Report) Check() error {
	if !r.Reported {
		return fmt.Errorf("smoke: the guest printed no report — see the console log")
	}
	var missing []string
	if !r.SchedExtPresent {
		missing = append(missing, "sched_ext (no /sys/kernel/sched_ext: build with CONFIG_SCHED_CLASS_EXT=y, which needs CONFIG_BPF_SYSCALL=y)")
	}
	if !r.BTFPresent {
		missing = append(missing, "BTF (no /sys/kernel/btf/vmlinux: build with CONFIG_DEBUG_INFO_BTF=y, which needs pahole >= 1.16)")
	}
	if len(missing) == 0 {
		return nil
	}

	release := r.Release
	if release == "" {
		release = "(unknown release)"
	}
	msg := fmt.Sprintf("smoke: kernel %s lacks %s", release, strings.Join(missing, " and "))
	if len(r.GuestErrors) > 0 {
		// A failed sysfs mount also hides both directories, so show it.
		msg += "; the guest init also reported: " + strings.Join(r.GuestErrors, "; ")
	}
	return fmt.Errorf("%s", msg)
}

// String returns a few lines for people: what the guest found and how the
// boot went.
func (r Report) String() string {
	var b strings.Builder
	if !r.Reported {
		fmt.Fprintf(&b, "no report from the guest (%s, %s)\n", r.Accel, r.Duration.Round(10*time.Millisecond))
		return b.String()
	}

	state := r.SchedExtState
	switch {
	case !r.SchedExtPresent:
		state = "missing"
	case state == "disabled":
		// The kernel's own word for "built in, no BPF scheduler loaded".
		state = "built in, no scheduler loaded (state: disabled)"
	case state == "enabled":
		state = "built in, a BPF scheduler is loaded (state: enabled)"
	}
	btf := "present"
	if !r.BTFPresent {
		btf = "missing"
	}
	fmt.Fprintf(&b, "kernel:    %s, %d CPUs\n", r.Release, r.CPUs)
	fmt.Fprintf(&b, "sched_ext: %s\n", state)
	fmt.Fprintf(&b, "BTF:       %s\n", btf)
	fmt.Fprintf(&b, "boot:      %s under %s\n", r.Duration.Round(10*time.Millisecond), r.Accel)
	if r.Fallback != "" {
		fmt.Fprintf(&b, "note:      %s\n", r.Fallback)
	}
	for _, e := range r.GuestErrors {
		fmt.Fprintf(&b, "guest:     %s\n", e)
	}
	return b.String()
}
