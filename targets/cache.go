package targets

import (
	"context"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/ktstr/ktbuild/lib/pipeline"
)

// Cache lists and moves cached kernels.
type Cache mg.Namespace

// List lists cached kernels, newest first, with corrupt entries last and
// tags such as "stale kconfig". -json prints every field for machines.
func (Cache) List(ctx context.Context, json *bool) error {
	return pipeline.List(ctx, pipeline.ListRequest{JSON: derefBool(json), Stdout: os.Stdout, Stderr: os.Stderr})
}
