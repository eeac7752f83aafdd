package kbuild

import (
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ktstr/ktbuild/internal/fakekernel"
)

func writeVmlinux(t *testing.T, noSchedExt bool) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vmlinux")
	if err := os.WriteFile(path, fakekernel.Vmlinux(t, noSchedExt), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheckBTFAccepts(t *testing.T) {
	if err := CheckBTF(writeVmlinux(t, false)); err != nil {
		t.Errorf("CheckBTF: %v", err)
	}
}

func TestCheckBTFWithoutSchedExt(t *testing.T) {
	err := CheckBTF(writeVmlinux(t, true))
	if !errors.Is(err, ErrUnusableBTF) {
		t.Fatalf("CheckBTF = %v, want ErrUnusableBTF", err)
	}
	for _, want := range []string{"lacks the sched_ext kfunc scx_bpf_kick_cpu", "pahole"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func TestCheckBTFNotELF(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vmlinux")
	if err := os.WriteFile(path, []byte("not an ELF file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := CheckBTF(path)
	if err == nil || !strings.Contains(err.Error(), "is not a readable ELF file") {
		t.Errorf("CheckBTF = %v, want a not-ELF error", err)
	}
}

func TestCheckBTFMissingSection(t *testing.T) {
	path := writeVmlinux(t, false)
	if out, err := exec.Command("objcopy", "--remove-section=.BTF", path).CombinedOutput(); err != nil {
		t.Fatalf("objcopy: %v\n%s", err, out)
	}
	err := CheckBTF(path)
	if !errors.Is(err, ErrUnusableBTF) || !strings.Contains(err.Error(), "has no .BTF section") {
		t.Errorf("CheckBTF = %v, want a missing .BTF error", err)
	}
}

func TestCheckBTFCorrupt(t *testing.T) {
	path := writeVmlinux(t, false)
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	offset := int64(f.Section(".BTF").Offset)
	f.Close()

	// Overwrite the BTF magic (0xeb9f) so the section no longer parses.
	file, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := file.WriteAt([]byte{0, 0}, offset); err != nil {
		t.Fatal(err)
	}
	file.Close()

	err = CheckBTF(path)
	if !errors.Is(err, ErrUnusableBTF) || !strings.Contains(err.Error(), "cannot be parsed") {
		t.Errorf("CheckBTF = %v, want an unparseable BTF error", err)
	}
}

func TestCheckBTFMissingFile(t *testing.T) {
	err := CheckBTF(filepath.Join(t.TempDir(), "vmlinux"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("CheckBTF = %v, want a not-exist error", err)
	}
}

// TestCheckBTFRealKernel checks a real vmlinux when KTBUILD_REAL_VMLINUX is
// set, to its path or to 1 for /var/tmp/ref/linux-source-6.12/vmlinux.
func TestCheckBTFRealKernel(t *testing.T) {
	path := os.Getenv("KTBUILD_REAL_VMLINUX")
	if path == "" {
		t.Skip("set KTBUILD_REAL_VMLINUX to check a real kernel's BTF")
	}
	if path == "1" {
		path = "/var/tmp/ref/linux-source-6.12/vmlinux"
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("KTBUILD_REAL_VMLINUX: %v", err)
	}
	if err := CheckBTF(path); err != nil {
		t.Errorf("CheckBTF(%s): %v", path, err)
	}
}
