package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/ktstr/ktbuild/lib/source"
)

// buildRange builds every release of an A..B range, going on past failures,
// and reports all of them at the end. The result is the last kernel built.
func (b *builder) buildRange(ctx context.Context, spec source.Spec) (Result, error) {
	versions, err := b.expandRange(ctx, spec)
	if err != nil {
		return Result{}, err
	}
	var last Result
	var failed []error
	for _, v := range versions {
		b.say("range %s: building %s", spec.Raw, v)
		one, err := source.ParseSpec(v)
		if err == nil {
			last, err = b.buildOne(ctx, one)
		}
		if err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", v, err))
			if ctx.Err() != nil {
				break
			}
		}
	}
	if len(failed) > 0 {
		return last, fmt.Errorf("%d of %d kernels in %s failed: %w", len(failed), len(versions), spec.Raw, errors.Join(failed...))
	}
	return last, nil
}
