package smoke

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// cpioMember is one entry read back by readNewc.
type cpioMember struct {
	name      string
	ino       uint32
	mode      uint32
	nlink     uint32
	mtime     uint32
	rdevMajor uint32
	rdevMinor uint32
	data      []byte
}

// readNewc parses a cpio "newc" archive independently of the writer: it
// checks the magic, the 4-byte alignment of names and bodies, and that the
// archive ends with TRAILER!!! and nothing but padding after it.
func readNewc(b []byte) ([]cpioMember, error) {
	var out []cpioMember
	off := 0
	align := func(n int) int { return (n + 3) &^ 3 }
	for {
		if off+110 > len(b) {
			return nil, fmt.Errorf("truncated header at %d", off)
		}
		h := b[off : off+110]
		if string(h[:6]) != "070701" {
			return nil, fmt.Errorf("bad magic %q at %d", h[:6], off)
		}
		field := func(i int) uint32 {
			v, err := strconv.ParseUint(string(h[6+8*i:14+8*i]), 16, 32)
			if err != nil {
				panic(fmt.Sprintf("field %d at %d: %v", i, off, err))
			}
			return uint32(v)
		}
		m := cpioMember{
			ino: field(0), mode: field(1), nlink: field(4), mtime: field(5),
			rdevMajor: field(9), rdevMinor: field(10),
		}
		size, namesize := int(field(6)), int(field(11))
		if field(12) != 0 {
			return nil, fmt.Errorf("non-zero check field at %d", off)
		}
		nameEnd := off + 110 + namesize
		if nameEnd > len(b) || namesize == 0 || b[nameEnd-1] != 0 {
			return nil, fmt.Errorf("bad name at %d", off)
		}
		m.name = string(b[off+110 : nameEnd-1])
		dataStart := align(nameEnd)
		dataEnd := dataStart + size
		if dataEnd > len(b) {
			return nil, fmt.Errorf("truncated body of %s", m.name)
		}
		m.data = b[dataStart:dataEnd]
		off = align(dataEnd)
		if m.name == "TRAILER!!!" {
			if len(bytes.Trim(b[min(off, len(b)):], "\x00")) != 0 {
				return nil, errors.New("data after the trailer")
			}
			return out, nil
		}
		out = append(out, m)
	}
}

func buildArchive(t *testing.T, initBinary string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := BuildInitramfs(initBinary, &buf); err != nil {
		t.Fatalf("BuildInitramfs: %v", err)
	}
	return buf.Bytes()
}

func TestInitramfsRoundTrip(t *testing.T) {
	initBinary := testGuestInit(t, "x86_64")
	want, err := os.ReadFile(initBinary)
	if err != nil {
		t.Fatal(err)
	}

	members, err := readNewc(buildArchive(t, initBinary))
	if err != nil {
		t.Fatalf("read archive: %v", err)
	}
	byName := map[string]cpioMember{}
	for _, m := range members {
		if _, dup := byName[m.name]; dup {
			t.Errorf("entry %s appears twice", m.name)
		}
		if strings.HasPrefix(m.name, "/") {
			t.Errorf("entry %s has an absolute name", m.name)
		}
		byName[m.name] = m
	}

	for _, dir := range []string{"dev", "proc", "sys"} {
		m, ok := byName[dir]
		if !ok {
			t.Errorf("directory %s missing", dir)
			continue
		}
		if m.mode != 0o040755 {
			t.Errorf("%s mode = %o, want 40755", dir, m.mode)
		}
	}

	console, ok := byName["dev/console"]
	if !ok {
		t.Fatal("dev/console missing")
	}
	if console.mode&0o170000 != 0o020000 {
		t.Errorf("dev/console mode = %o, want a character device", console.mode)
	}
	if console.rdevMajor != 5 || console.rdevMinor != 1 {
		t.Errorf("dev/console device = %d:%d, want 5:1", console.rdevMajor, console.rdevMinor)
	}

	init, ok := byName["init"]
	if !ok {
		t.Fatal("init missing")
	}
	if init.mode != 0o100755 {
		t.Errorf("init mode = %o, want 100755", init.mode)
	}
	if !bytes.Equal(init.data, want) {
		t.Errorf("init body differs from %s (%d bytes, want %d)", initBinary, len(init.data), len(want))
	}
	if init.mtime != 0 {
		t.Errorf("init mtime = %d, want 0 for reproducible archives", init.mtime)
	}
}

func TestInitramfsReproducible(t *testing.T) {
	initBinary := testGuestInit(t, "x86_64")
	if !bytes.Equal(buildArchive(t, initBinary), buildArchive(t, initBinary)) {
		t.Error("two archives of the same init differ")
	}
}

