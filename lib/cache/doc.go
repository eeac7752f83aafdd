// Package cache stores built kernels in a directory tree that ktstr (the Rust
// test harness for sched_ext schedulers) reads and writes too.
//
// The layout is shared with ktstr: {root}/{key}/ holds the boot image,
// optionally a stripped vmlinux, and metadata.json; {root}/.locks/{key}.lock
// is the per-entry flock(2) file; {root}/.tmp-{key}-{pid}/ is a store in
// progress. Names starting with "." are never entries, and any other
// directory is one only when its name looks like a key or it contains a
// metadata.json, so a root that also holds unrelated directories is safe to
// clean. This package adds build.log.gz to an entry, and three metadata
// fields that ktstr ignores.
//
// Readers hold the shared entry lock (ReadLock) while they use an entry.
// Store holds the exclusive one, so it waits for readers, and it publishes a
// finished directory with one rename, so even a reader without the lock never
// opens a missing or half-written entry.
package cache
