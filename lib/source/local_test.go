package source

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const kernelMakefile = "# SPDX-License-Identifier: GPL-2.0\nVERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 0\nEXTRAVERSION =\nNAME = Baby Opossum Posse\n"

// newKernelDir writes a directory with the two files that mark a kernel
// tree.
func newKernelDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "Makefile"), kernelMakefile)
	writeFile(t, filepath.Join(dir, "Kconfig"), "mainmenu \"Linux\"\n")
	return dir
}

func TestOpenLocalMissingPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no-such-tree")
	_, err := OpenLocal(path)
	if err == nil {
		t.Fatal("OpenLocal of a missing path returned no error")
	}
	for _, want := range []string{path, "does not exist", "tarball", "version"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestOpenLocalFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "Makefile")
	writeFile(t, path, kernelMakefile)
	_, err := OpenLocal(path)
	if err == nil || !strings.Contains(err.Error(), "not a kernel source tree") || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want a not-a-kernel-tree error naming %s", err, path)
	}
}

func TestOpenLocalTarballPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "linux-6.12.tar.xz")
	writeFile(t, path, "")
	_, err := OpenLocal(path)
	if err == nil || !strings.Contains(err.Error(), "tarball") {
		t.Fatalf("err = %v, want an error saying the path is a tarball", err)
	}
}

func TestOpenLocalNoKconfig(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "Makefile"), kernelMakefile)
	_, err := OpenLocal(dir)
	if err == nil {
		t.Fatal("OpenLocal of a tree without Kconfig returned no error")
	}
	for _, want := range []string{dir, "not a kernel source tree", "no Kconfig", "Makefile and Kconfig"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestOpenLocalNoMakefile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "Kconfig"), "\n")
	if _, err := OpenLocal(dir); err == nil || !strings.Contains(err.Error(), "no Makefile") {
		t.Fatalf("err = %v, want an error saying Makefile is missing", err)
	}
}

func TestOpenLocalEmptyPath(t *testing.T) {
	if _, err := OpenLocal(""); err == nil {
		t.Fatal("OpenLocal(\"\") returned no error")
	}
}

func TestOpenLocalNonGit(t *testing.T) {
	dir := newKernelDir(t)
	link := filepath.Join(t.TempDir(), "linux")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	acq, err := OpenLocal(link)
	if err != nil {
		t.Fatal(err)
	}
	canonical, _ := filepath.EvalSymlinks(dir)
	if acq.Dir != canonical || acq.LocalPath != canonical {
		t.Errorf("Dir = %q, LocalPath = %q; want the canonical path %q", acq.Dir, acq.LocalPath, canonical)
	}
	if acq.Version != "6.12.0" || acq.Origin != OriginLocal || acq.IsTemp {
		t.Errorf("acquired = %+v, want local 6.12.0", acq)
	}
	if acq.IsGit || !acq.Dirty || acq.GitHash != "" {
		t.Errorf("acquired = %+v, want a non-git dirty tree", acq)
	}
	if err := acq.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("Cleanup removed a local tree: %v", err)
	}
}

func TestOpenLocalGit(t *testing.T) {
	repo := newRepo(t)
	acq, err := OpenLocal(repo)
	if err != nil {
		t.Fatal(err)
	}
	head := git(t, repo, "rev-parse", "HEAD")
	if !acq.IsGit || acq.Dirty || acq.GitHash != head[:7] {
		t.Fatalf("acquired = %+v, want clean git tree at %s", acq, head[:7])
	}
}

