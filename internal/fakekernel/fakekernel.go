// Package fakekernel writes a tiny fake Linux kernel tree for tests.
//
// The tree's Makefile handles defconfig, olddefconfig, mrproper,
// compile_commands.json, kernelversion and the default build target with
// GNU make, sh and awk alone, and a whole build takes well under a second.
// The default target prints kbuild-style "  CC      kernel/fork.o" lines,
// writes arch/x86/boot/bzImage and copies a real x86_64 ELF vmlinux (with
// .symtab, .debug_* and a .BTF holding scx_bpf_kick_cpu) into the tree.
//
// olddefconfig keeps the last line for each symbol, turns
// CONFIG_SCHED_CLASS_EXT off unless CONFIG_BPF_SYSCALL=y, and turns
// CONFIG_FAKE_CHILD off unless CONFIG_FAKE_PARENT=y, so tests can see a
// fragment line dropped for an unmet dependency.
//
// The default target reads these environment variables:
//
//	FAKE_KERNEL_DELAY=seconds      sleep that long (a decimal) mid-build
//	FAKE_KERNEL_FAIL=1             print a compiler error and exit 2
//	FAKE_KERNEL_LINGER=path        leave a "sleep 60" holding make's output
//	                               open and write its pid to path
//	FAKE_KERNEL_CHILD_STATUS=path  copy a child's /proc/self/status to path
package fakekernel

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Options selects variants of the fake tree.
type Options struct {
	// Delay is how long the default target sleeps mid-build. The
	// FAKE_KERNEL_DELAY environment variable overrides it.
	Delay time.Duration
	// NoSchedExt builds a tree whose olddefconfig never enables
	// CONFIG_SCHED_CLASS_EXT and whose vmlinux BTF lacks the sched_ext kfuncs.
	NoSchedExt bool
}

// Objects is the number of kbuild object lines (CC, AS, AR and LD) one
// successful build of the fake tree prints.
const Objects = 14

// Write creates the fake tree in dir, which may already exist. It fails the
// test when a file cannot be written or the vmlinux cannot be built.
func Write(t testing.TB, dir string, opts Options) {
	t.Helper()

	delay := strconv.FormatFloat(opts.Delay.Seconds(), 'f', -1, 64)
	noSchedExt := "0"
	if opts.NoSchedExt {
		noSchedExt = "1"
	}
	makefile := strings.NewReplacer("@DELAY@", delay, "@NO_SCHED_EXT@", noSchedExt).Replace(makefileText)

	files := map[string][]byte{
		"Makefile":               []byte(makefile),
		"Kconfig":                []byte(kconfigText),
		".fake/olddefconfig.awk": []byte(resolveAWK),
		".fake/vmlinux":          Vmlinux(t, opts.NoSchedExt),
		"init/main.c":            []byte("void start_kernel(void) {}\n"),
		"kernel/sched/ext.c":     []byte("void scx_bpf_kick_cpu(int cpu, unsigned long long flags) {}\n"),
	}
	for name, data := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatalf("fakekernel: %v", err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatalf("fakekernel: %v", err)
		}
	}
}

// New writes a fake tree into a fresh t.TempDir and returns its path.
func New(t testing.TB, opts Options) string {
	t.Helper()
	dir := t.TempDir()
	Write(t, dir, opts)
	return dir
}

// CompileCount returns how many times the default target has finished a
// build in dir, read from the .fake-compiles counter file. It returns 0 when
// that file is missing.
func CompileCount(dir string) int {
	data, err := os.ReadFile(filepath.Join(dir, ".fake-compiles"))
	if err != nil {
		return 0
	}
	return bytes.Count(data, []byte("\n"))
}
