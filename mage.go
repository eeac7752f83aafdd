//go:build ignore

// Zero-install bootstrap: `go run mage.go <target>` runs this repository's
// magefile without a mage binary on PATH.
package main

import (
	"os"

	"github.com/magefile/mage/mage"
)

func main() { os.Exit(mage.Main()) }
