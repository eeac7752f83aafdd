package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ktBinary returns the compiled magefile that runs kernel:build: -kt when
// given, else one compiled into the scratch dir on first use.
func (s *session) ktBinary() (string, error) {
	if s.kt != "" {
		return s.kt, nil
	}
	if s.cfg.kt != "" {
		if _, err := os.Stat(s.cfg.kt); err != nil {
			return "", fmt.Errorf("-kt %s: %w — compile one with `go run mage.go -compile PATH` in the ktbuild checkout, or leave -kt empty", s.cfg.kt, err)
		}
		s.kt = s.cfg.kt
		return s.kt, nil
	}

	path := filepath.Join(s.work, "kt")
	s.progress("compiling the magefile into %s", path)
	cmd := exec.Command("go", "run", "mage.go", "-compile", path)
	cmd.Dir = s.repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go run mage.go -compile %s in %s: %w\n%s", path, s.repo, err, tail(string(out), 20))
	}
	s.kt = path
	return path, nil
}

// ktCommand returns a kernel:build command with KTSTR_CACHE_DIR set to
// cacheDir and extraEnv ("NAME=value") added; it replaces any inherited
// value of those variables.
func (s *session) ktCommand(cacheDir string, extraEnv []string, args ...string) (*exec.Cmd, error) {
	kt, err := s.ktBinary()
	if err != nil {
		return nil, err
	}
	set := append([]string{"KTSTR_CACHE_DIR=" + cacheDir}, extraEnv...)
	cmd := exec.Command(kt, append([]string{"kernel:build"}, args...)...)
	cmd.Dir = s.work
	cmd.Env = append(withoutVars(os.Environ(), set), set...)
	return cmd, nil
}

// withoutVars returns env without the variables that set names.
func withoutVars(env, set []string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, s := range set {
			if strings.HasPrefix(s, name+"=") {
				drop = true
				break
			}
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

// imagePath returns the single path a successful kernel:build printed.
func imagePath(res procResult) string {
	return strings.TrimSpace(res.stdout)
}
