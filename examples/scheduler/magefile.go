//go:build mage

// An example magefile for a sched_ext scheduler repository. It imports
// ktbuild's kernel:* and cache:* targets and adds its own test target that
// builds (or reuses) a kernel and boots it.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/ktstr/ktbuild/lib/pipeline"
	//mage:import
	_ "github.com/ktstr/ktbuild/targets"
)

// Test builds the default kernel, or takes it from the cache, then runs the
// scheduler's tests against it. -kernel=SPEC picks another kernel.
func Test(ctx context.Context, kernel *string) error {
	req := pipeline.Request{Verbose: mg.Verbose()}
	if kernel != nil {
		req.Spec = *kernel
	}
	res, err := pipeline.Build(ctx, req)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "testing the scheduler on %s\n", res.ImagePath)
	// A real repository starts its test harness here, for example
	// ktstr with the image path.
	return nil
}
