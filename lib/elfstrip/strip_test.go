package elfstrip

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// keptInMainMode lists the sections every fixture has that the main mode
// must keep byte for byte; .symtab is also kept but rewritten.
var keptInMainMode = []string{".symtab", ".strtab", ".shstrtab", ".BTF", ".BTF.ext", ".rodata"}

// nobitsInMainMode lists the sections each fixture has that the main mode
// must turn into SHT_NOBITS.
var nobitsInMainMode = map[fixtureKind][]string{
	kindObject:     {".text", ".data", ".data..percpu", ".init.data", ".init.text"},
	kindExecutable: {".text", ".data", ".init.text", ".init", ".fini"},
	kindObject32:   {".text", ".data", ".data..percpu", ".init.data", ".init.text"},
	kindX32:        {".text", ".data", ".data..percpu", ".init.data", ".init.text"},
	kindBig64:      {".text", ".data"},
	kindBig32:      {".text", ".data"},
}

func TestStripMainMode(t *testing.T) {
	requireTools(t, "readelf", "nm", "bpftool")
	for _, kind := range allKinds {
		t.Run(string(kind), func(t *testing.T) {
			src := buildFixture(t, kind)
			dst := filepath.Join(t.TempDir(), "vmlinux")

			res, err := Strip(src, dst)
			if err != nil {
				t.Fatal(err)
			}
			if res.Fallback {
				t.Fatalf("Strip used the fallback mode: %s", res.FallbackReason)
			}
			checkSizes(t, src, dst, res)

			checkReadelfClean(t, dst)
			checkNMSame(t, src, dst)
			checkMainSections(t, src, dst, keptInMainMode, nobitsInMainMode[kind])
			checkSymbols(t, src, dst, kfuncName, "counter", "table")
			checkBTF(t, src, dst)
			checkBpftool(t, dst)
		})
	}
}

func TestStripClearsDroppedGroup(t *testing.T) {
	src := buildFixture(t, kindObject32)
	in := openELF(t, src)
	if in.SectionByType(elf.SHT_GROUP) == nil {
		t.Fatal("the -m32 fixture has no COMDAT group; the test needs one")
	}
	dst := filepath.Join(t.TempDir(), "out")

	if _, err := Strip(src, dst); err != nil {
		t.Fatal(err)
	}

	out := openELF(t, dst)
	for _, s := range out.Sections {
		if s.Type == elf.SHT_GROUP {
			t.Errorf("main mode kept group section %q", s.Name)
		}
		if s.Flags&elf.SHF_GROUP != 0 {
			t.Errorf("section %q keeps SHF_GROUP although its group was dropped", s.Name)
		}
	}
}

