package kbuild

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".config"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

const goodConfig = `CONFIG_SCHED_CLASS_EXT=y
CONFIG_DEBUG_INFO_BTF=y
CONFIG_BPF_SYSCALL=y
CONFIG_FTRACE=y
CONFIG_KPROBE_EVENTS=y
CONFIG_BPF_EVENTS=y
`

func TestValidateAccepts(t *testing.T) {
	if err := Validate(writeConfig(t, goodConfig), ""); err != nil {
		t.Errorf("Validate = %v, want nil", err)
	}
}

func TestValidateListsEveryMissing(t *testing.T) {
	text := strings.NewReplacer(
		"CONFIG_DEBUG_INFO_BTF=y\n", "# CONFIG_DEBUG_INFO_BTF is not set\n",
		"CONFIG_KPROBE_EVENTS=y\n", "",
		"CONFIG_BPF_EVENTS=y\n", "CONFIG_BPF_EVENTS=m\n",
	).Replace(goodConfig)
	err := Validate(writeConfig(t, text), "")

	var missing *MissingOptionsError
	if !errors.As(err, &missing) {
		t.Fatalf("Validate = %v, want a *MissingOptionsError", err)
	}
	var symbols []string
	for _, m := range missing.Missing {
		symbols = append(symbols, m.Symbol+"="+m.Value)
	}
	if got := strings.Join(symbols, " "); got != "CONFIG_DEBUG_INFO_BTF=n CONFIG_KPROBE_EVENTS=n CONFIG_BPF_EVENTS=m" {
		t.Errorf("missing = %s", got)
	}
	msg := err.Error()
	for _, want := range []string{"lacks 3 option(s)", "pahole 1.16 or later", "dwarves", "needs FTRACE and KPROBES", "PERF_EVENTS"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "extra kconfig") {
		t.Errorf("error blames an extra fragment although none was given:\n%s", msg)
	}
}

func TestValidateNamesExtra(t *testing.T) {
	text := strings.Replace(goodConfig, "CONFIG_BPF_SYSCALL=y", "# CONFIG_BPF_SYSCALL is not set", 1)
	err := Validate(writeConfig(t, text), "team.kconfig")
	if err == nil {
		t.Fatal("Validate accepted BPF_SYSCALL off")
	}
	for _, want := range []string{"CONFIG_BPF_SYSCALL=n", "the extra kconfig team.kconfig is the likely cause"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%s", want, err)
		}
	}
}

func TestValidateMissingConfig(t *testing.T) {
	err := Validate(t.TempDir(), "")
	if err == nil || !strings.Contains(err.Error(), ".config is missing") {
		t.Errorf("Validate = %v, want a missing .config error", err)
	}
}
