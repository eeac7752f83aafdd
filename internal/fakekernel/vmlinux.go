package fakekernel

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// cSource is the fake vmlinux's code: a few functions and objects so the
// ELF has .text, .rodata, .data and .bss and a symbol table worth stripping.
const cSource = `const char linux_banner[] = "Linux version 6.12.0-fake (ktbuild fixture)\n";
unsigned long jiffies = 4294937296UL;
static int nr_switches;
struct task_struct { int pid; char comm[16]; } init_task;

void schedule(void) { nr_switches++; jiffies++; }
int wake_up_process(struct task_struct *p) { return p->pid; }
`

// cSchedExt adds the sched_ext kfuncs whose BTF CheckBTF looks for.
const cSchedExt = `void scx_bpf_kick_cpu(int cpu, unsigned long long flags) { nr_switches += cpu + (int)flags; }
int scx_bpf_create_dsq(unsigned long long dsq_id, int node) { return (int)dsq_id + node; }
void scx_bpf_dispatch(struct task_struct *p, unsigned long long dsq_id, unsigned long long slice, unsigned long long enq_flags) { p->pid += (int)(dsq_id + slice + enq_flags); }
`

const cEntry = `void start_kernel(void) { schedule(); wake_up_process(&init_task); for (;;) ; }
`

// built contains one prebuilt vmlinux per variant for the life of the test
// process, so each fixture costs a file write instead of a compile.
var built [2]struct {
	once sync.Once
	elf  []byte
	err  error
}

// Vmlinux returns the bytes of a small x86_64 ELF executable with .symtab,
// .debug_* sections and a .BTF section. With noSchedExt the BTF and the code
// lack the sched_ext kfuncs such as scx_bpf_kick_cpu.
//
// The ELF is built once per test process with gcc and objcopy; the test fails
// when either is missing.
func Vmlinux(t testing.TB, noSchedExt bool) []byte {
	t.Helper()
	variant := 0
	if noSchedExt {
		variant = 1
	}
	b := &built[variant]
	b.once.Do(func() { b.elf, b.err = buildVmlinux(!noSchedExt) })
	if b.err != nil {
		t.Fatalf("fakekernel: %v", b.err)
	}
	return b.elf
}

// buildVmlinux compiles the C source, adds the BTF blob to the object and
// links it, so the linker places .BTF inside a loadable segment as in a
// real vmlinux.
func buildVmlinux(schedExt bool) ([]byte, error) {
	for _, tool := range []string{"gcc", "objcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s not found on PATH — install gcc and binutils to build the fake vmlinux", tool)
		}
	}

	dir, err := os.MkdirTemp("", "ktbuild-fakekernel-")
	if err != nil {
		return nil, fmt.Errorf("create build dir for the fake vmlinux: %w", err)
	}
	defer os.RemoveAll(dir)

	blob, err := btfBlob(schedExt)
	if err != nil {
		return nil, err
	}
	source := cSource
	if schedExt {
		source += cSchedExt
	}
	source += cEntry
	files := map[string][]byte{"vmlinux.c": []byte(source), "vmlinux.btf": blob}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return nil, fmt.Errorf("write %s for the fake vmlinux: %w", name, err)
		}
	}

	steps := [][]string{
		{"gcc", "-g", "-O0", "-c", "-o", "vmlinux.o", "vmlinux.c"},
		{"objcopy", "--add-section", ".BTF=vmlinux.btf", "--set-section-flags", ".BTF=alloc,readonly,contents", "vmlinux.o"},
		{"gcc", "-nostdlib", "-static", "-no-pie", "-Wl,-e,start_kernel", "-Wl,--build-id=none", "-o", "vmlinux", "vmlinux.o"},
	}
	for _, step := range steps {
		cmd := exec.Command(step[0], step[1:]...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build fake vmlinux: %q failed: %w: %s", step, err, bytes.TrimSpace(out))
		}
	}

	elf, err := os.ReadFile(filepath.Join(dir, "vmlinux"))
	if err != nil {
		return nil, fmt.Errorf("read the fake vmlinux: %w", err)
	}
	return elf, nil
}

// btfBlob marshals the fake kernel's BTF: a task_struct, a few functions and,
// when schedExt is set, the sched_ext kfuncs and their flag enum.
func btfBlob(schedExt bool) ([]byte, error) {
	void := &btf.Void{}
	intType := &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}
	u64Base := &btf.Int{Name: "long long unsigned int", Size: 8}
	charType := &btf.Int{Name: "char", Size: 1, Encoding: btf.Char}
	s32 := &btf.Typedef{Name: "s32", Type: intType}
	u64 := &btf.Typedef{Name: "u64", Type: u64Base}
	task := &btf.Struct{
		Name: "task_struct",
		Size: 20,
		Members: []btf.Member{
			{Name: "pid", Type: intType, Offset: 0},
			{Name: "comm", Type: &btf.Array{Index: intType, Type: charType, Nelems: 16}, Offset: 32},
		},
	}
	taskPtr := &btf.Pointer{Target: task}

	types := []btf.Type{
		newFunc("schedule", void),
		newFunc("wake_up_process", intType, btf.FuncParam{Name: "p", Type: taskPtr}),
	}
	if schedExt {
		kickFlags := &btf.Enum{Name: "scx_kick_flags", Size: 4, Values: []btf.EnumValue{
			{Name: "SCX_KICK_IDLE", Value: 1},
			{Name: "SCX_KICK_PREEMPT", Value: 2},
			{Name: "SCX_KICK_WAIT", Value: 4},
		}}
		types = append(types,
			kickFlags,
			newFunc("scx_bpf_kick_cpu", void, btf.FuncParam{Name: "cpu", Type: s32}, btf.FuncParam{Name: "flags", Type: u64}),
			newFunc("scx_bpf_create_dsq", s32, btf.FuncParam{Name: "dsq_id", Type: u64}, btf.FuncParam{Name: "node", Type: s32}),
			newFunc("scx_bpf_dispatch", void,
				btf.FuncParam{Name: "p", Type: taskPtr}, btf.FuncParam{Name: "dsq_id", Type: u64},
				btf.FuncParam{Name: "slice", Type: u64}, btf.FuncParam{Name: "enq_flags", Type: u64}),
		)
	}

	builder, err := btf.NewBuilder(types, nil)
	if err != nil {
		return nil, fmt.Errorf("build fake BTF: %w", err)
	}
	blob, err := builder.Marshal(nil, nil)
	if err != nil {
		return nil, fmt.Errorf("marshal fake BTF: %w", err)
	}
	return blob, nil
}

// newFunc returns a global BTF function with the given return and parameters.
func newFunc(name string, ret btf.Type, params ...btf.FuncParam) *btf.Func {
	return &btf.Func{
		Name:    name,
		Type:    &btf.FuncProto{Return: ret, Params: params},
		Linkage: btf.GlobalFunc,
	}
}
