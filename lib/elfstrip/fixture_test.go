package elfstrip

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// fixtureSource has a symbol in every section the main mode treats
// specially, plus __ksymtab, which it drops.
const fixtureSource = `
int counter = 5;
int zeroed;
const int table[4] = {1, 2, 3, 4};
__attribute__((section(".data..percpu"))) long percpu_var = 7;
__attribute__((section(".init.data"))) int init_var = 9;
__attribute__((section(".init.text"))) int init_fn(void) { return init_var; }
__attribute__((section("__ksymtab"))) int ksym_entry = 3;
int scx_bpf_kick_cpu(int cpu) { return cpu + counter + table[cpu & 3] + zeroed; }
int main(void) { return scx_bpf_kick_cpu(1) + init_fn(); }
`

// kfuncName is the function the fixture BTF describes.
const kfuncName = "scx_bpf_kick_cpu"

// fixtureKind names one way of producing a test ELF.
type fixtureKind string

const (
	kindObject     fixtureKind = "object"     // gcc -g -c, ELF64 LSB relocatable
	kindExecutable fixtureKind = "executable" // gcc -g -no-pie, ELF64 LSB ET_EXEC
	kindObject32   fixtureKind = "object32"   // gcc -g -m32 -c, ELF32 LSB with a COMDAT group
	kindX32        fixtureKind = "x32"        // object converted to elf32-x86-64
	kindBig64      fixtureKind = "big64"      // objcopy-made ELF64 MSB
	kindBig32      fixtureKind = "big32"      // objcopy-made ELF32 MSB
)

var allKinds = []fixtureKind{kindObject, kindExecutable, kindObject32, kindX32, kindBig64, kindBig32}

// requireTools fails the test when a tool the fixtures need is missing.
func requireTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed; the elfstrip tests build and check real ELF files with it", tool)
		}
	}
}

func run(t testing.TB, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// buildFixture writes an ELF of the given kind with .debug_* sections, a
// .BTF section holding kfuncName and a .BTF.ext section, and returns its path.
func buildFixture(t testing.TB, kind fixtureKind) string {
	t.Helper()
	requireTools(t, "gcc", "objcopy")
	dir := t.TempDir()
	src := filepath.Join(dir, "p.c")
	if err := os.WriteFile(src, []byte(fixtureSource), 0o644); err != nil {
		t.Fatal(err)
	}

	base := filepath.Join(dir, "base")
	order := binary.ByteOrder(binary.LittleEndian)
	var formatArgs []string
	switch kind {
	case kindObject:
		run(t, dir, "gcc", "-g", "-c", "-o", base, src)
	case kindExecutable:
		run(t, dir, "gcc", "-g", "-no-pie", "-o", base, src)
	case kindObject32:
		run(t, dir, "gcc", "-g", "-m32", "-c", "-o", base, src)
	case kindX32:
		run(t, dir, "gcc", "-g", "-c", "-o", base+".o", src)
		run(t, dir, "objcopy", "-O", "elf32-x86-64", base+".o", base)
	case kindBig64, kindBig32:
		format := map[fixtureKind]string{kindBig64: "elf64-big", kindBig32: "elf32-big"}[kind]
		order = binary.BigEndian
		formatArgs = []string{"-I", format, "-O", format}
		buildBigEndian(t, dir, base, format)
	default:
		t.Fatalf("unknown fixture kind %q", kind)
	}

	btfPath := filepath.Join(dir, "btf.bin")
	if err := os.WriteFile(btfPath, fixtureBTF(t, order), 0o644); err != nil {
		t.Fatal(err)
	}
	extPath := filepath.Join(dir, "btfext.bin")
	if err := os.WriteFile(extPath, []byte("opaque .BTF.ext bytes"), 0o644); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(dir, string(kind))
	args := append(formatArgs, "--add-section", ".BTF="+btfPath, "--add-section", ".BTF.ext="+extPath, base, out)
	run(t, dir, "objcopy", args...)
	return out
}

// buildBigEndian makes a big-endian relocatable ELF with objcopy alone,
// because gcc here only targets x86: .data comes from a binary blob, and
// .text, .rodata and a .debug_info section are added with symbols in each.
func buildBigEndian(t testing.TB, dir, out, format string) {
	t.Helper()
	blob := func(name string, size int) string {
		path := filepath.Join(dir, name)
		data := bytes.Repeat([]byte{0xa5}, size)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	data, text, rodata, debug := blob("data.bin", 64), blob("text.bin", 32), blob("rodata.bin", 16), blob("debug.bin", 24)

	raw := filepath.Join(dir, "raw.o")
	run(t, dir, "objcopy", "-I", "binary", "-O", format, filepath.Base(data), raw)
	run(t, dir, "objcopy", "-I", format, "-O", format,
		"--add-section", ".text="+text, "--set-section-flags", ".text=alloc,code,load,contents,readonly",
		"--add-section", ".rodata="+rodata, "--set-section-flags", ".rodata=alloc,load,contents,readonly",
		"--add-section", ".debug_info="+debug,
		"--add-symbol", kfuncName+"=.text:0x10,function,global",
		"--add-symbol", "counter=.data:0x8,object,global",
		"--add-symbol", "table=.rodata:0x4,object,global",
		"--add-symbol", "debug_marker=.debug_info:0x4,global",
		raw, out)
}

// fixtureBTF returns raw BTF with kfuncName and a .data DATASEC whose size
// and offsets are left for the loader to fill in from the ELF's section
// headers and symbols, so the test checks that those survive stripping.
func fixtureBTF(t testing.TB, order binary.ByteOrder) []byte {
	t.Helper()
	intType := &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}
	proto := &btf.FuncProto{Return: intType, Params: []btf.FuncParam{{Name: "cpu", Type: intType}}}
	kfunc := &btf.Func{Name: kfuncName, Type: proto, Linkage: btf.GlobalFunc}
	counter := &btf.Var{Name: "counter", Type: intType, Linkage: btf.GlobalVar}
	data := &btf.Datasec{Name: ".data", Vars: []btf.VarSecinfo{{Type: counter, Size: 4}}}

	builder, err := btf.NewBuilder([]btf.Type{kfunc, data}, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := builder.Marshal(nil, &btf.MarshalOptions{Order: order})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// patchFile rewrites len(data) bytes of path at off.
func patchFile(t testing.TB, path string, off int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}

// sectionHeaderOffset returns the file offset of section i's header.
func sectionHeaderOffset(t testing.TB, path string, i int) (int64, codec) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := codec{class: f.Class, order: f.ByteOrder}

	raw := make([]byte, c.ehdrSize())
	src, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := src.ReadAt(raw, 0); err != nil {
		t.Fatal(err)
	}
	h := c.decodeEhdr(raw)
	return int64(h.shoff) + int64(i)*int64(h.shentsize), c
}
