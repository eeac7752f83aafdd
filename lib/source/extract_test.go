package source

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// tarEntry describes one entry of a tarball built by a test.
type tarEntry struct {
	name     string
	typeflag byte
	body     string
	link     string
	mode     int64
}

var testMtime = time.Date(2024, 11, 17, 22, 4, 5, 0, time.UTC)

func buildTar(t *testing.T, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if e.typeflag == tar.TypeXGlobalHeader {
			// git archive writes the commit id into a global header.
			if err := tw.WriteHeader(&tar.Header{Typeflag: e.typeflag, PAXRecords: map[string]string{"comment": "0123abcd"}}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		hdr := &tar.Header{
			Name:     e.name,
			Typeflag: e.typeflag,
			Linkname: e.link,
			Mode:     e.mode,
			ModTime:  testMtime,
			Format:   tar.FormatPAX,
		}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
			if e.typeflag == tar.TypeDir {
				hdr.Mode = 0o755
			}
		}
		if e.typeflag == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if e.typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// compress compresses data with the named compression; bzip2 has no Go
// encoder, so it uses the bzip2 CLI.
func compress(t *testing.T, data []byte, compression string) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch compression {
	case CompressionNone:
		return data
	case CompressionXZ:
		w, err := xz.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case CompressionGzip:
		w := gzip.NewWriter(&buf)
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case CompressionZstd:
		w, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case CompressionBzip2:
		cmd := exec.Command("bzip2", "-c")
		cmd.Stdin = bytes.NewReader(data)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("bzip2: %v", err)
		}
		return out
	default:
		t.Fatalf("unknown compression %q", compression)
	}
	return buf.Bytes()
}

var suffixOf = map[string]string{
	CompressionXZ:    ".tar.xz",
	CompressionGzip:  ".tar.gz",
	CompressionBzip2: ".tar.bz2",
	CompressionZstd:  ".tar.zst",
}

// kernelTarball is a small tarball shaped like a kernel release.
func kernelTarball(t *testing.T) []byte {
	return buildTar(t, []tarEntry{
		{name: "pax_global_header", typeflag: tar.TypeXGlobalHeader},
		{name: "linux-6.12.3/", typeflag: tar.TypeDir},
		{name: "linux-6.12.3/Makefile", typeflag: tar.TypeReg, body: "VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 3\nEXTRAVERSION =\n"},
		{name: "linux-6.12.3/Kconfig", typeflag: tar.TypeReg, body: "mainmenu \"Linux\"\n"},
		{name: "linux-6.12.3/kernel/", typeflag: tar.TypeDir},
		{name: "linux-6.12.3/kernel/sched/", typeflag: tar.TypeDir},
		{name: "linux-6.12.3/kernel/sched/ext.c", typeflag: tar.TypeReg, body: "int scx;\n"},
		{name: "linux-6.12.3/scripts/run.sh", typeflag: tar.TypeReg, body: "#!/bin/sh\n", mode: 0o755},
		{name: "linux-6.12.3/scripts/ext.c", typeflag: tar.TypeSymlink, link: "../kernel/sched/ext.c"},
		{name: "linux-6.12.3/scripts/ext-hard.c", typeflag: tar.TypeLink, link: "linux-6.12.3/kernel/sched/ext.c"},
		{name: "linux-6.12.3/empty", typeflag: tar.TypeReg},
	})
}