func TestOpenLocalBrokenHead(t *testing.T) {
	repo := newRepo(t)
	if err := os.WriteFile(filepath.Join(repo, ".git/HEAD"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenLocal(repo); err == nil || !strings.Contains(err.Error(), "HEAD") {
		t.Fatalf("err = %v, want an error about HEAD", err)
	}
}

func TestReadMakefileVersion(t *testing.T) {
	cases := []struct {
		name, makefile, want string
	}{
		{"release", kernelMakefile, "6.12.0"},
		{"stable", "VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 118\nEXTRAVERSION =\n", "6.12.118"},
		{"rc", "VERSION = 6\nPATCHLEVEL = 13\nSUBLEVEL = 0\nEXTRAVERSION = -rc3\n", "6.13.0-rc3"},
		{"no sublevel", "VERSION = 2\nPATCHLEVEL = 6\n", "2.6"},
		{"empty sublevel", "VERSION = 3\nPATCHLEVEL = 0\nSUBLEVEL =\nEXTRAVERSION = -custom\n", "3.0-custom"},
		{"tabs and comments", "VERSION\t=\t6 # major\nPATCHLEVEL\t=\t1\nSUBLEVEL = 2\t# minor\n", "6.1.2"},
		{"colon equals", "VERSION := 6\nPATCHLEVEL := 6\nSUBLEVEL := 7\n", "6.6.7"},
		{"first assignment wins", "VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 1\nEXTRAVERSION =\nVERSION = 9\n", "6.12.1"},
		{"recipe lines ignored", "all:\n\tVERSION = 9\nVERSION = 5\nPATCHLEVEL = 4\n", "5.4"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "Makefile"), c.makefile)
			got, err := ReadMakefileVersion(dir)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("version = %q, want %q", got, c.want)
			}
		})
	}
}

func TestReadMakefileVersionErrors(t *testing.T) {
	cases := []struct {
		name, makefile, mention string
	}{
		{"no version", "PATCHLEVEL = 12\n", "no VERSION"},
		{"no patchlevel", "VERSION = 6\n", "no PATCHLEVEL"},
		{"empty version", "VERSION =\nPATCHLEVEL = 1\n", "no VERSION"},
		{"not a number", "VERSION = six\nPATCHLEVEL = 1\n", "not a number"},
		{"not a kernel", "all:\n\techo hi\n", "no VERSION"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "Makefile"), c.makefile)
			_, err := ReadMakefileVersion(dir)
			if err == nil || !strings.Contains(err.Error(), c.mention) {
				t.Fatalf("err = %v, want one mentioning %q", err, c.mention)
			}
		})
	}

	if _, err := ReadMakefileVersion(t.TempDir()); err == nil {
		t.Fatal("ReadMakefileVersion without a Makefile returned no error")
	}
}

func TestAcquiredCleanupExtracted(t *testing.T) {
	root := t.TempDir()
	tmp := filepath.Join(root, ".extract-1")
	dir := filepath.Join(tmp, "linux")
	writeFile(t, filepath.Join(dir, "Makefile"), kernelMakefile)
	acq := &Acquired{Dir: dir, IsTemp: true}
	if err := acq.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatalf("temp root still exists after Cleanup: %v", err)
	}
	if err := acq.Cleanup(); err != nil {
		t.Fatalf("second Cleanup: %v", err)
	}
}

func TestAcquiredCleanupClone(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "clone-1")
	writeFile(t, filepath.Join(dir, "Makefile"), kernelMakefile)
	acq := &Acquired{Dir: dir, IsTemp: true}
	if err := acq.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("clone still exists after Cleanup: %v", err)
	}
	if _, err := os.Stat(root); err != nil {
		t.Fatalf("Cleanup removed the clone's parent: %v", err)
	}
}

func TestOpenExtractedNotKernel(t *testing.T) {
	root := t.TempDir()
	tmp := filepath.Join(root, ".extract-2")
	dir := filepath.Join(tmp, "project")
	writeFile(t, filepath.Join(dir, "README"), "hi\n")
	if _, err := OpenExtracted(dir); err == nil || !strings.Contains(err.Error(), "no kernel source tree") {
		t.Fatalf("err = %v, want a no-kernel-tree error", err)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatalf("OpenExtracted left the rejected tree behind: %v", err)
	}
}
