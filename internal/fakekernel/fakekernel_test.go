package fakekernel

import (
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
)

func runMake(t *testing.T, dir string, env []string, targets ...string) string {
	t.Helper()
	cmd := exec.Command("make", append([]string{"-s"}, targets...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %v: %v\n%s", targets, err, out)
	}
	return string(out)
}

func readConfig(t *testing.T, dir string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, ".config"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func appendConfig(t *testing.T, dir string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, ".config"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(strings.Join(lines, "\n") + "\n"); err != nil {
		t.Fatal(err)
	}
}

func TestDefconfigWritesConfig(t *testing.T) {
	dir := New(t, Options{})
	runMake(t, dir, nil, "defconfig")
	config := readConfig(t, dir)
	for _, want := range []string{"CONFIG_SMP=y", "# CONFIG_BPF_SYSCALL is not set", "CONFIG_DEBUG_INFO_NONE=y"} {
		if !strings.Contains(config, want+"\n") {
			t.Errorf(".config lacks %q:\n%s", want, config)
		}
	}
	if strings.Contains(config, "CONFIG_SCHED_CLASS_EXT=y") {
		t.Errorf("defconfig enabled sched_ext:\n%s", config)
	}
}

func TestOlddefconfigLastLineWins(t *testing.T) {
	dir := New(t, Options{})
	runMake(t, dir, nil, "defconfig")
	appendConfig(t, dir, "CONFIG_HZ=1000", "CONFIG_BPF_SYSCALL=y", "# CONFIG_SMP is not set", "CONFIG_SCHED_CLASS_EXT=y")
	runMake(t, dir, nil, "olddefconfig")

	config := readConfig(t, dir)
	for _, want := range []string{"CONFIG_HZ=1000", "CONFIG_BPF_SYSCALL=y", "# CONFIG_SMP is not set", "CONFIG_SCHED_CLASS_EXT=y"} {
		if !strings.Contains(config, want+"\n") {
			t.Errorf(".config lacks %q:\n%s", want, config)
		}
	}
	if n := strings.Count(config, "CONFIG_HZ="); n != 1 {
		t.Errorf("CONFIG_HZ appears %d times, want 1:\n%s", n, config)
	}
}

func TestOlddefconfigDropsUnmetDependencies(t *testing.T) {
	dir := New(t, Options{})
	runMake(t, dir, nil, "defconfig")
	appendConfig(t, dir, "CONFIG_SCHED_CLASS_EXT=y", "CONFIG_FAKE_CHILD=y")
	runMake(t, dir, nil, "olddefconfig")

	config := readConfig(t, dir)
	for _, want := range []string{"# CONFIG_SCHED_CLASS_EXT is not set", "# CONFIG_FAKE_CHILD is not set"} {
		if !strings.Contains(config, want+"\n") {
			t.Errorf(".config lacks %q:\n%s", want, config)
		}
	}

	appendConfig(t, dir, "CONFIG_FAKE_PARENT=y", "CONFIG_FAKE_CHILD=y")
	runMake(t, dir, nil, "olddefconfig")
	if config := readConfig(t, dir); !strings.Contains(config, "CONFIG_FAKE_CHILD=y\n") {
		t.Errorf("FAKE_CHILD dropped although FAKE_PARENT=y:\n%s", config)
	}
}

func TestNoSchedExtNeverEnables(t *testing.T) {
	dir := New(t, Options{NoSchedExt: true})
	runMake(t, dir, nil, "defconfig")
	appendConfig(t, dir, "CONFIG_BPF_SYSCALL=y", "CONFIG_SCHED_CLASS_EXT=y")
	runMake(t, dir, nil, "olddefconfig")
	config := readConfig(t, dir)
	if !strings.Contains(config, "# CONFIG_SCHED_CLASS_EXT is not set\n") {
		t.Errorf("sched_ext survived in a NoSchedExt tree:\n%s", config)
	}
}

func TestBuildWritesOutputs(t *testing.T) {
	dir := New(t, Options{})
	runMake(t, dir, nil, "defconfig")
	out := runMake(t, dir, nil)

	objects := 0
	for _, line := range strings.Split(out, "\n") {
		for _, tag := range []string{"  CC ", "  AS ", "  AR ", "  LD "} {
			if strings.HasPrefix(line, tag) {
				objects++
			}
		}
	}
	if objects != Objects {
		t.Errorf("build printed %d object lines, want %d:\n%s", objects, Objects, out)
	}
	image, err := os.ReadFile(filepath.Join(dir, "arch/x86/boot/bzImage"))
	if err != nil {
		t.Fatal(err)
	}
	if len(image) < 4096 {
		t.Errorf("bzImage is %d bytes, want at least 4096", len(image))
	}
	if len(image) < 0x206 || string(image[0x202:0x206]) != "HdrS" {
		t.Errorf("bzImage has no x86 boot magic \"HdrS\" at offset 0x202")
	}
	if _, err := os.Stat(filepath.Join(dir, "vmlinux")); err != nil {
		t.Error(err)
	}
	if got := CompileCount(dir); got != 1 {
		t.Errorf("CompileCount = %d after one build, want 1", got)
	}

	runMake(t, dir, nil)
	if got := CompileCount(dir); got != 2 {
		t.Errorf("CompileCount = %d after two builds, want 2", got)
	}
}

func TestBuildWithoutConfigFails(t *testing.T) {
	dir := New(t, Options{})
	cmd := exec.Command("make")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		t.Fatalf("make without .config: err = %v, want an exit error\n%s", err, out)
	}
	if !strings.Contains(string(out), ".config is missing") {
		t.Errorf("output does not name the missing .config:\n%s", out)
	}
}

func TestBuildFailEnv(t *testing.T) {
	dir := New(t, Options{})
	runMake(t, dir, nil, "defconfig")
	cmd := exec.Command("make")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "FAKE_KERNEL_FAIL=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("FAKE_KERNEL_FAIL=1 build succeeded:\n%s", out)
	}
	if !strings.Contains(string(out), "error: implicit declaration") {
		t.Errorf("output lacks the compiler error:\n%s", out)
	}
	if CompileCount(dir) != 0 {
		t.Errorf("failed build counted as a compile")
	}
}