func writeTarball(t *testing.T, dir, compression string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, "linux"+suffixOf[compression])
	if err := os.WriteFile(path, compress(t, data, compression), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// useGoDecoders hides the external decoders for the rest of the test.
func useGoDecoders(t *testing.T) {
	saved := lookPath
	lookPath = func(string) (string, error) { return "", exec.ErrNotFound }
	t.Cleanup(func() { lookPath = saved })
}

// assertEmptyDir fails when parent holds anything, such as a leftover
// .extract-* dir.
func assertEmptyDir(t *testing.T, parent string) {
	t.Helper()
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 0 {
		t.Fatalf("%s holds %v, want nothing left behind", parent, names)
	}
}

func TestExtractFileKernelTree(t *testing.T) {
	for _, decoders := range []string{"system", "go"} {
		for _, compression := range []string{CompressionXZ, CompressionGzip, CompressionBzip2, CompressionZstd} {
			t.Run(decoders+"/"+compression, func(t *testing.T) {
				if decoders == "go" {
					useGoDecoders(t)
				}
				tarball := writeTarball(t, t.TempDir(), compression, kernelTarball(t))
				parent := t.TempDir()
				var lastDone, lastTotal int64
				acq, err := ExtractFile(context.Background(), tarball, parent, func(done, total int64) {
					lastDone, lastTotal = done, total
				})
				if err != nil {
					t.Fatal(err)
				}
				checkKernelTarballTree(t, acq)

				fi, _ := os.Stat(tarball)
				if lastDone != fi.Size() || lastTotal != fi.Size() {
					t.Errorf("progress ended at %d/%d, want %d/%d", lastDone, lastTotal, fi.Size(), fi.Size())
				}
				if err := acq.Cleanup(); err != nil {
					t.Fatal(err)
				}
				assertEmptyDir(t, parent)
			})
		}
	}
}

func checkKernelTarballTree(t *testing.T, acq *Acquired) {
	t.Helper()
	if acq.Version != "6.12.3" || acq.Origin != OriginTarball || !acq.IsTemp || acq.IsGit || acq.Dirty {
		t.Errorf("acquired = %+v, want version 6.12.3 from a temp tarball tree", acq)
	}
	if filepath.Base(acq.Dir) != "linux-6.12.3" || !strings.HasPrefix(filepath.Base(filepath.Dir(acq.Dir)), ".extract-") {
		t.Errorf("Dir = %s, want .extract-*/linux-6.12.3", acq.Dir)
	}
	if acq.Tarball == nil || acq.Tarball.Size == 0 {
		t.Errorf("Tarball = %+v, want the file's identity", acq.Tarball)
	}

	body, err := os.ReadFile(filepath.Join(acq.Dir, "kernel/sched/ext.c"))
	if err != nil || string(body) != "int scx;\n" {
		t.Errorf("kernel/sched/ext.c = %q, %v", body, err)
	}
	fi, err := os.Stat(filepath.Join(acq.Dir, "scripts/run.sh"))
	if err != nil || fi.Mode().Perm()&0o100 == 0 {
		t.Errorf("scripts/run.sh is not executable: %v %v", fi, err)
	}
	if err == nil && !fi.ModTime().Equal(testMtime) {
		t.Errorf("scripts/run.sh mtime = %v, want %v", fi.ModTime(), testMtime)
	}
	if target, err := os.Readlink(filepath.Join(acq.Dir, "scripts/ext.c")); err != nil || target != "../kernel/sched/ext.c" {
		t.Errorf("symlink scripts/ext.c -> %q, %v", target, err)
	}
	a, errA := os.Stat(filepath.Join(acq.Dir, "kernel/sched/ext.c"))
	b, errB := os.Stat(filepath.Join(acq.Dir, "scripts/ext-hard.c"))
	if errA != nil || errB != nil || !os.SameFile(a, b) {
		t.Errorf("scripts/ext-hard.c is not a hard link of kernel/sched/ext.c: %v %v", errA, errB)
	}
	if fi, err := os.Stat(filepath.Join(acq.Dir, "empty")); err != nil || fi.Size() != 0 {
		t.Errorf("empty file: %v %v", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(acq.Dir, "kernel")); err != nil || !fi.ModTime().Equal(testMtime) {
		t.Errorf("kernel/ mtime: %v %v, want %v", fi, err, testMtime)
	}
}

func TestExtractHostile(t *testing.T) {
	cases := []struct {
		name    string
		entries []tarEntry
		entry   string // the entry the error must name
	}{
		{"dotdot", []tarEntry{
			{name: "linux/", typeflag: tar.TypeDir},
			{name: "../outside/evil", typeflag: tar.TypeReg, body: "x"},
		}, "../outside/evil"},
		{"inner dotdot", []tarEntry{
			{name: "linux/../../outside/evil", typeflag: tar.TypeReg, body: "x"},
		}, "linux/../../outside/evil"},
		{"absolute", []tarEntry{
			{name: "/OUTSIDE/evil", typeflag: tar.TypeReg, body: "x"},
		}, "/OUTSIDE/evil"},
		{"symlink absolute", []tarEntry{
			{name: "linux/", typeflag: tar.TypeDir},
			{name: "linux/l", typeflag: tar.TypeSymlink, link: "OUTSIDE"},
			{name: "linux/l/evil", typeflag: tar.TypeReg, body: "x"},
		}, "linux/l"},
		{"symlink up and file through it", []tarEntry{
			{name: "linux/", typeflag: tar.TypeDir},
			{name: "linux/l", typeflag: tar.TypeSymlink, link: "../../outside"},
			{name: "linux/l/evil", typeflag: tar.TypeReg, body: "x"},
		}, "linux/l"},
		{"file through in-tree symlink", []tarEntry{
			{name: "linux/", typeflag: tar.TypeDir},
			{name: "linux/d/", typeflag: tar.TypeDir},
			{name: "linux/l", typeflag: tar.TypeSymlink, link: "d"},
			{name: "linux/l/evil", typeflag: tar.TypeReg, body: "x"},
		}, "linux/l/evil"},
		{"symlink chain", []tarEntry{
			{name: "linux/", typeflag: tar.TypeDir},
			{name: "s", typeflag: tar.TypeSymlink, link: "."},
			{name: "a", typeflag: tar.TypeSymlink, link: "s/.."},
		}, "a"},
		{"hard link absolute", []tarEntry{
			{name: "linux/", typeflag: tar.TypeDir},
			{name: "linux/h", typeflag: tar.TypeLink, link: "OUTSIDE/target"},
		}, "linux/h"},
		{"hard link up", []tarEntry{
			{name: "linux/", typeflag: tar.TypeDir},
			{name: "linux/h", typeflag: tar.TypeLink, link: "../outside/target"},
		}, "linux/h"},
		{"hard link to symlink", []tarEntry{
			{name: "linux/", typeflag: tar.TypeDir},
			{name: "linux/l", typeflag: tar.TypeSymlink, link: "x"},
			{name: "linux/h", typeflag: tar.TypeLink, link: "linux/l"},
		}, "linux/h"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base := t.TempDir()
			outside := filepath.Join(base, "outside")
			if err := os.MkdirAll(outside, 0o755); err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(outside, "target")
			writeFile(t, target, "keep")
			parent := filepath.Join(base, "cache", "tmp")
			if err := os.MkdirAll(parent, 0o755); err != nil {
				t.Fatal(err)
			}
			// Absolute names point into this test's own dir, never at /.
			entries := append([]tarEntry(nil), c.entries...)
			for i := range entries {
				entries[i].name = strings.ReplaceAll(entries[i].name, "/OUTSIDE", outside)
				entries[i].link = strings.ReplaceAll(entries[i].link, "OUTSIDE", outside)
			}
			wantEntry := strings.ReplaceAll(c.entry, "/OUTSIDE", outside)

			data := buildTar(t, entries)
			dir, err := Extract(context.Background(), bytes.NewReader(data), "none", parent)
			if err == nil {
				t.Fatalf("Extract = %s, nil; want the tarball rejected", dir)
			}
			t.Logf("error: %v", err)
			if !errors.Is(err, errUnsafeEntry) {
				t.Errorf("error %q is not an unsafe-entry error", err)
			}
			if !strings.Contains(err.Error(), `"`+wantEntry+`"`) {
				t.Errorf("error %q does not name entry %q", err, wantEntry)
			}
			assertEmptyDir(t, parent)
			if names, _ := filepath.Glob(filepath.Join(outside, "*")); len(names) != 1 {
				t.Errorf("outside dir holds %v, want only the original target", names)
			}
			if names, _ := filepath.Glob(filepath.Join(base, "cache", "*")); len(names) != 1 {
				t.Errorf("cache dir holds %v, want only tmp", names)
			}
			if body, _ := os.ReadFile(target); string(body) != "keep" {
				t.Errorf("outside target changed to %q", body)
			}
		})
	}
}

func TestExtractTruncated(t *testing.T) {
	for _, decoders := range []string{"system", "go"} {
		for _, compression := range []string{CompressionXZ, CompressionGzip} {
			t.Run(decoders+"/"+compression, func(t *testing.T) {
				if decoders == "go" {
					useGoDecoders(t)
				}
				data := compress(t, largeTarball(t), compression)
				tarball := filepath.Join(t.TempDir(), "linux"+suffixOf[compression])
				if err := os.WriteFile(tarball, data[:len(data)/2], 0o644); err != nil {
					t.Fatal(err)
				}
				parent := t.TempDir()
				acq, err := ExtractFile(context.Background(), tarball, parent, nil)
				if err == nil {
					t.Fatalf("ExtractFile of a truncated tarball = %+v, nil", acq)
				}
				t.Logf("error: %v", err)
				if !strings.Contains(err.Error(), "truncated or corrupt") || !strings.Contains(err.Error(), tarball) {
					t.Errorf("error %q does not say the tarball %s is truncated or corrupt", err, tarball)
				}
				assertEmptyDir(t, parent)
			})
		}
	}
}

// largeTarball is a tarball of many incompressible-enough files, so that
// half of its compressed form ends in the middle of the entries.
func largeTarball(t *testing.T) []byte {
	entries := []tarEntry{{name: "linux/", typeflag: tar.TypeDir}}
	seed := uint32(1)
	for i := range 200 {
		var b strings.Builder
		for range 500 {
			seed = seed*1664525 + 1013904223
			b.WriteByte(byte('a' + seed>>27))
		}
		entries = append(entries, tarEntry{name: "linux/f" + string(rune('a'+i%26)) + "/" + strings.Repeat("x", i%7) + string(rune('0'+i%10)) + ".c", typeflag: tar.TypeReg, body: b.String()})
	}
	return buildTar(t, entries)
}

func TestExtractCorrupt(t *testing.T) {
	for _, compression := range []string{CompressionXZ, CompressionGzip, CompressionBzip2, CompressionZstd} {
		t.Run(compression, func(t *testing.T) {
			parent := t.TempDir()
			garbage := bytes.Repeat([]byte("not a tarball "), 100)
			_, err := Extract(context.Background(), bytes.NewReader(garbage), compression, parent)
			if err == nil || !strings.Contains(err.Error(), "truncated or corrupt") {
				t.Errorf("Extract of garbage: err = %v, want a corrupt-tarball error", err)
			}
			assertEmptyDir(t, parent)
		})
	}
}

func TestExtractMultipleTopLevel(t *testing.T) {
	data := buildTar(t, []tarEntry{
		{name: "./", typeflag: tar.TypeDir},
		{name: "./Makefile", typeflag: tar.TypeReg, body: "VERSION = 6\nPATCHLEVEL = 1\n"},
		{name: "./Kconfig", typeflag: tar.TypeReg, body: "\n"},
		{name: "./kernel/fork.c", typeflag: tar.TypeReg, body: "int f;\n"},
		{name: "./link", typeflag: tar.TypeSymlink, link: "kernel/fork.c"},
	})
	parent := t.TempDir()
	dir, err := Extract(context.Background(), bytes.NewReader(data), "none", parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Makefile", "Kconfig", "kernel/fork.c", "link"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s missing from the gathered tree: %v", name, err)
		}
	}
	if v, err := ReadMakefileVersion(dir); err != nil || v != "6.1" {
		t.Errorf("version = %q, %v", v, err)
	}
	if err := RemoveExtracted(dir); err != nil {
		t.Fatal(err)
	}
	assertEmptyDir(t, parent)
}

