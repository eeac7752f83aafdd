// Package kconfig embeds ktbuild's sched_ext kconfig fragment.
//
// The fragment's CRC32 is the kc{hash} part of every cache key, so a kernel
// built with an older fragment is recognisable as stale.
package kconfig

import (
	_ "embed"
	"fmt"
	"hash/crc32"
)

//go:embed sched_ext.kconfig
var fragment []byte

// Fragment returns a copy of the embedded sched_ext fragment.
func Fragment() []byte {
	return append([]byte(nil), fragment...)
}

// Hash returns the CRC32 (IEEE) of data as 8 lowercase hex digits, the form
// cache keys and metadata.json use for kconfig hashes.
func Hash(data []byte) string {
	return fmt.Sprintf("%08x", crc32.ChecksumIEEE(data))
}

// FragmentHash returns Hash of the embedded fragment.
func FragmentHash() string {
	return Hash(fragment)
}
