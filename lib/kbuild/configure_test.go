package kbuild

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ktstr/ktbuild/internal/fakekernel"
	"github.com/ktstr/ktbuild/kconfig"
)

func configure(t *testing.T, dir string, extra, extraName string) (ConfigureResult, string) {
	t.Helper()
	var out bytes.Buffer
	result, err := Configure(context.Background(), ConfigureRequest{
		Dir:       dir,
		Fragment:  kconfig.Fragment(),
		Extra:     []byte(extra),
		ExtraName: extraName,
		LogPath:   filepath.Join(dir, "build.log"),
		Out:       &out,
	})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return result, out.String()
}

func configText(t *testing.T, dir string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, ".config"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestConfigureFreshTree(t *testing.T) {
	dir := fakekernel.New(t, fakekernel.Options{})
	result, out := configure(t, dir, "", "")

	if strings.Join(result.Ran, ",") != "defconfig,olddefconfig" || result.Skipped {
		t.Errorf("result = %+v, want defconfig then olddefconfig", result)
	}
	if out != "" || len(result.Warnings) != 0 {
		t.Errorf("warnings without an extra fragment: %q", out)
	}
	config := configText(t, dir)
	for _, want := range []string{"CONFIG_SCHED_CLASS_EXT=y\n", "CONFIG_BPF_SYSCALL=y\n", "# CONFIG_DEBUG_INFO_NONE is not set\n"} {
		if !strings.Contains(config, want) {
			t.Errorf(".config lacks %q", want)
		}
	}
	if err := Validate(dir, ""); err != nil {
		t.Errorf("Validate after Configure: %v", err)
	}
	log, err := os.ReadFile(filepath.Join(dir, "build.log"))
	if err != nil || !strings.Contains(string(log), "fake olddefconfig") {
		t.Errorf("build log lacks olddefconfig output (err %v):\n%s", err, log)
	}
}

func TestConfigureSkipsConfiguredTree(t *testing.T) {
	dir := fakekernel.New(t, fakekernel.Options{})
	configure(t, dir, "", "")
	before := configText(t, dir)
	info, err := os.Stat(filepath.Join(dir, ".config"))
	if err != nil {
		t.Fatal(err)
	}

	result, _ := configure(t, dir, "", "")
	if !result.Skipped || len(result.Ran) != 0 {
		t.Errorf("result = %+v, want skipped with nothing run", result)
	}
	after, err := os.Stat(filepath.Join(dir, ".config"))
	if err != nil {
		t.Fatal(err)
	}
	if configText(t, dir) != before || !after.ModTime().Equal(info.ModTime()) {
		t.Errorf(".config changed on a skipped configure")
	}
}

func TestConfigureSkipsWhenExtraPresent(t *testing.T) {
	dir := fakekernel.New(t, fakekernel.Options{})
	extra := "CONFIG_HZ=1000\n# CONFIG_MODULES is not set\n"
	first, _ := configure(t, dir, extra, "extra.kconfig")
	if strings.Join(first.Ran, ",") != "defconfig,olddefconfig" {
		t.Fatalf("first configure ran %v, want defconfig and olddefconfig", first.Ran)
	}
	before := configText(t, dir)

	second, _ := configure(t, dir, extra, "extra.kconfig")
	if !second.Skipped || len(second.Ran) != 0 {
		t.Errorf("second configure = %+v, want skipped", second)
	}
	if configText(t, dir) != before {
		t.Errorf(".config changed although every setting was present")
	}

	third, _ := configure(t, dir, "CONFIG_HZ=300\n", "extra.kconfig")
	if third.Skipped || strings.Join(third.Ran, ",") != "olddefconfig" {
		t.Errorf("changed extra: result = %+v, want olddefconfig only", third)
	}
	if !strings.Contains(configText(t, dir), "CONFIG_HZ=300\n") {
		t.Errorf(".config lacks the changed extra setting")
	}
}

func TestConfigureExtraWins(t *testing.T) {
	dir := fakekernel.New(t, fakekernel.Options{})
	_, out := configure(t, dir, "# CONFIG_FTRACE is not set\nCONFIG_HZ=1000\n", "extra.kconfig")

	config := configText(t, dir)
	if !strings.Contains(config, "# CONFIG_FTRACE is not set\n") || strings.Contains(config, "CONFIG_FTRACE=y") {
		t.Errorf("extra did not win over the fragment's CONFIG_FTRACE=y:\n%s", config)
	}
	if !strings.Contains(config, "CONFIG_HZ=1000\n") {
		t.Errorf(".config lacks the extra CONFIG_HZ=1000")
	}

	want := "warning: extra.kconfig:1 overrides the sched_ext fragment: CONFIG_FTRACE=y there, n here\n"
	if out != want {
		t.Errorf("warnings = %q, want %q", out, want)
	}
}

func TestConfigureWarnsDroppedSetting(t *testing.T) {
	dir := fakekernel.New(t, fakekernel.Options{})
	result, out := configure(t, dir, "CONFIG_FAKE_CHILD=y\n", "extra.kconfig")

	if len(result.Warnings) != 1 {
		t.Fatalf("warnings = %q, want one", result.Warnings)
	}
	for _, want := range []string{"extra.kconfig:1", "CONFIG_FAKE_CHILD=y", "left it at n", "unmet dependency"} {
		if !strings.Contains(out, want) {
			t.Errorf("warning %q lacks %q", out, want)
		}
	}

	_, out = configure(t, dir, "CONFIG_FAKE_PARENT=y\nCONFIG_FAKE_CHILD=y\n", "extra.kconfig")
	if out != "" {
		t.Errorf("warnings with the dependency met: %q", out)
	}
}

func TestConfigureRejectsBadExtra(t *testing.T) {
	dir := fakekernel.New(t, fakekernel.Options{})
	_, err := Configure(context.Background(), ConfigureRequest{
		Dir: dir, Fragment: kconfig.Fragment(), Extra: []byte("CONFIG_A=y\nFOO\n"), ExtraName: "my.kconfig",
	})
	if err == nil || !strings.Contains(err.Error(), "my.kconfig:line 2:") {
		t.Errorf("err = %v, want one naming my.kconfig:line 2", err)
	}
	if _, statErr := os.Stat(filepath.Join(dir, ".config")); !errors.Is(statErr, os.ErrNotExist) {
		t.Errorf("a rejected fragment still configured the tree")
	}
}

func TestConfigureFailureNamesExtra(t *testing.T) {
	dir := fakekernel.New(t, fakekernel.Options{})
	if err := os.Remove(filepath.Join(dir, ".fake/olddefconfig.awk")); err != nil {
		t.Fatal(err)
	}
	_, err := Configure(context.Background(), ConfigureRequest{
		Dir: dir, Fragment: kconfig.Fragment(), Extra: []byte("CONFIG_HZ=1000\n"), ExtraName: "my.kconfig",
	})
	var makeErr *MakeError
	if !errors.As(err, &makeErr) {
		t.Fatalf("err = %v, want a *MakeError", err)
	}
	if !strings.HasPrefix(err.Error(), "configure with extra kconfig my.kconfig: ") {
		t.Errorf("err = %q, want it to name the extra fragment", err)
	}
	if makeErr.Args[0] != "defconfig" {
		t.Errorf("failed target = %v, want defconfig", makeErr.Args)
	}
}

func TestConfigureNoSchedExtFailsValidate(t *testing.T) {
	dir := fakekernel.New(t, fakekernel.Options{NoSchedExt: true})
	configure(t, dir, "", "")
	err := Validate(dir, "")
	var missing *MissingOptionsError
	if !errors.As(err, &missing) {
		t.Fatalf("Validate = %v, want a *MissingOptionsError", err)
	}
	if len(missing.Missing) != 1 || missing.Missing[0].Symbol != "CONFIG_SCHED_CLASS_EXT" {
		t.Errorf("missing = %+v, want only CONFIG_SCHED_CLASS_EXT", missing.Missing)
	}
}

func TestConfigureIndentedExtraLineTakesEffect(t *testing.T) {
	dir := fakekernel.New(t, fakekernel.Options{})
	configure(t, dir, "  CONFIG_HZ=1000  \n\t# CONFIG_FTRACE is not set\n", "extra.kconfig")

	config := configText(t, dir)
	if !strings.Contains(config, "\nCONFIG_HZ=1000\n") {
		t.Errorf("the indented CONFIG_HZ=1000 did not take effect:\n%s", config)
	}
	if strings.Contains(config, "CONFIG_FTRACE=y") {
		t.Errorf("the indented # CONFIG_FTRACE is not set did not take effect:\n%s", config)
	}
}
