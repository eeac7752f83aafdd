// Package examples compiles the example scheduler magefile, so the public
// surface it uses cannot drift from the library.
package examples

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSchedulerMagefileCompiles(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "scheduler-mage")
	compile := exec.Command("go", "run", "../mage.go", "-d", "scheduler", "-w", ".", "-compile", bin)
	if out, err := compile.CombinedOutput(); err != nil {
		t.Fatalf("compiling the example magefile failed: %v\n%s", err, out)
	}

	out, err := exec.Command(bin, "-l").CombinedOutput()
	if err != nil {
		t.Fatalf("%s -l failed: %v\n%s", bin, err, out)
	}
	for _, target := range []string{"kernel:build", "kernel:path", "kernel:clean", "kernel:doctor", "cache:list", "test"} {
		if !strings.Contains(string(out), target) {
			t.Errorf("target %s missing from the example's target list:\n%s", target, out)
		}
	}
}