func TestStripFallbackWithoutSymtab(t *testing.T) {
	requireTools(t, "gcc", "objcopy", "readelf", "nm")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.c"), []byte(fixtureSource), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, dir, "gcc", "-g", "-shared", "-fPIC", "-o", "lib.so", "p.c")
	run(t, dir, "objcopy", "--strip-all", "--keep-section=.debug_info", "--keep-section=.debug_abbrev",
		"--keep-section=.debug_str", "--keep-section=.comment", "lib.so", "nosym.so")
	src, dst := filepath.Join(dir, "nosym.so"), filepath.Join(dir, "out.so")

	res, err := Strip(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Fallback {
		t.Fatal("Strip used the main mode on a file without .symtab")
	}
	if !strings.Contains(res.FallbackReason, ".symtab") {
		t.Errorf("FallbackReason = %q, want it to name .symtab", res.FallbackReason)
	}
	checkSizes(t, src, dst, res)
	checkReadelfClean(t, dst)

	in, out := openELF(t, src), openELF(t, dst)
	for _, s := range in.Sections {
		dropped := strings.HasPrefix(s.Name, ".debug_") || s.Name == ".comment" || s.Type == elf.SHT_RELA
		got := out.Section(s.Name)
		switch {
		case dropped && got != nil:
			t.Errorf("fallback kept %q", s.Name)
		case !dropped && got == nil:
			t.Errorf("fallback dropped %q", s.Name)
		case !dropped && s.Type != elf.SHT_NOBITS && s.Type != elf.SHT_DYNSYM:
			if !bytes.Equal(sectionData(t, s), sectionData(t, got)) {
				t.Errorf("section %q changed its bytes", s.Name)
			}
		}
	}
	checkSectionLinks(t, in, out)
	if !slices.EqualFunc(in.Progs, out.Progs, func(a, b *elf.Prog) bool { return a.ProgHeader == b.ProgHeader }) {
		t.Error("fallback changed the program headers")
	}

	inDyn, _ := in.DynamicSymbols()
	outDyn, err := out.DynamicSymbols()
	if err != nil {
		t.Fatal(err)
	}
	compareSymbols(t, in, out, inDyn, outDyn, false)

	if a, b := nmOutput(t, src, "-D"), nmOutput(t, dst, "-D"); !slices.Equal(a, b) {
		t.Errorf("nm -D changed:\nbefore %q\nafter  %q", a, b)
	}
}

func TestStripFallbackExecutableRuns(t *testing.T) {
	requireTools(t, "gcc", "objcopy")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.c"), []byte(fixtureSource), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, dir, "gcc", "-g", "-o", "prog", "p.c")
	run(t, dir, "objcopy", "--strip-all", "--keep-section=.debug_info", "--keep-section=.debug_str", "prog", "nosym")
	src, dst := filepath.Join(dir, "nosym"), filepath.Join(dir, "out")

	res, err := Strip(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Fallback {
		t.Fatal("Strip used the main mode on a file without .symtab")
	}

	// main returns 1 + counter (5) + table[1] (2) + zeroed (0) + init_var (9).
	err = exec.Command(dst).Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 17 {
		t.Errorf("running the stripped program: %v, want exit status 17", err)
	}
}

func TestStripFallbackRemapsGroups(t *testing.T) {
	requireTools(t, "gcc")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.c"), []byte("#include <stddef.h>\n"+fixtureSource), 0o644); err != nil {
		t.Fatal(err)
	}
	// -g3 puts .debug_macro sections in COMDAT groups of their own, and
	// -m32 adds a group holding only code, so fallback both drops and keeps
	// a group.
	run(t, dir, "gcc", "-g3", "-m32", "-c", "-o", "p.o", "p.c")
	src, dst := filepath.Join(dir, "p.o"), filepath.Join(dir, "out.o")

	// Point .symtab's sh_link at section 0: the layout the main mode does
	// not expect, which forces the fallback mode on an otherwise real file.
	in := openELF(t, src)
	symtab := slices.IndexFunc(in.Sections, func(s *elf.Section) bool { return s.Type == elf.SHT_SYMTAB })
	off, c := sectionHeaderOffset(t, src, symtab)
	linkAt := int64(24)
	if c.is64() {
		linkAt = 40
	}
	patchFile(t, src, off+linkAt, []byte{0, 0, 0, 0})
	in = openELF(t, src)

	res, err := Strip(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Fallback {
		t.Fatal("Strip used the main mode although .symtab links to section 0")
	}

	out := openELF(t, dst)
	var want [][]string
	for _, members := range groupMembers(t, in) {
		var kept []string
		for _, m := range members {
			if !strings.HasPrefix(m, ".debug_") && !strings.HasPrefix(m, ".rel") {
				kept = append(kept, m)
			}
		}
		if len(kept) > 0 {
			want = append(want, kept)
		}
	}
	got := groupMembers(t, out)
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("output groups = %q, want %q", got, want)
	}
	if len(want) == 0 || len(want) == len(groupMembers(t, in)) {
		t.Errorf("fallback keeps %d of %d groups; the fixture should make it keep some and drop others", len(want), len(groupMembers(t, in)))
	}

	grouped := slices.Concat(got...)
	for _, s := range out.Sections {
		if s.Flags&elf.SHF_GROUP != 0 && !slices.Contains(grouped, s.Name) {
			t.Errorf("section %q has SHF_GROUP but no kept group lists it", s.Name)
		}
	}
}

func TestStripRejectsNonELF(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "vmlinux")
	if err := os.WriteFile(src, []byte("#!/bin/sh\necho not a kernel\n"), 0o755); err != nil {
		t.Fatal(err)
	}

	_, err := Strip(src, filepath.Join(dir, "out"))
	if !errors.Is(err, ErrNotELF) {
		t.Fatalf("err = %v, want ErrNotELF", err)
	}
	if !strings.Contains(err.Error(), src) {
		t.Errorf("error %q does not name the input", err)
	}
	checkOnlyFiles(t, dir, "vmlinux")
}

