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
	if len(versions) == 0 {
		return Result{}, err
	}
	var last Result
	var failed []error
	if err != nil {
		failed = append(failed, err)
	}
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
		noun := "failures"
		if len(failed) == 1 {
			noun = "failure"
		}
		return last, fmt.Errorf("range %s: %d %s across %d releases found: %w", spec.Raw, len(failed), noun, len(versions), errors.Join(failed...))
	}
	return last, nil
}
