//go:build mage

// This repository's own magefile: the kernel:* and cache:* targets every
// scheduler repository gets, plus targets for developing ktbuild itself.
package main

import (
	//mage:import
	_ "github.com/ktstr/ktbuild/targets"
)
