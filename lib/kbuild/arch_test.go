package kbuild

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("image"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFindImageArchDir(t *testing.T) {
	for arch, rel := range map[string]string{"x86_64": "arch/x86/boot/bzImage", "aarch64": "arch/arm64/boot/Image"} {
		dir := t.TempDir()
		touch(t, filepath.Join(dir, rel))
		touch(t, filepath.Join(dir, ImageName(arch)))
		got, err := FindImage(dir, arch)
		if err != nil || got != filepath.Join(dir, rel) {
			t.Errorf("FindImage(%s) = %q, %v, want %s", arch, got, err, rel)
		}
	}
}

func TestFindImageTreeRoot(t *testing.T) {
	dir := t.TempDir()
	touch(t, filepath.Join(dir, "bzImage"))
	got, err := FindImage(dir, "x86_64")
	if err != nil || got != filepath.Join(dir, "bzImage") {
		t.Errorf("FindImage = %q, %v, want the root bzImage", got, err)
	}
}

func TestFindImageMissing(t *testing.T) {
	dir := t.TempDir()
	_, err := FindImage(dir, "x86_64")
	if err == nil {
		t.Fatal("FindImage found an image in an empty tree")
	}
	for _, want := range []string{filepath.Join(dir, "arch/x86/boot/bzImage"), filepath.Join(dir, "bzImage")} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks the place %s: %v", want, err)
		}
	}
	if _, err := FindImage(dir, "riscv64"); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("FindImage(riscv64) = %v, want an unsupported architecture error", err)
	}
}

func TestFindVmlinux(t *testing.T) {
	dir := t.TempDir()
	if _, ok := FindVmlinux(dir); ok {
		t.Error("FindVmlinux found a vmlinux in an empty tree")
	}
	if err := os.Mkdir(filepath.Join(dir, "vmlinux"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, ok := FindVmlinux(dir); ok {
		t.Error("FindVmlinux accepted a directory")
	}
	other := t.TempDir()
	touch(t, filepath.Join(other, "vmlinux"))
	if path, ok := FindVmlinux(other); !ok || path != filepath.Join(other, "vmlinux") {
		t.Errorf("FindVmlinux = %q, %v", path, ok)
	}
}

func TestHostArchAndImageName(t *testing.T) {
	want := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]
	if want != "" && HostArch() != want {
		t.Errorf("HostArch = %q, want %q", HostArch(), want)
	}
	if ImageName("x86_64") != "bzImage" || ImageName("aarch64") != "Image" {
		t.Errorf("ImageName = %q, %q", ImageName("x86_64"), ImageName("aarch64"))
	}
}