func TestStripRejectsTruncated(t *testing.T) {
	full, err := os.ReadFile(buildFixture(t, kindExecutable))
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{10, 63, len(full) / 2, len(full) - 1} {
		dir := t.TempDir()
		src := filepath.Join(dir, "vmlinux")
		if err := os.WriteFile(src, full[:size], 0o644); err != nil {
			t.Fatal(err)
		}

		_, err := Strip(src, filepath.Join(dir, "out"))
		if !errors.Is(err, ErrTruncated) {
			t.Errorf("size %d of %d: err = %v, want ErrTruncated", size, len(full), err)
		}
		checkOnlyFiles(t, dir, "vmlinux")
	}
}

func TestStripRejectsSectionPastEOF(t *testing.T) {
	src := buildFixture(t, kindObject)
	in := openELF(t, src)
	btfIndex := slices.IndexFunc(in.Sections, func(s *elf.Section) bool { return s.Name == ".BTF" })
	off, c := sectionHeaderOffset(t, src, btfIndex)

	// Grow .BTF's sh_size far past the end of the file.
	size := make([]byte, 8)
	c.order.PutUint64(size, 1<<30)
	patchFile(t, src, off+32, size)

	dir := t.TempDir()
	_, err := Strip(src, filepath.Join(dir, "out"))
	if !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), ".BTF") {
		t.Fatalf("err = %v, want ErrTruncated naming .BTF", err)
	}
	checkOnlyFiles(t, dir)
}

func TestStripRejectsBadSymbolSection(t *testing.T) {
	src := buildFixture(t, kindObject)
	in := openELF(t, src)
	symtab := in.SectionByType(elf.SHT_SYMTAB)

	// Point the last symbol at section 999, which does not exist.
	last := int64(symtab.Offset + symtab.Size - 24)
	patchFile(t, src, last+6, []byte{0xe7, 0x03})

	dir := t.TempDir()
	_, err := Strip(src, filepath.Join(dir, "out"))
	if err == nil || !strings.Contains(err.Error(), "section 999") {
		t.Fatalf("err = %v, want an error naming section 999", err)
	}
	checkOnlyFiles(t, dir)
}

func TestStripRejectsExtendedSymbolIndexes(t *testing.T) {
	src := buildFixture(t, kindObject)
	in := openELF(t, src)
	comment := slices.IndexFunc(in.Sections, func(s *elf.Section) bool { return s.Name == ".comment" })
	off, c := sectionHeaderOffset(t, src, comment)

	typ := make([]byte, 4)
	c.order.PutUint32(typ, uint32(elf.SHT_SYMTAB_SHNDX))
	patchFile(t, src, off+4, typ)

	dir := t.TempDir()
	_, err := Strip(src, filepath.Join(dir, "out"))
	if err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Fatalf("err = %v, want a not-supported error", err)
	}
	checkOnlyFiles(t, dir)
}

func TestStripMissingSource(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "absent")

	_, err := Strip(src, filepath.Join(dir, "out"))
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), src) {
		t.Fatalf("err = %v, want a not-exist error naming %s", err, src)
	}
	checkOnlyFiles(t, dir)
}

func TestStripMissingOutputDir(t *testing.T) {
	src := buildFixture(t, kindObject)
	dst := filepath.Join(t.TempDir(), "absent", "out")

	_, err := Strip(src, dst)
	if err == nil || !strings.Contains(err.Error(), dst) {
		t.Fatalf("err = %v, want an error naming %s", err, dst)
	}
}

func TestStripErrorKeepsExistingOutput(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "vmlinux"), filepath.Join(dir, "out")
	if err := os.WriteFile(src, []byte("not elf"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, []byte("previous output"), 0o644); err != nil {
		t.Fatal(err)
	}

	if _, err := Strip(src, dst); err == nil {
		t.Fatal("Strip accepted a non-ELF input")
	}
	got, err := os.ReadFile(dst)
	if err != nil || string(got) != "previous output" {
		t.Errorf("dst = %q, %v; want the previous output untouched", got, err)
	}
	checkOnlyFiles(t, dir, "out", "vmlinux")
}