// TestInitramfsCpioTool lists the archive with GNU cpio, the tool the
// kernel build itself needs, as a second reader.
func TestInitramfsCpioTool(t *testing.T) {
	cpio, err := exec.LookPath("cpio")
	if err != nil {
		t.Fatalf("cpio not found: %v — install it with apt-get install cpio", err)
	}
	initBinary := testGuestInit(t, "x86_64")
	path := filepath.Join(t.TempDir(), "initramfs.cpio")
	if err := WriteInitramfs(initBinary, path); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()

	cmd := exec.Command(cpio, "-itv", "--quiet")
	cmd.Stdin = in
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -itv: %v\n%s", err, out)
	}
	listing := string(out)
	for _, re := range []string{
		`(?m)^drwxr-xr-x .* dev$`,
		`(?m)^crw------- .* 5,\s+1 .* dev/console$`,
		`(?m)^drwxr-xr-x .* proc$`,
		`(?m)^drwxr-xr-x .* sys$`,
		`(?m)^-rwxr-xr-x .* init$`,
	} {
		if !regexp.MustCompile(re).MatchString(listing) {
			t.Errorf("cpio listing has no line matching %s:\n%s", re, listing)
		}
	}
}

func TestInitramfsMissingInit(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-init")
	err := BuildInitramfs(missing, io.Discard)
	if err == nil {
		t.Fatal("BuildInitramfs of a missing file succeeded")
	}
	if !strings.Contains(err.Error(), missing) {
		t.Errorf("error %q does not name %s", err, missing)
	}
}

func TestInitramfsRejectsDirectory(t *testing.T) {
	err := BuildInitramfs(t.TempDir(), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("error = %v, want one saying the init is not a regular file", err)
	}
}

// checkStaticELF asserts that path is an executable, statically linked
// Linux ELF for machine.
func checkStaticELF(t *testing.T, path string, machine elf.Machine) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o111 == 0 {
		t.Errorf("%s mode %v is not executable", path, fi.Mode())
	}
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s is not ELF: %v", path, err)
	}
	defer f.Close()
	if f.Machine != machine {
		t.Errorf("%s machine = %v, want %v", path, f.Machine, machine)
	}
	if f.Type != elf.ET_EXEC {
		t.Errorf("%s type = %v, want ET_EXEC", path, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has PT_INTERP: it is dynamically linked", path)
		}
		if p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s has PT_DYNAMIC: it is dynamically linked", path)
		}
	}
}

func TestGuestInitStaticAMD64(t *testing.T) {
	checkStaticELF(t, testGuestInit(t, "x86_64"), elf.EM_X86_64)
}

func TestGuestInitStaticARM64(t *testing.T) {
	checkStaticELF(t, testGuestInit(t, "aarch64"), elf.EM_AARCH64)
}

func TestGuestInitCached(t *testing.T) {
	first := testGuestInit(t, "x86_64")
	before, err := os.Stat(first)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // a rebuild would get a later mtime

	second, err := GuestInit(context.Background(), "x86_64", testCacheDir)
	if err != nil {
		t.Fatal(err)
	}
	if second != first {
		t.Errorf("second GuestInit returned %s, want cached %s", second, first)
	}
	after, err := os.Stat(second)
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().Equal(before.ModTime()) {
		t.Error("cached guest init was rebuilt")
	}

	entries, err := os.ReadDir(testCacheDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary build %s left in the cache dir", e.Name())
		}
	}
}

func TestGuestInitUnknownArch(t *testing.T) {
	_, err := GuestInit(context.Background(), "riscv64", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), `"riscv64"`) {
		t.Errorf("error = %v, want one naming riscv64", err)
	}
}

// TestGuestInitMarker keeps the guest program's marker and the host's in
// step, because the embedded source is compiled separately.
func TestGuestInitMarker(t *testing.T) {
	want := fmt.Sprintf("const marker = %q", Marker)
	if !bytes.Contains(guestInitSource, []byte(want)) {
		t.Errorf("guestinit/main.go has no line %s", want)
	}
}

func TestGuestInitConcurrentBuilds(t *testing.T) {
	dir := t.TempDir()
	paths := make([]string, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			paths[i], errs[i] = GuestInit(context.Background(), "x86_64", dir)
		}()
	}
	wg.Wait()

	for i := range paths {
		if errs[i] != nil {
			t.Fatalf("build %d: %v", i, errs[i])
		}
		if paths[i] != paths[0] {
			t.Errorf("build %d returned %s, want %s", i, paths[i], paths[0])
		}
	}
	checkStaticELF(t, paths[0], elf.EM_X86_64)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("cache dir holds %d files, want only the guest init", len(entries))
	}
}
