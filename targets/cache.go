package targets

import (
	"context"
	"fmt"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/ktstr/ktbuild/lib/pipeline"
)

// Cache lists and moves cached kernels.
type Cache mg.Namespace

// List lists cached kernels, newest first, with corrupt entries last and
// tags such as "stale kconfig". -json prints every field for machines.
func (Cache) List(ctx context.Context,
	json *bool, // print every field as JSON
) error {
	return pipeline.List(ctx, pipeline.ListRequest{JSON: derefBool(json), Stdout: os.Stdout, Stderr: os.Stderr})
}

// Push uploads a cached kernel to the OCI registry repository named by
// KTSTR_REMOTE_CACHE. -key=KEY names the entry; without it the source flags
// of kernel:path do. Prints the pushed reference.
func (Cache) Push(ctx context.Context,
	key *string, // the cache key of the entry to push
	source *string, // or: a kernel tree or tarball whose cached kernel to push
	version *string, // or: a kernel.org release whose cached kernel to push
	git *string, // or: a git repository URL
	ref *string, // the branch or tag of -git
	extrakconfig *string, // the extra fragment the kernel was built with
	kconfig *string, // the replacement fragment the kernel was built with
) error {
	spec, err := pipeline.SourceFlags{Source: source, Version: version, Git: git, Ref: ref}.Spec()
	if err != nil {
		return err
	}
	if err := checkFragmentFlags(extrakconfig, kconfig); err != nil {
		return err
	}
	if deref(key) != "" && spec != "" {
		return fmt.Errorf("-key=%s and a source flag both name the entry — pass only one", deref(key))
	}
	req := pipeline.Request{Spec: spec, ExtraKconfig: deref(extrakconfig), Kconfig: deref(kconfig)}
	ctx, stop := withStopSignals(ctx)
	defer stop()
	return pipeline.Push(ctx, pipeline.TransferRequest{Key: deref(key), Request: req, Stdout: os.Stdout})
}

// Pull fetches the kernel with cache key -key=KEY from the registry named by
// KTSTR_REMOTE_CACHE into the local cache, and prints its image path.
func (Cache) Pull(ctx context.Context,
	key *string, // the cache key to fetch
) error {
	ctx, stop := withStopSignals(ctx)
	defer stop()
	return pipeline.Pull(ctx, pipeline.TransferRequest{Key: deref(key), Stdout: os.Stdout})
}