func TestStripInPlace(t *testing.T) {
	requireTools(t, "readelf")
	src := buildFixture(t, kindExecutable)
	before := openELF(t, src)
	wantSyms, err := before.Symbols()
	if err != nil {
		t.Fatal(err)
	}

	res, err := Strip(src, src)
	if err != nil {
		t.Fatal(err)
	}
	if res.OutSize >= res.InSize {
		t.Errorf("OutSize %d is not below InSize %d", res.OutSize, res.InSize)
	}
	checkReadelfClean(t, src)
	gotSyms, err := openELF(t, src).Symbols()
	if err != nil {
		t.Fatal(err)
	}
	if len(gotSyms) != len(wantSyms) {
		t.Errorf("in-place strip has %d symbols, want %d", len(gotSyms), len(wantSyms))
	}
	checkOnlyFiles(t, filepath.Dir(src), filepath.Base(src), "btf.bin", "btfext.bin", "base", "p.c")
}

func TestStripKeepsFileMode(t *testing.T) {
	src := buildFixture(t, kindExecutable)
	if err := os.Chmod(src, 0o751); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "out")

	if _, err := Strip(src, dst); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o751 {
		t.Errorf("mode = %v, want -rwxr-x--x", st.Mode().Perm())
	}
}

// checkSizes checks Result's sizes against the files.
func checkSizes(t testing.TB, src, dst string, res Result) {
	t.Helper()
	for _, c := range []struct {
		path string
		got  int64
	}{{src, res.InSize}, {dst, res.OutSize}} {
		st, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() != c.got {
			t.Errorf("Result reports %d bytes for %s, the file has %d", c.got, c.path, st.Size())
		}
	}
	if res.OutSize >= res.InSize {
		t.Errorf("OutSize %d is not below InSize %d", res.OutSize, res.InSize)
	}
}

// checkReadelfClean runs GNU readelf and llvm-readelf on path and fails on
// any warning or error. llvm-readelf also checks that dynamic tags point
// into a segment and that section symbols name a section.
func checkReadelfClean(t testing.TB, path string) {
	t.Helper()
	requireTools(t, "readelf", "llvm-readelf")
	for _, tool := range []string{"readelf", "llvm-readelf"} {
		var stderr bytes.Buffer
		cmd := exec.Command(tool, "-h", "-l", "-S", "-s", "-g", "-d", "--dyn-syms", "-W", path)
		cmd.Stderr = &stderr
		// Both tools print warnings and errors to stderr only.
		if _, err := cmd.Output(); err != nil || stderr.Len() > 0 {
			t.Errorf("%s %s: %v\n%s", tool, path, err, stderr.String())
		}
	}
}

// nmOutput returns the "address name" pairs nm prints for path. The type
// letter is left out because it follows the section: .data symbols become
// 'B' once .data is NOBITS, and symbols of dropped sections become 'A'.
func nmOutput(t testing.TB, path string, args ...string) []string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command("nm", append(args, path)...)
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("nm %s: %v\n%s", path, err, stderr.String())
	}

	var pairs []string
	for line := range strings.Lines(string(stdout)) {
		if len(line) < 3 {
			continue
		}
		fields := strings.Fields(line)
		name := fields[len(fields)-1]
		addr := ""
		if len(fields) == 3 {
			addr = fields[0]
		}
		pairs = append(pairs, addr+" "+name)
	}
	slices.Sort(pairs)
	return pairs
}

func checkNMSame(t testing.TB, src, dst string) {
	t.Helper()
	before, after := nmOutput(t, src), nmOutput(t, dst)
	if len(before) == 0 {
		t.Fatalf("nm found no symbols in %s", src)
	}
	if !slices.Equal(before, after) {
		t.Errorf("nm output changed:\nbefore %q\nafter  %q", before, after)
	}
}

