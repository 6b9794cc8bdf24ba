#!/bin/bash -l
# golab-warm: after each boot of a baked lab VM (sshd is up already), one build with the
# labs' flags and one short session of each debugger, so that the first lab run finds the
# toolchain in the page cache and, under software emulation, its code translated already
# (QEMU keeps translated code per guest page across processes). Best effort: a failure
# costs only the warm-up. Run as the lab user by golab-warm.service.
set -u
d=$(mktemp -d) || exit 0
trap 'rm -rf "$d"' EXIT
cd "$d" || exit 0
cat >main.go <<'GO'
package main

func main() {
	go func() {}()
	println("warm")
}
GO
export GOTOOLCHAIN=local GOFLAGS=-mod=mod GOPROXY=off
go build -gcflags "all=-l -N" -o main main.go || exit 0
gdb -nx -q -batch -ex 'break main.main' -ex run -ex bt ./main </dev/null >/dev/null 2>&1 || true
printf 'break main.main\ncontinue\nexit\n' >init
timeout 300 dlv exec --init init ./main </dev/null >/dev/null 2>&1 || true
echo "golab-warm: go build, gdb and dlv warmed"
