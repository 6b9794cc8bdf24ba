//go:build go1.17
// +build go1.17

package main

import "go/build"

// setToolTags is split by Go version because build.Context.ToolTags appeared
// in Go 1.17 and go.mod promises the tool builds with Go 1.15.
func setToolTags(ctx *build.Context, tags []string) {
	ctx.ToolTags = tags
}
