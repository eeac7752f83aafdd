package kbuild

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf/btf"
)

// SchedExtKfunc is the sched_ext kfunc whose presence as a BTF function
// CheckBTF takes as proof that the BTF describes sched_ext.
const SchedExtKfunc = "scx_bpf_kick_cpu"

// ErrUnusableBTF marks a vmlinux whose BTF a sched_ext scheduler cannot use.
var ErrUnusableBTF = errors.New("vmlinux BTF unusable for sched_ext")

// CheckBTF checks that vmlinux is an ELF file whose .BTF section parses and
// contains SchedExtKfunc as a function. Errors about the BTF wrap
// ErrUnusableBTF and name the pahole on PATH. An old pahole still builds a
// kernel but can write BTF that lacks kfuncs, so such a kernel should not be
// cached.
func CheckBTF(vmlinux string) error {
	f, err := os.Open(vmlinux)
	if err != nil {
		return fmt.Errorf("kbuild: open vmlinux: %w", err)
	}
	defer f.Close()

	file, err := elf.NewFile(f)
	if err != nil {
		return fmt.Errorf("kbuild: %s is not a readable ELF file: %w — rebuild the kernel", vmlinux, err)
	}
	if file.Section(".BTF") == nil {
		return fmt.Errorf("kbuild: %s has no .BTF section: %w — CONFIG_DEBUG_INFO_BTF was off or pahole did not run; %s", vmlinux, ErrUnusableBTF, paholeAdvice())
	}

	spec, err := btf.LoadSpecFromReader(f)
	if err != nil {
		return fmt.Errorf("kbuild: the BTF in %s cannot be parsed (%v): %w — %s", vmlinux, err, ErrUnusableBTF, paholeAdvice())
	}
	types, err := spec.AnyTypesByName(SchedExtKfunc)
	if err != nil && !errors.Is(err, btf.ErrNotFound) {
		return fmt.Errorf("kbuild: look up %s in the BTF of %s (%v): %w — %s", SchedExtKfunc, vmlinux, err, ErrUnusableBTF, paholeAdvice())
	}
	for _, typ := range types {
		if _, ok := typ.(*btf.Func); ok {
			return nil
		}
	}
	return fmt.Errorf("kbuild: the BTF in %s lacks the sched_ext kfunc %s as a function: %w — check CONFIG_SCHED_CLASS_EXT=y; %s", vmlinux, SchedExtKfunc, ErrUnusableBTF, paholeAdvice())
}

// paholeAdvice names the pahole on PATH, whose age is the usual cause of
// BTF that builds but is unusable.
func paholeAdvice() string {
	version := Host{}.version("pahole")
	if version == "" {
		return "pahole (package dwarves) is not on PATH; install a recent one and rebuild"
	}
	return fmt.Sprintf("pahole %s may be too old for this kernel; install a newer dwarves and rebuild", version)
}
