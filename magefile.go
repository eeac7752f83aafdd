//go:build mage

// This repository's own magefile: the kernel:* and cache:* targets every
// scheduler repository gets.
package main

import (
	//mage:import
	_ "github.com/ktstr/ktbuild/targets"
)