// checkMainSections checks the main mode's keep, NOBITS and drop lists.
func checkMainSections(t testing.TB, src, dst string, kept, nobits []string) {
	t.Helper()
	in, out := openELF(t, src), openELF(t, dst)

	if len(out.Progs) != 0 {
		t.Errorf("output has %d program headers, want none", len(out.Progs))
	}
	for _, name := range kept {
		s, o := in.Section(name), out.Section(name)
		switch {
		case s == nil:
			t.Errorf("fixture lacks %s", name)
		case o == nil:
			t.Errorf("output lacks %s", name)
		case name != ".symtab" && !bytes.Equal(sectionData(t, s), sectionData(t, o)):
			t.Errorf("%s changed its bytes", name)
		}
	}

	for _, name := range nobits {
		s, o := in.Section(name), out.Section(name)
		if s == nil || o == nil {
			t.Errorf("section %s: in fixture %t, in output %t; want both", name, s != nil, o != nil)
			continue
		}
		if o.Type != elf.SHT_NOBITS || o.Addr != s.Addr || o.Size != s.Size || o.Flags != s.Flags {
			t.Errorf("section %s = %v addr %#x size %d flags %v; want NOBITS addr %#x size %d flags %v",
				name, o.Type, o.Addr, o.Size, o.Flags, s.Addr, s.Size, s.Flags)
		}
	}

	for _, o := range out.Sections {
		if strings.HasPrefix(o.Name, ".debug") || o.Type == elf.SHT_REL || o.Type == elf.SHT_RELA ||
			o.Type == elf.SHT_NOTE || o.Name == "__ksymtab" || o.Name == ".comment" {
			t.Errorf("output keeps %s (%v)", o.Name, o.Type)
		}
	}
	checkSectionLinks(t, in, out)
}

// checkSectionLinks checks that every output sh_link names the same section
// as the input's did, or 0 when that section was dropped.
func checkSectionLinks(t testing.TB, in, out *elf.File) {
	t.Helper()
	for _, o := range out.Sections {
		s := in.Section(o.Name)
		if s == nil || s.Link == 0 {
			continue
		}
		want := in.Sections[s.Link].Name
		if o.Link == 0 {
			if out.Section(want) != nil {
				t.Errorf("section %s lost its link to %s", o.Name, want)
			}
			continue
		}
		if got := out.Sections[o.Link].Name; got != want {
			t.Errorf("section %s links to %s, want %s", o.Name, got, want)
		}
	}
}

// checkSymbols compares .symtab entry by entry and checks that the named
// symbols kept their sections.
func checkSymbols(t testing.TB, src, dst string, names ...string) {
	t.Helper()
	in, out := openELF(t, src), openELF(t, dst)
	inSyms, err := in.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	outSyms, err := out.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	compareSymbols(t, in, out, inSyms, outSyms, true)
	checkLocalCount(t, dst)

	for _, name := range names {
		if !slices.ContainsFunc(outSyms, func(s elf.Symbol) bool { return s.Name == name && s.Section != elf.SHN_ABS }) {
			t.Errorf("output lost symbol %s or its section", name)
		}
	}
}

// compareSymbols checks that symbols keep their order, names, values, sizes
// and types, and point at the same-named section, or SHN_ABS when their
// section was dropped. With removeSectionSymbols, section symbols of
// dropped sections must be gone instead.
func compareSymbols(t testing.TB, in, out *elf.File, inSyms, outSyms []elf.Symbol, removeSectionSymbols bool) {
	t.Helper()
	var want []elf.Symbol
	for _, s := range inSyms {
		dropped := s.Section > elf.SHN_UNDEF && s.Section < elf.SHN_LORESERVE && out.Section(in.Sections[s.Section].Name) == nil
		if removeSectionSymbols && dropped && elf.ST_TYPE(s.Info) == elf.STT_SECTION {
			continue
		}
		want = append(want, s)
	}
	if len(outSyms) != len(want) {
		t.Fatalf("output has %d symbols, want %d of the input's %d", len(outSyms), len(want), len(inSyms))
	}

	for i, s := range want {
		o := outSyms[i]
		if o.Name != s.Name || o.Value != s.Value || o.Size != s.Size || o.Info != s.Info {
			t.Errorf("symbol %d = %+v, want %+v", i, o, s)
			continue
		}
		if s.Section == elf.SHN_UNDEF || s.Section >= elf.SHN_LORESERVE {
			if o.Section != s.Section {
				t.Errorf("symbol %s section = %v, want %v", s.Name, o.Section, s.Section)
			}
			continue
		}
		name := in.Sections[s.Section].Name
		switch {
		case out.Section(name) == nil && o.Section != elf.SHN_ABS:
			t.Errorf("symbol %s of dropped section %s has section %v, want SHN_ABS", s.Name, name, o.Section)
		case out.Section(name) != nil && (o.Section >= elf.SHN_LORESERVE || out.Sections[o.Section].Name != name):
			t.Errorf("symbol %s points at section %v, want %s", s.Name, o.Section, name)
		}
	}
}

