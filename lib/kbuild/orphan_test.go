package kbuild

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary act as a ktbuild process that runs make and
// can be killed, when KBUILD_TEST_MAKE_DIR names a configured tree.
func TestMain(m *testing.M) {
	if dir := os.Getenv("KBUILD_TEST_MAKE_DIR"); dir != "" {
		_, err := Make(context.Background(), MakeRequest{Dir: dir, Env: os.Environ()})
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	os.Exit(m.Run())
}

func TestMakeDiesWithKilledParent(t *testing.T) {
	dir := configuredTree(t)
	parent := exec.Command(os.Args[0], "-test.run=^$")
	parent.Env = append(os.Environ(), "KBUILD_TEST_MAKE_DIR="+dir, "FAKE_KERNEL_DELAY=60")
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { parent.Process.Kill(); parent.Wait() })

	mk := waitForChild(t, parent.Process.Pid, "make")
	killLater(t, mk)
	if err := parent.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	parent.Wait()

	deadline := time.Now().Add(20 * time.Second)
	for alive(mk) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(mk) {
		t.Errorf("make %d still runs after its parent was killed", mk)
	}
}

// waitForChild returns the pid of parent's child process named comm.
func waitForChild(t *testing.T, parent int, comm string) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range processes(t) {
			if p.comm == comm && p.ppid == parent {
				return p.pid
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s child of pid %d appeared", comm, parent)
	return 0
}
