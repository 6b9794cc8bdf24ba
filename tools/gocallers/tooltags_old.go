//go:build !go1.17
// +build !go1.17

package main

import "go/build"

// Before Go 1.17 go/build had no ToolTags field; BuildTags are matched the
// same way, so the target toolchain's tags still take effect.
func setToolTags(ctx *build.Context, tags []string) {
	ctx.BuildTags = append(ctx.BuildTags, tags...)
}
