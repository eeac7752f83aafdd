package smoke

import (
	"strings"
	"testing"
)

func TestQEMUArgs(t *testing.T) {
	tests := []struct {
		arch, accel string
		want        []string // consecutive argument pairs expected in the list
		cmdline     string
	}{
		{"x86_64", "tcg", []string{"-M pc", "-accel tcg,thread=single", "-cpu max", "-smp 2", "-m 512", "-serial stdio", "-kernel /k", "-initrd /i"}, "console=ttyS0 panic=-1 rdinit=/init"},
		{"x86_64", "kvm", []string{"-accel kvm", "-cpu host"}, "console=ttyS0 panic=-1 rdinit=/init"},
		{"aarch64", "tcg", []string{"-M virt", "-accel tcg,thread=single", "-cpu max"}, "console=ttyAMA0 panic=-1 rdinit=/init"},
	}
	for _, tt := range tests {
		t.Run(tt.arch+"/"+tt.accel, func(t *testing.T) {
			m, err := machineFor(tt.arch)
			if err != nil {
				t.Fatal(err)
			}
			args := qemuArgs(m, bootArgs{
				accel: tt.accel, kernel: "/k", initrd: "/i",
				append: kernelCmdline(m, ""), cpus: 2, memoryMiB: 512,
			})
			joined := " " + strings.Join(args, " ") + " "
			for _, pair := range tt.want {
				if !strings.Contains(joined, " "+pair+" ") {
					t.Errorf("args %q lack %q", args, pair)
				}
			}
			for _, flag := range []string{"-nodefaults", "-no-reboot"} {
				if !strings.Contains(joined, " "+flag+" ") {
					t.Errorf("args %q lack %s", args, flag)
				}
			}
			if args[len(args)-2] != "-append" || args[len(args)-1] != tt.cmdline {
				t.Errorf("args end %q, want -append %q", args[len(args)-2:], tt.cmdline)
			}
		})
	}
}

func TestKernelCmdlineAppendLast(t *testing.T) {
	m, _ := machineFor("x86_64")
	got := kernelCmdline(m, "rdinit=/other loglevel=3")
	if !strings.HasSuffix(got, " rdinit=/other loglevel=3") {
		t.Errorf("cmdline %q does not end with the extra arguments", got)
	}
}

func TestMachineForAliases(t *testing.T) {
	for in, want := range map[string]string{"amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64", "": HostArch()} {
		m, err := machineFor(in)
		if err != nil {
			t.Errorf("machineFor(%q): %v", in, err)
			continue
		}
		if m.arch != want {
			t.Errorf("machineFor(%q).arch = %q, want %q", in, m.arch, want)
		}
	}
}
