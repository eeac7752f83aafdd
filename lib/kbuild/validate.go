package kbuild

import (
	"fmt"
	"path/filepath"
	"strings"
)

// requiredOption is a .config option a sched_ext kernel must have as =y,
// with what usually turns it off.
type requiredOption struct {
	Symbol string
	Hint   string
}

// requiredOptions are checked by Validate. The dependencies in the hints
// are those of Linux 6.12's Kconfig files.
var requiredOptions = []requiredOption{
	{"CONFIG_SCHED_CLASS_EXT", "needs BPF_SYSCALL, BPF_JIT and DEBUG_INFO_BTF, and a kernel of 6.12 or later"},
	{"CONFIG_DEBUG_INFO_BTF", "needs pahole 1.16 or later (package dwarves, 1.21 or later for DWARF 5) on PATH when configuring, DEBUG_INFO not NONE, REDUCED or SPLIT, and BPF_SYSCALL"},
	{"CONFIG_BPF_SYSCALL", "set CONFIG_BPF_SYSCALL=y"},
	{"CONFIG_FTRACE", "needs an architecture with TRACING_SUPPORT"},
	{"CONFIG_KPROBE_EVENTS", "needs FTRACE and KPROBES"},
	{"CONFIG_BPF_EVENTS", "needs BPF_SYSCALL, PERF_EVENTS and KPROBE_EVENTS or UPROBE_EVENTS"},
}

// MissingOption is a required option that is not =y.
type MissingOption struct {
	Symbol string
	// Value is the option's value in .config, "n" when unset or absent.
	Value string
	Hint  string
}

// MissingOptionsError lists the required options a .config lacks.
type MissingOptionsError struct {
	ConfigPath string
	Missing    []MissingOption
	ExtraName  string
}

func (e *MissingOptionsError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kbuild: %s lacks %d option(s) a sched_ext kernel needs — fix the cause below and rebuild", e.ConfigPath, len(e.Missing))
	for _, m := range e.Missing {
		fmt.Fprintf(&b, "\n  %s=%s: %s", m.Symbol, m.Value, m.Hint)
	}
	if e.ExtraName != "" {
		fmt.Fprintf(&b, "\n  the extra kconfig %s is the likely cause: look for lines that turn these options or their dependencies off", e.ExtraName)
	}
	return b.String()
}

// Validate checks that dir/.config sets CONFIG_SCHED_CLASS_EXT,
// DEBUG_INFO_BTF, BPF_SYSCALL, FTRACE, KPROBE_EVENTS and BPF_EVENTS to y.
// It returns a *MissingOptionsError listing every one that is not, naming
// extraName as the likely cause when it is not "".
func Validate(dir string, extraName string) error {
	path := filepath.Join(dir, ".config")
	values, exists, err := readConfig(path)
	if err != nil {
		return err
	}
	if !exists {
		return fmt.Errorf("kbuild: %s is missing — configure the tree before validating it", path)
	}

	var missing []MissingOption
	for _, opt := range requiredOptions {
		if value := valueOf(values, opt.Symbol); value != "y" {
			missing = append(missing, MissingOption{Symbol: opt.Symbol, Value: value, Hint: opt.Hint})
		}
	}
	if len(missing) > 0 {
		return &MissingOptionsError{ConfigPath: path, Missing: missing, ExtraName: extraName}
	}
	return nil
}