func TestExtractEmpty(t *testing.T) {
	parent := t.TempDir()
	data := buildTar(t, nil)
	if _, err := Extract(context.Background(), bytes.NewReader(data), "none", parent); err == nil {
		t.Fatal("Extract of an empty tarball returned no error")
	}
	assertEmptyDir(t, parent)
}

func TestExtractDuplicateEntry(t *testing.T) {
	data := buildTar(t, []tarEntry{
		{name: "linux/a", typeflag: tar.TypeReg, body: "first"},
		{name: "linux/a", typeflag: tar.TypeReg, body: "second, longer"},
		{name: "linux/l", typeflag: tar.TypeSymlink, link: "a"},
		{name: "linux/l", typeflag: tar.TypeReg, body: "file now"},
	})
	parent := t.TempDir()
	dir, err := Extract(context.Background(), bytes.NewReader(data), "none", parent)
	if err != nil {
		t.Fatal(err)
	}
	defer RemoveExtracted(dir)
	if body, _ := os.ReadFile(filepath.Join(dir, "a")); string(body) != "second, longer" {
		t.Errorf("a = %q, want the later entry", body)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "l")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("l = %v, %v; want a regular file", fi, err)
	}
}

func TestExtractDirectoryReplaced(t *testing.T) {
	data := buildTar(t, []tarEntry{
		{name: "linux/d/", typeflag: tar.TypeDir},
		{name: "linux/d", typeflag: tar.TypeReg, body: "x"},
	})
	parent := t.TempDir()
	if _, err := Extract(context.Background(), bytes.NewReader(data), "none", parent); err == nil || !strings.Contains(err.Error(), "linux/d") {
		t.Fatalf("err = %v, want an error naming linux/d", err)
	}
	assertEmptyDir(t, parent)
}