func TestChildStatusEnv(t *testing.T) {
	dir := New(t, Options{})
	runMake(t, dir, nil, "defconfig")
	status := filepath.Join(t.TempDir(), "status")
	runMake(t, dir, []string{"FAKE_KERNEL_CHILD_STATUS=" + status})
	data, err := os.ReadFile(status)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "Cpus_allowed_list:") {
		t.Errorf("status file lacks Cpus_allowed_list:\n%s", data)
	}
}

func TestMrproperAndCompileCommands(t *testing.T) {
	dir := New(t, Options{})
	runMake(t, dir, nil, "defconfig")
	runMake(t, dir, nil)
	runMake(t, dir, nil, "compile_commands.json")
	data, err := os.ReadFile(filepath.Join(dir, "compile_commands.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"directory": "`+dir+`"`) {
		t.Errorf("compile_commands.json lacks the tree directory:\n%s", data)
	}

	runMake(t, dir, nil, "mrproper")
	for _, name := range []string{".config", "vmlinux", "arch/x86/boot/bzImage", "compile_commands.json"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after mrproper (stat err %v)", name, err)
		}
	}
}

func TestKernelVersion(t *testing.T) {
	dir := New(t, Options{})
	if got := strings.TrimSpace(runMake(t, dir, nil, "kernelversion")); got != "6.12.0" {
		t.Errorf("kernelversion = %q, want 6.12.0", got)
	}
}

func TestVmlinuxSections(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vmlinux")
	if err := os.WriteFile(path, Vmlinux(t, false), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	if f.Machine != elf.EM_X86_64 || f.Type != elf.ET_EXEC {
		t.Errorf("machine %v type %v, want EM_X86_64 ET_EXEC", f.Machine, f.Type)
	}
	for _, name := range []string{".text", ".rodata", ".data", ".bss", ".symtab", ".strtab", ".debug_info", ".debug_line", ".BTF"} {
		if f.Section(name) == nil {
			t.Errorf("section %s missing", name)
		}
	}
	if s := f.Section(".BTF"); s != nil && s.Flags&elf.SHF_ALLOC == 0 {
		t.Errorf(".BTF is not SHF_ALLOC")
	}

	symbols, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]elf.SymType{}
	for _, s := range symbols {
		kinds[s.Name] = elf.ST_TYPE(s.Info)
	}
	for name, want := range map[string]elf.SymType{"schedule": elf.STT_FUNC, "scx_bpf_kick_cpu": elf.STT_FUNC, "jiffies": elf.STT_OBJECT, "init_task": elf.STT_OBJECT, "linux_banner": elf.STT_OBJECT} {
		if got, ok := kinds[name]; !ok || got != want {
			t.Errorf("symbol %s: type %v (present %v), want %v", name, got, ok, want)
		}
	}
}

func TestVmlinuxBTF(t *testing.T) {
	for _, noSchedExt := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "vmlinux")
		if err := os.WriteFile(path, Vmlinux(t, noSchedExt), 0o644); err != nil {
			t.Fatal(err)
		}
		spec, err := btf.LoadSpec(path)
		if err != nil {
			t.Fatalf("noSchedExt=%v: load BTF: %v", noSchedExt, err)
		}
		var kick *btf.Func
		err = spec.TypeByName("scx_bpf_kick_cpu", &kick)
		if noSchedExt {
			if !errors.Is(err, btf.ErrNotFound) {
				t.Errorf("NoSchedExt BTF: lookup err = %v, want ErrNotFound", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("scx_bpf_kick_cpu: %v", err)
		}
		proto, ok := kick.Type.(*btf.FuncProto)
		if !ok || len(proto.Params) != 2 {
			t.Errorf("scx_bpf_kick_cpu proto = %v, want two params", kick.Type)
		}
		var task *btf.Struct
		if err := spec.TypeByName("task_struct", &task); err != nil {
			t.Errorf("task_struct: %v", err)
		}
	}
}

// BenchmarkBuild measures one default-target build of a configured tree.
func BenchmarkBuild(b *testing.B) {
	dir := b.TempDir()
	Write(b, dir, Options{})
	cmd := exec.Command("make", "defconfig")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("make defconfig: %v\n%s", err, out)
	}
	for b.Loop() {
		cmd := exec.Command("make", "-s")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("make: %v\n%s", err, out)
		}
	}
}
