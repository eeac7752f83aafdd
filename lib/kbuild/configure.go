package kbuild

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// DefaultFragmentName labels the base fragment in warnings and errors when
// ConfigureRequest.FragmentName is empty.
const DefaultFragmentName = "the sched_ext fragment"

// ConfigureRequest describes how to configure a kernel tree.
type ConfigureRequest struct {
	Dir string
	// Fragment is the base kconfig fragment, usually kconfig.Fragment().
	Fragment []byte
	// FragmentName labels Fragment in messages. When empty,
	// DefaultFragmentName is used.
	FragmentName string
	// Extra is the user's extra fragment, applied after Fragment so its
	// settings win. ExtraName is its path for messages.
	Extra     []byte
	ExtraName string
	// Env is make's environment. nil inherits this process's environment.
	Env     []string
	LogPath string
	// Out receives one line per warning, unless it is nil.
	Out io.Writer
	// Verbose, when set, receives make's raw output.
	Verbose io.Writer
}

// ConfigureResult reports what Configure did.
type ConfigureResult struct {
	// Ran lists the make targets run, in order: "defconfig", "olddefconfig".
	Ran      []string
	Warnings []string
	// Skipped is true when .config already had every setting and no make
	// target ran.
	Skipped bool
}

// Configure brings dir/.config to the merged fragment. It runs when
// .config lacks CONFIG_SCHED_CLASS_EXT=y, or whenever an extra fragment is
// given: make defconfig when there is no .config, then, unless every
// merged setting is already in .config, the merged fragment is appended and
// make olddefconfig resolves it.
//
// Before configuring it warns about each extra setting that overrides the
// base fragment, and after it warns about each extra setting olddefconfig
// did not keep. A setting of n is kept when .config has the option unset
// or leaves it out.
func Configure(ctx context.Context, req ConfigureRequest) (ConfigureResult, error) {
	var result ConfigureResult
	baseName := req.FragmentName
	if baseName == "" {
		baseName = DefaultFragmentName
	}
	base, err := ParseFragment(baseName, req.Fragment)
	if err != nil {
		return result, err
	}
	extraName := req.ExtraName
	if extraName == "" {
		extraName = "the extra fragment"
	}
	extra, err := ParseFragment(extraName, req.Extra)
	if err != nil {
		return result, err
	}
	extra = effective(extra)
	fail := func(err error) (ConfigureResult, error) {
		if len(extra) > 0 {
			err = fmt.Errorf("configure with extra kconfig %s: %w", extraName, err)
		}
		return result, err
	}

	configPath := filepath.Join(req.Dir, ".config")
	current, exists, err := readConfig(configPath)
	if err != nil {
		return result, err
	}
	if exists && current["CONFIG_SCHED_CLASS_EXT"] == "y" && len(extra) == 0 {
		result.Skipped = true
		return result, nil
	}

	warn := func(format string, args ...any) {
		line := fmt.Sprintf(format, args...)
		result.Warnings = append(result.Warnings, line)
		if req.Out != nil {
			fmt.Fprintln(req.Out, line)
		}
	}
	overrideWarnings(base, extra, baseName, extraName, warn)

	spec := runSpec{dir: req.Dir, env: req.Env, logPath: req.LogPath, verbose: req.Verbose}
	if !exists {
		spec.args = []string{"defconfig"}
		if _, err := runMake(ctx, spec); err != nil {
			return fail(err)
		}
		result.Ran = append(result.Ran, "defconfig")
		if current, _, err = readConfig(configPath); err != nil {
			return result, err
		}
	}

	merged := effective(append(append([]FragmentLine(nil), base...), extra...))
	if allPresent(merged, current) {
		result.Skipped = len(result.Ran) == 0
		return result, nil
	}

	// The parsed lines, not the files' bytes: kconfig ignores a setting
	// that does not start in the first column, and the parser accepts one.
	if err := appendToConfig(configPath, fragmentText(merged)); err != nil {
		return result, err
	}
	spec.args = []string{"olddefconfig"}
	if _, err := runMake(ctx, spec); err != nil {
		return fail(err)
	}
	result.Ran = append(result.Ran, "olddefconfig")

	final, _, err := readConfig(configPath)
	if err != nil {
		return result, err
	}
	for _, line := range extra {
		if got := valueOf(final, line.Symbol); got != line.Value {
			warn("warning: %s:%d sets %s=%s but olddefconfig left it at %s — usually an unmet dependency; check the option's \"depends on\" in Kconfig",
				extraName, line.Number, line.Symbol, line.Value, got)
		}
	}
	return result, nil
}

// overrideWarnings warns once per extra setting that changes a value the
// base fragment sets.
// fragmentText writes lines back in the form kconfig reads.
func fragmentText(lines []FragmentLine) []byte {
	var b strings.Builder
	for _, line := range lines {
		b.WriteString(line.Line)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

func overrideWarnings(base, extra []FragmentLine, baseName, extraName string, warn func(string, ...any)) {
	baked := map[string]string{}
	for _, line := range effective(base) {
		baked[line.Symbol] = line.Value
	}
	for _, line := range extra {
		if value, ok := baked[line.Symbol]; ok && value != line.Value {
			warn("warning: %s:%d overrides %s: %s=%s there, %s here",
				extraName, line.Number, baseName, line.Symbol, value, line.Value)
		}
	}
}

// allPresent reports whether .config already has every setting in lines.
func allPresent(lines []FragmentLine, config map[string]string) bool {
	for _, line := range lines {
		if valueOf(config, line.Symbol) != line.Value {
			return false
		}
	}
	return true
}

func readConfig(path string) (values map[string]string, exists bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("kbuild: read %s: %w", path, err)
	}
	return configValues(data), true, nil
}

func appendToConfig(path string, fragment []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("kbuild: open %s to append the fragment: %w", path, err)
	}
	// The leading newline ends a last .config line that lacks one.
	_, err = f.Write(append([]byte("\n"), fragment...))
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("kbuild: append the fragment to %s: %w", path, err)
	}
	return nil
}