func TestExtractDeviceRejected(t *testing.T) {
	data := buildTar(t, []tarEntry{
		{name: "linux/", typeflag: tar.TypeDir},
		{name: "linux/null", typeflag: tar.TypeChar},
	})
	parent := t.TempDir()
	if _, err := Extract(context.Background(), bytes.NewReader(data), "none", parent); err == nil || !strings.Contains(err.Error(), "linux/null") {
		t.Fatalf("err = %v, want an error naming linux/null", err)
	}
	assertEmptyDir(t, parent)
}

func TestExtractLargeFile(t *testing.T) {
	body := strings.Repeat("0123456789abcdef", (maxBufferedFile+4096)/16)
	data := buildTar(t, []tarEntry{
		{name: "linux/big", typeflag: tar.TypeReg, body: body},
		{name: "linux/small", typeflag: tar.TypeReg, body: "s"},
	})
	parent := t.TempDir()
	dir, err := Extract(context.Background(), bytes.NewReader(compress(t, data, CompressionGzip)), "gz", parent)
	if err != nil {
		t.Fatal(err)
	}
	defer RemoveExtracted(dir)
	got, err := os.ReadFile(filepath.Join(dir, "big"))
	if err != nil || string(got) != body {
		t.Fatalf("big file: %d bytes, %v; want %d bytes intact", len(got), err, len(body))
	}
	fi, _ := os.Stat(filepath.Join(dir, "big"))
	if !fi.ModTime().Equal(testMtime) {
		t.Errorf("big file mtime = %v, want %v", fi.ModTime(), testMtime)
	}
}

func TestExtractCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	parent := t.TempDir()
	data := compress(t, kernelTarball(t), CompressionXZ)
	if _, err := Extract(ctx, bytes.NewReader(data), "xz", parent); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	assertEmptyDir(t, parent)
}

func TestExtractUnknownCompression(t *testing.T) {
	if _, err := Extract(context.Background(), strings.NewReader(""), "lz4", t.TempDir()); err == nil || !strings.Contains(err.Error(), "lz4") {
		t.Fatalf("err = %v, want an error naming lz4", err)
	}
}

func TestExtractFileNotATarball(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "linux.zip")
	writeFile(t, path, "PK")
	if _, err := ExtractFile(context.Background(), path, dir, nil); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want an error naming %s", err, path)
	}
	missing := filepath.Join(dir, "missing.tar.xz")
	if _, err := ExtractFile(context.Background(), missing, dir, nil); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want not-exist", err)
	}
}

func TestExtractFileNotKernel(t *testing.T) {
	data := buildTar(t, []tarEntry{{name: "project/README", typeflag: tar.TypeReg, body: "hi"}})
	tarball := writeTarball(t, t.TempDir(), CompressionGzip, data)
	parent := t.TempDir()
	_, err := ExtractFile(context.Background(), tarball, parent, nil)
	if err == nil || !strings.Contains(err.Error(), "no kernel source tree") {
		t.Fatalf("err = %v, want a no-kernel-tree error", err)
	}
	if !strings.Contains(err.Error(), "directory project/ has no Makefile and Kconfig (it holds README)") {
		t.Errorf("err = %v, want it to name project/ and its content", err)
	}
	assertEmptyDir(t, parent)
}

