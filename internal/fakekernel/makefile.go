package fakekernel

// makefileText is the fake tree's Makefile. @DELAY@ and @NO_SCHED_EXT@ are
// replaced by Write. Recipes use only make, sh, awk and coreutils so the
// fixture runs wherever a kernel build could.
const makefileText = `# A fake Linux kernel tree for ktbuild tests. It answers the make targets
# ktbuild runs (defconfig, olddefconfig, the default build, mrproper,
# compile_commands.json) in a fraction of a second.
VERSION = 6
PATCHLEVEL = 12
SUBLEVEL = 0
EXTRAVERSION =
NAME = Fake Tree

# Seconds the default target sleeps (a decimal); the environment overrides it.
FAKE_KERNEL_DELAY ?= @DELAY@
# 1 keeps CONFIG_SCHED_CLASS_EXT off whatever the .config asks for.
FAKE_NO_SCHED_EXT = @NO_SCHED_EXT@

KERNELVERSION = $(VERSION).$(PATCHLEVEL).$(SUBLEVEL)$(EXTRAVERSION)
OBJS = init/main.o kernel/fork.o kernel/exit.o kernel/sched/core.o \
	kernel/sched/fair.o kernel/sched/ext.o kernel/bpf/syscall.o \
	kernel/bpf/btf.o mm/memory.o fs/exec.o
RESOLVE = awk -v no_sched_ext="$(FAKE_NO_SCHED_EXT)" -f .fake/olddefconfig.awk

.PHONY: all vmlinux bzImage defconfig olddefconfig mrproper \
	compile_commands.json kernelversion

# The bzImage's first line is padded to 0x202 bytes so that the x86 boot
# magic "HdrS" follows at the offset where ktbuild's cache checks for it.
all:
	@if [ ! -f .config ]; then echo '*** fake kernel: .config is missing, run "make defconfig" first' >&2; exit 2; fi
	@echo '  SYNC    include/config/auto.conf'
	@for o in $(OBJS); do echo "  CC      $$o"; done
	@if [ "$$FAKE_KERNEL_FAIL" = 1 ]; then \
		echo 'kernel/sched/ext.c:42:7: error: implicit declaration of function "scx_fake_kick" [-Werror=implicit-function-declaration]' >&2; \
		echo 'make[4]: *** [scripts/Makefile.build:229: kernel/sched/ext.o] Error 1' >&2; \
		i=0; while [ $$i -lt 30 ]; do echo "  CC      drivers/fake/noise$$i.o"; i=$$((i+1)); done; \
		exit 2; \
	fi
	@if [ -n "$$FAKE_KERNEL_LINGER" ]; then sleep 60 & echo $$! > "$$FAKE_KERNEL_LINGER"; fi
	@if [ -n "$$FAKE_KERNEL_CHILD_STATUS" ]; then cat /proc/self/status > "$$FAKE_KERNEL_CHILD_STATUS"; fi
	@case "$(FAKE_KERNEL_DELAY)" in ""|0|0.0) ;; *) sleep "$(FAKE_KERNEL_DELAY)" ;; esac
	@echo '  AS      arch/x86/entry/entry_64.o'
	@echo '  AR      kernel/built-in.a'
	@echo '  LD      vmlinux.o'
	@cp .fake/vmlinux vmlinux
	@echo '  LD      vmlinux'
	@echo '  BTF     .btf.vmlinux.bin.o'
	@mkdir -p arch/x86/boot
	@{ printf '%-513s\nHdrS\n' 'fake bzImage $(KERNELVERSION)'; cksum < .config; \
		awk 'BEGIN { for (i = 0; i < 64; i++) printf "%063d\n", i }'; } > arch/x86/boot/bzImage
	@echo '  BUILD   arch/x86/boot/bzImage'
	@echo compiled >> .fake-compiles
	@echo 'Kernel: arch/x86/boot/bzImage is ready'

vmlinux bzImage: all

defconfig:
	@printf '%s\n' 'CONFIG_64BIT=y' 'CONFIG_SMP=y' 'CONFIG_MODULES=y' \
		'CONFIG_BPF=y' '# CONFIG_BPF_SYSCALL is not set' \
		'CONFIG_DEBUG_INFO_NONE=y' 'CONFIG_HZ_250=y' 'CONFIG_HZ=250' \
		'CONFIG_LOCALVERSION=""' '# CONFIG_FAKE_PARENT is not set' > .config.defconfig
	@$(RESOLVE) .config.defconfig > .config
	@rm -f .config.defconfig
	@echo '*** fake defconfig: wrote .config'

olddefconfig:
	@touch .config
	@cp .config .config.old
	@$(RESOLVE) .config.old > .config
	@echo '*** fake olddefconfig: wrote .config'

mrproper:
	@echo '  CLEAN   .config vmlinux arch/x86/boot/bzImage'
	@rm -f .config .config.old .config.defconfig vmlinux compile_commands.json
	@rm -rf arch include

compile_commands.json:
	@printf '[\n  {"directory": "%s", "file": "kernel/sched/ext.c", "command": "gcc -c -o kernel/sched/ext.o kernel/sched/ext.c"}\n]\n' "$(CURDIR)" > compile_commands.json
	@echo '  GEN     compile_commands.json'

kernelversion:
	@echo $(KERNELVERSION)
`

// resolveAWK resolves a .config the way olddefconfig does for the few
// symbols the fake tree defines: the last line for a symbol wins, and two
// dependencies switch symbols off when they are unmet.
const resolveAWK = `/^CONFIG_[A-Za-z0-9_]+=/ {
	eq = index($0, "=")
	set(substr($0, 8, eq - 8), substr($0, eq + 1))
	next
}
/^# CONFIG_[A-Za-z0-9_]+ is not set$/ {
	set(substr($2, 8), "n")
	next
}
function set(sym, val) {
	if (!(sym in value))
		order[++count] = sym
	value[sym] = val
}
function unset(sym) {
	if (sym in value)
		value[sym] = "n"
}
END {
	if (value["BPF_SYSCALL"] != "y" || no_sched_ext == "1")
		unset("SCHED_CLASS_EXT")
	if (value["FAKE_PARENT"] != "y")
		unset("FAKE_CHILD")
	print "#"
	print "# fake kernel 6.12.0 configuration"
	print "#"
	for (i = 1; i <= count; i++) {
		sym = order[i]
		if (value[sym] == "n")
			printf "# CONFIG_%s is not set\n", sym
		else
			printf "CONFIG_%s=%s\n", sym, value[sym]
	}
}
`

// kconfigText is the fake tree's top-level Kconfig; nothing parses it, but
// ktbuild recognises a kernel tree by its Makefile and Kconfig.
const kconfigText = `mainmenu "Fake Linux/$(ARCH) $(KERNELVERSION) Kernel Configuration"

config BPF
	bool

config BPF_SYSCALL
	bool "Enable the bpf() system call"
	select BPF

config SCHED_CLASS_EXT
	bool "Extensible Scheduling Class"
	depends on BPF_SYSCALL

config FAKE_PARENT
	bool "A symbol other symbols depend on"

config FAKE_CHILD
	bool "A symbol that needs FAKE_PARENT"
	depends on FAKE_PARENT
`
