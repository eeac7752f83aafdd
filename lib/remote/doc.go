// Package remote shares cache entries through an OCI registry, so one
// machine's kernel build saves every other machine the same build.
//
// An entry travels as one OCI artifact (image manifest 1.1, artifact type
// ArtifactType) tagged with TagFor(key): metadata.json is the config blob,
// and the boot image and vmlinux are zstd-compressed layers. Pull verifies
// every blob's digest while it downloads and stores the entry through
// cache.Store, so a local entry is complete or absent, never half pulled.
//
// Credentials come from the Docker config file, as for docker, oras and
// podman: $DOCKER_CONFIG/config.json, else ~/.docker/config.json, with
// plain "auths" entries and credential helpers.
//
// A registry that accepts connections but does not respond costs a pull or
// push about Options.HeaderTimeout, because a timed-out request is not
// retried. The lookup part of a pull never takes more than
// Options.RequestTimeout. Blob transfers have no total deadline, only
// Options.StallTimeout, so a large entry on a slow link still arrives.
//
// The zero-configuration path is FromEnv, which reads KTSTR_REMOTE_CACHE.
// Remote failures are errors here; callers decide whether they are fatal.
package remote