func TestExtractFileTwoTopDirsNamed(t *testing.T) {
	data := buildTar(t, []tarEntry{
		{name: "linux-6.12/Makefile", typeflag: tar.TypeReg, body: "VERSION = 6\n"},
		{name: "linux-6.12/Kconfig", typeflag: tar.TypeReg, body: "\n"},
		{name: "patches/0001-fix.patch", typeflag: tar.TypeReg, body: "diff\n"},
	})
	tarball := writeTarball(t, t.TempDir(), CompressionGzip, data)
	parent := t.TempDir()
	_, err := ExtractFile(context.Background(), tarball, parent, nil)
	if err == nil {
		t.Fatal("a tarball with two top-level directories was taken as a kernel tree")
	}
	for _, want := range []string{"linux-6.12/", "patches/", "neither Makefile and Kconfig nor a single directory"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	assertEmptyDir(t, parent)
}

func TestExtractHardLinkToItself(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "linux", "Makefile"), "VERSION = 6\nPATCHLEVEL = 12\n")
	writeFile(t, filepath.Join(src, "linux", "Kconfig"), "\n")
	tarball := filepath.Join(t.TempDir(), "linux.tar.gz")
	// GNU tar stores the second Makefile as a hard link to the first.
	cmd := exec.Command("tar", "czf", tarball, "-C", src, "linux", "linux/Makefile")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	acq, err := ExtractFile(context.Background(), tarball, t.TempDir(), nil)
	if err != nil {
		t.Fatalf("extract a tarball whose file links to itself: %v", err)
	}
	defer acq.Cleanup()
	if acq.Version != "6.12" {
		t.Errorf("version %q, want 6.12", acq.Version)
	}
	data, err := os.ReadFile(filepath.Join(acq.Dir, "Makefile"))
	if err != nil || !strings.HasPrefix(string(data), "VERSION = 6") {
		t.Errorf("Makefile after extraction: %q, %v", data, err)
	}
}

// An entry below a file fails in the middle of extraction, after files
// were written; the temp dir must still go.
func TestExtractWriteFailureCleansUp(t *testing.T) {
	parent := t.TempDir()
	data := buildTar(t, []tarEntry{
		{name: "linux/a", typeflag: tar.TypeReg, body: "x"},
		{name: "linux/a/b", typeflag: tar.TypeReg, body: "y"},
	})
	_, err := Extract(context.Background(), bytes.NewReader(data), "none", parent)
	if err == nil || !strings.Contains(err.Error(), "linux/a") {
		t.Fatalf("err = %v, want an error naming linux/a", err)
	}
	if strings.Contains(err.Error(), "truncated") {
		t.Errorf("error %q blames the tarball's data for a tree shape problem", err)
	}
	assertEmptyDir(t, parent)
}

func TestIsTarball(t *testing.T) {
	cases := map[string]string{
		"linux-6.12.tar.xz":                 CompressionXZ,
		"/usr/src/linux-source-6.12.tar.xz": CompressionXZ,
		"a.tar.gz":                          CompressionGzip,
		"a.tar.bz2":                         CompressionBzip2,
		"a.tar.zst":                         CompressionZstd,
		"a.tar":                             "",
		"a.xz":                              "",
		"linux":                             "",
		"a.tar.xz.sig":                      "",
	}
	for path, want := range cases {
		if got := TarballCompression(path); got != want {
			t.Errorf("TarballCompression(%q) = %q, want %q", path, got, want)
		}
		if IsTarball(path) != (want != "") {
			t.Errorf("IsTarball(%q) = %v", path, !(want != ""))
		}
	}
}

func TestDecoderStderrInError(t *testing.T) {
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("xz is not installed")
	}
	parent := t.TempDir()
	_, err := Extract(context.Background(), strings.NewReader("garbage"), "xz", parent)
	if err == nil || !strings.Contains(err.Error(), "xz:") {
		t.Fatalf("err = %v, want the xz message", err)
	}
}
