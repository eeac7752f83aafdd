//go:build mage

// This repository's own magefile: the kernel:* and cache:* targets every
// scheduler repository gets, plus bench for developing ktbuild itself.
package main

import (
	"github.com/magefile/mage/sh"

	//mage:import
	_ "github.com/ktstr/ktbuild/targets"
)

// Bench measures ktbuild's performance targets on the real 6.12 artifacts
// and prints each ratio against its peer command (git status, tar,
// objcopy, cp, make, a single build). -run=NAMES picks benchmarks; `go run
// ./bench -list` lists them and what each needs.
func Bench(
	run *string, // comma-separated benchmark names (default: all)
) error {
	args := []string{"run", "./bench"}
	if run != nil {
		args = append(args, "-run="+*run)
	}
	return sh.RunV("go", args...)
}