// checkLocalCount checks that .symtab's sh_info is one past its last local
// symbol, as the gABI requires.
func checkLocalCount(t testing.TB, path string) {
	t.Helper()
	f := openELF(t, path)
	symtab := f.SectionByType(elf.SHT_SYMTAB)
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	// debug/elf leaves out entry 0, the null symbol.
	locals := 1
	for _, s := range syms {
		if elf.ST_BIND(s.Info) == elf.STB_LOCAL {
			locals++
		}
	}
	if int(symtab.Info) != locals {
		t.Errorf(".symtab sh_info = %d, want %d (one past the last local symbol)", symtab.Info, locals)
	}
}

// checkBTF checks that the output's BTF loads with cilium/ebpf exactly as
// the input's does, DATASEC fix-ups from section sizes and symbols included.
func checkBTF(t testing.TB, src, dst string) {
	t.Helper()
	want := btfTypes(t, src)
	got := btfTypes(t, dst)
	if !slices.Equal(got, want) {
		t.Errorf("BTF types = %q, want %q", got, want)
	}

	spec, err := btf.LoadSpec(dst)
	if err != nil {
		t.Fatal(err)
	}
	var fn *btf.Func
	if err := spec.TypeByName(kfuncName, &fn); err != nil {
		t.Errorf("output BTF lacks func %s: %v", kfuncName, err)
	}
}

// btfTypes loads path's BTF and describes every type, DATASEC sizes and
// variable offsets included.
func btfTypes(t testing.TB, path string) []string {
	t.Helper()
	spec, err := btf.LoadSpec(path)
	if err != nil {
		t.Fatalf("btf.LoadSpec(%s): %v", path, err)
	}
	var types []string
	for typ, err := range spec.All() {
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		desc := fmt.Sprint(typ)
		if ds, ok := typ.(*btf.Datasec); ok {
			desc += fmt.Sprintf(" size=%d", ds.Size)
			for _, v := range ds.Vars {
				desc += fmt.Sprintf(" %s@%d", v.Type.TypeName(), v.Offset)
			}
		}
		types = append(types, desc)
	}
	if len(types) < 2 {
		t.Fatalf("%s: BTF holds %d types, want the fixture's", path, len(types))
	}
	return types
}

func checkBpftool(t testing.TB, path string) {
	t.Helper()
	out, err := exec.Command("bpftool", "btf", "dump", "file", path).CombinedOutput()
	if err != nil {
		t.Fatalf("bpftool btf dump file %s: %v\n%s", path, err, out)
	}
	if !bytes.Contains(out, []byte(kfuncName)) {
		t.Errorf("bpftool output lacks %s:\n%s", kfuncName, out)
	}
}

// checkOnlyFiles fails when dir holds anything but names, such as a
// leftover temporary file.
func checkOnlyFiles(t testing.TB, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	slices.Sort(names)
	if !slices.Equal(got, names) {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}

func openELF(t testing.TB, path string) *elf.File {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func sectionData(t testing.TB, s *elf.Section) []byte {
	t.Helper()
	if s.Type == elf.SHT_NOBITS {
		return nil
	}
	data, err := s.Data()
	if err != nil {
		t.Fatalf("section %s: %v", s.Name, err)
	}
	return data
}

// groupMembers returns the member names of each SHT_GROUP section, in
// section order. Groups are not keyed by name because every group of a
// relocatable object is called .group.
func groupMembers(t testing.TB, f *elf.File) [][]string {
	t.Helper()
	var groups [][]string
	for _, s := range f.Sections {
		if s.Type != elf.SHT_GROUP {
			continue
		}
		data := sectionData(t, s)
		var members []string
		for k := 4; k+4 <= len(data); k += 4 {
			members = append(members, f.Sections[f.ByteOrder.Uint32(data[k:])].Name)
		}
		groups = append(groups, members)
	}
	return groups
}
