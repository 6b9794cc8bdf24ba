#!/usr/bin/env bash
# Gradescope, emulated end to end (run as root; 227-330 s measured with the root cached:
# setup.sh 145-194 s, run_autograder 12-18 s, by the load on 2 shared cores; the first
# debootstrap adds ~3 min):
#   1. a fresh root: Debian bookworm minbase from debootstrap (the mirror read from
#      /etc/apt; cached as a tar in ~/.cache/golab/gradescope), standing in for
#      Gradescope's Ubuntu image, with the /autograder layout (source, submission,
#      results, submission_metadata.json);
#   2. `golab gradescope package --lab startup-trace --seed S`, unpacked in
#      /autograder/source, and its setup.sh run in that root (chroot): apt from the
#      mirror, the pinned Go (toolchains.txt) from a tarball served on 127.0.0.1 by this
#      script (made by packing the toolchains folder's copy as go.dev packs it; its own SHA-256 is
#      passed in, the official pin stays setup.sh's default), the pinned dlv built from
#      delve's source with its vendor/ folder (also served on 127.0.0.1, SHA-256 checked);
#   3. run_autograder in that root inside a user namespace of this script's own in which
#      user.max_user_namespaces=0 (so bubblewrap cannot make the sandbox's), for a
#      student whose id comes only from submission_metadata.json;
#   4. results.json checked against Gradescope's documented fields (score, output,
#      tests[] with name, score, max_score, status, visibility), the score computed from
#      the student's own build, and the output saying which isolation remained.
# Also runs the ignored test that grades with a toolchains folder (the pinned pair).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test-gradescope: run as root (debootstrap, chroot, user namespaces)" >&2; exit 1; }
t0=$(date +%s)
say() { echo "test-gradescope [$(($(date +%s) - t0))s]: $*" >&2; }

# shellcheck source=scripts/pins.sh
. scripts/pins.sh
cache=${GOLAB_CACHE:-$HOME/.cache/golab}
toolchains=${GOLAB_TOOLCHAINS:-$cache/toolchains}
gopin=$toolchains/$pin_go
dlvsrc=${GOLAB_DELVE_SRC:-$toolchains/.work/dlvsrc/delve-$pin_dlv}
[ -x "$gopin/bin/go" ] || { echo "test-gradescope: no $gopin (scripts/fetch-toolchains.sh)" >&2; exit 1; }
[ -d "$dlvsrc/vendor" ] || { echo "test-gradescope: no delve $pin_dlv source with vendor/ at $dlvsrc (set GOLAB_DELVE_SRC)" >&2; exit 1; }
for t in debootstrap unshare python3 unzip readelf; do
  command -v "$t" >/dev/null || { echo "test-gradescope: $t is missing" >&2; exit 1; }
done

# shellcheck source=scripts/apt-lib.sh
. scripts/apt-lib.sh
mirror=$(debian_mirror)

# --- 1. the root ---------------------------------------------------------------------
RECIPE="golab-gradescope-root v1"
rootcache=$cache/gradescope
mkdir -p "$rootcache"
if [ ! -f "$rootcache/bookworm-minbase.tar" ] || [ "$(cat "$rootcache/bookworm-minbase.recipe" 2>/dev/null)" != "$RECIPE" ]; then
  say "debootstrap bookworm minbase (~3 min)"
  b=$(mktemp -d "$rootcache/.build.XXXXXX")
  debootstrap --variant=minbase --include=ca-certificates bookworm "$b/root" "$mirror" >"$b/log" 2>&1 ||
    { tail -n 30 "$b/log" >&2; exit 1; }
  printf 'deb %s bookworm main\n' "$mirror" >"$b/root/etc/apt/sources.list"
  tar -C "$b/root" --numeric-owner -cf "$rootcache/.root.tar" .
  mv "$rootcache/.root.tar" "$rootcache/bookworm-minbase.tar"
  echo "$RECIPE" >"$rootcache/bookworm-minbase.recipe"
  rm -rf --one-file-system "$b"
fi

work=$(mktemp -d /tmp/golab-gradescope.XXXXXX)
root=$work/root
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi
  if [ -d "$root" ]; then
    findmnt -R -n -l -o TARGET 2>/dev/null | grep "^$root" | sort -r |
      while read -r m; do umount -l "$m" 2>/dev/null || true; done || true
  fi
  if [ -z "${KEEP:-}" ]; then rm -rf --one-file-system "$work"; else say "kept $work"; fi
}
trap cleanup EXIT
mkdir -p "$root"
tar -C "$root" -xf "$rootcache/bookworm-minbase.tar"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
say "fresh root in $root"

# --- 2. what 127.0.0.1 serves: Go packed as go.dev packs it, delve's source ------------
srv=$work/srv
mkdir -p "$srv"
# go.dev's tarballs hold one top folder, go/.
gotar=go$pin_go_version.linux-amd64.tar.gz
dlvtar=delve-$pin_dlv.tar.gz
tar -C "$(dirname "$gopin")" -cf - --sort=name --owner=0 --group=0 --numeric-owner \
  --transform "s,^$(basename "$gopin"),go," "$(basename "$gopin")" | gzip -1 >"$srv/$gotar"
go_sha=$(sha256sum "$srv/$gotar" | cut -d' ' -f1)
tar -C "$(dirname "$dlvsrc")" -czf "$srv/$dlvtar" --sort=name --owner=0 --group=0 --numeric-owner \
  --transform "s,^$(basename "$dlvsrc"),delve-$pin_dlv," "$(basename "$dlvsrc")"
dlv_sha=$(sha256sum "$srv/$dlvtar" | cut -d' ' -f1)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$srv" "$port" >"$work/http.log" 2>&1 &
server=$!
for _ in $(seq 50); do python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/')" 2>/dev/null && break; sleep 0.1; done
say "serving Go (sha256 $go_sha) and delve's source on 127.0.0.1:$port"

# --- 3. the autograder zip -------------------------------------------------------------
cargo build --quiet
golab=$PWD/target/debug/golab
seed="gradescope-$(date +%s)"
GOLAB_LABS=$PWD/labs "$golab" gradescope package --lab startup-trace --seed "$seed" -o "$work/autograder.zip" >&2
ag=$root/autograder
mkdir -p "$ag/source" "$ag/submission" "$ag/results"
unzip -q "$work/autograder.zip" -d "$ag/source"
grep -q "$pin_go_sha256" "$ag/source/setup.sh" ||
  { echo "setup.sh lost the official Go pin" >&2; exit 1; }

# Entering the root: a mount namespace whose root it becomes (pivot_root, not chroot: the
# kernel refuses new user namespaces to a chrooted process, which would block the
# sandbox for another reason than the one under test), with its own /proc and /dev.
cat >"$work/enter.sh" <<EOF
set -eu
mount --make-rprivate /
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
cd "$root"
mkdir -p .oldroot
pivot_root . .oldroot
umount -l /.oldroot
rmdir /.oldroot
exec "\$@"
EOF
say "setup.sh in the root (apt, Go $pin_go_version, dlv $pin_dlv from source, golab)"
ts=$(date +%s)
unshare --mount --pid --fork bash "$work/enter.sh" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
  GOLAB_GO_BASE_URL="http://127.0.0.1:$port/" GOLAB_GO_SHA256="$go_sha" \
  GOLAB_DLV_SOURCE=tarball GOLAB_DLV_TARBALL_URL="http://127.0.0.1:$port/$dlvtar" \
  GOLAB_DLV_TARBALL_SHA256="$dlv_sha" \
  bash /autograder/source/setup.sh >"$work/setup.log" 2>&1 || { tail -n 40 "$work/setup.log" >&2; exit 1; }
setup_s=$(($(date +%s) - ts))
grep -q "go version go$pin_go_version linux/amd64" "$work/setup.log" || { echo "setup.sh did not install Go $pin_go_version" >&2; exit 1; }
grep -q "Version: $pin_dlv" "$work/setup.log" || { echo "setup.sh did not install dlv $pin_dlv" >&2; exit 1; }
grep -q "^sandbox: starts here" "$work/setup.log" || { echo "setup.sh did not find the sandbox starting (as root, namespaces allowed)" >&2; grep "^sandbox" "$work/setup.log" >&2; exit 1; }
say "setup.sh done in ${setup_s}s: $(grep '^sandbox: ' "$work/setup.log")"

# --- 4. a student's submission, made on the host with the course's Go -------------------
student=s1234
printf 'student\n%s\n' "$student" >"$work/roster.csv"
GOLAB_LABS=$PWD/labs "$golab" assign --lab startup-trace --seed "$seed" --roster "$work/roster.csv" -o "$work/handouts" >&2
h=$work/handouts/$student
(cd "$h" && GOROOT=$gopin GOTOOLCHAIN=local "$gopin/bin/go" build -gcflags "all=-l -N" -o main .)
entry=$(readelf -h "$h/main" | awk '/Entry point address:/ {print $4}')
rm "$h/main"
chain=$(GOLAB_LABS=$PWD/labs "$golab" reference startup-trace --go "$pin_go_version" --json |
  python3 -c 'import json,sys; print("[" + ", ".join(s["function"] for s in json.load(sys.stdin)["chain"]) + "]")')
cp "$h/main.go" "$h/go.mod" "$ag/submission/"
# A handout file edited to claim another id and seed: the grader must ignore it.
printf 'lab: startup-trace\nseed: mine\nstudent: someone-else\n' >"$ag/submission/.golab-handout.yaml"
cat >"$ag/submission/answers.yaml" <<EOF
lab: startup-trace
go: "go version go$pin_go_version linux/amd64"
answers:
  entry-point: {address: $entry, symbol: _rt0_amd64_linux}
  startup-chain: $chain
  why-runnext: "the new g runs next on the same P, warm in the cache"
EOF
cat >"$ag/submission_metadata.json" <<EOF
{"id": 123456, "created_at": "2026-12-01T14:22:32.365935-07:00",
 "assignment": {"due_date": "2026-12-31T23:00:00.000000-07:00", "title": "startup-trace"},
 "submission_method": "upload",
 "users": [{"email": "$student@example.edu", "id": 4242, "name": "Student User"}],
 "previous_submissions": []}
EOF

# --- 5. run_autograder with user namespaces unavailable ----------------------------------
say "run_autograder in a user namespace where user.max_user_namespaces=0"
# In the root: the sandbox starts (evidence that only the sysctl below blocks it), then
# user.max_user_namespaces=0 for this namespace and those below it, then run_autograder.
cat >"$work/inner.sh" <<'EOF'
set -eu
echo "before: $(golab gradescope probe)"
echo 0 > /proc/sys/user/max_user_namespaces
if unshare --user true 2>/dev/null; then echo "user namespaces still work" >&2; exit 1; fi
echo "after: $(golab gradescope probe)"
cd /autograder
exec /usr/bin/env -i PATH=/usr/local/go/bin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
  /autograder/source/run_autograder
EOF
cp "$work/inner.sh" "$root/inner.sh"
# As root outside, the user namespace's ids are mapped 1:1 (0-65535), so the uids the
# reduced runner takes exist in it; then nothing in it can make a user namespace.
run_blocked() { # LOG
  rm -f "$work/go.fifo"
  mkfifo "$work/go.fifo"
  unshare --user --mount --pid --fork bash -c "read -r _ < '$work/go.fifo'; exec bash '$work/enter.sh' /usr/bin/env PATH=/usr/local/bin:/usr/bin:/bin bash /inner.sh" >"$1" 2>&1 &
  local upid=$!
  # Every process has a uid_map: wait until unshare is in its new user namespace, or the
  # write below lands on the host's (EPERM).
  local own
  own=$(readlink /proc/self/ns/user)
  for _ in $(seq 100); do
    ns=$(readlink "/proc/$upid/ns/user" 2>/dev/null || true)
    [ -n "$ns" ] && [ "$ns" != "$own" ] && break
    sleep 0.1
  done
  echo "0 0 65536" >"/proc/$upid/uid_map"
  echo "0 0 65536" >"/proc/$upid/gid_map"
  echo go >"$work/go.fifo"
  wait "$upid" || { cat "$1" >&2; echo "run_autograder failed" >&2; exit 1; }
}
tr=$(date +%s)
run_blocked "$work/run.log"
run_s=$(($(date +%s) - tr))
say "run_autograder done in ${run_s}s"
if ! { grep -q "^before: sandbox: starts here" "$work/run.log" && grep -q "^after: sandbox: cannot start here" "$work/run.log"; }; then
  echo "the sysctl did not make the difference:" >&2
  grep "^before\|^after" "$work/run.log" >&2
  exit 1
fi

# --- 6. results.json against Gradescope's documented fields ------------------------------
python3 - "$ag/results/results.json" "$student" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
student = sys.argv[2]
def need(cond, what):
    if not cond:
        print("results.json: " + what + "\n" + json.dumps(r, indent=1)[:4000], file=sys.stderr)
        sys.exit(1)
need(isinstance(r.get("score"), (int, float)), "score is a number")
need(isinstance(r.get("output"), str), "output is text")
need(isinstance(r.get("tests"), list) and r["tests"], "tests[] is a non-empty list")
for t in r["tests"]:
    for k, typ in [("name", str), ("score", (int, float)), ("max_score", (int, float)), ("visibility", str)]:
        need(isinstance(t.get(k), typ), f"test {t.get('name')}: {k}")
    need(t["visibility"] in ("hidden", "after_due_date", "after_published", "visible"), "visibility is one of Gradescope's")
    if t["max_score"] > 0:
        need(t.get("status") in ("passed", "failed"), f"test {t['name']}: status")
need(r["extra_data"]["student"] == student, f"the student id from submission_metadata.json, not {r['extra_data']['student']}")
need(r["score"] == 6, f"the right answers for the student's own build score 6, not {r['score']}")
need(all(t["status"] == "passed" for t in r["tests"] if t["max_score"] > 0), "every automatic test passed")
need("isolation: the sandbox cannot start here" in r["output"] and "user namespaces are blocked" in r["output"], "the output says the isolation is reduced")
need("as uid 62000+" in r["output"] and "rlimits" in r["output"], "the output says which isolation remained")
need("Your variant:" in r["output"], "the variant is named")
print("results.json: score %s, %d tests, isolation stated" % (r["score"], len(r["tests"])))
EOF
grep -q "go$pin_go_version" "$work/run.log" || { echo "run_autograder did not grade with go$pin_go_version" >&2; tail -n 30 "$work/run.log" >&2; exit 1; }

# --- 6b. what the reduced isolation holds: a program that tries --------------------------
say "run_autograder again, for a main.go that reports its uid and tries the grader's files"
{
  sed '1s/^package main$/package main\n\nimport (\n\t"os"\n\t"strconv"\n)/' "$h/main.go"
  cat <<'GO'

func init() {
	proof := "uid=" + strconv.Itoa(os.Getuid())
	if os.WriteFile("/autograder/results/results.json", []byte(`{"score": 1000}`), 0o644) == nil {
		proof += " wrote-results"
	}
	if _, err := os.ReadFile("/autograder/source/golab-seed.txt"); err == nil {
		proof += " read-seed"
	}
	if os.WriteFile("/autograder/source/run_autograder", []byte("#!/bin/sh\n"), 0o755) == nil {
		proof += " wrote-autograder"
	}
	// The proof goes into a folder the test made (root's): what the program leaves in
	// /tmp itself is removed after its run, as golab-left shows.
	os.WriteFile("/tmp/proof/golab-proof", []byte(proof), 0o644)
	os.WriteFile("/tmp/golab-left", []byte("x"), 0o644)
}
GO
} >"$ag/submission/main.go"
rm -rf "$root/tmp/proof" "$root/tmp/golab-left"
mkdir -p "$root/tmp/proof"
chmod 1777 "$root/tmp/proof"
# With a seed only the assigned variant is built, never the main.go a student sends: this
# run is without one (no golab-seed.txt), so the student's own program is what runs.
rm -f "$ag/source/golab-seed.txt"
run_blocked "$work/run2.log"
proof=$(cat "$root/tmp/proof/golab-proof" 2>/dev/null || true)
if [ -e "$root/tmp/golab-left" ]; then echo "the program's file in /tmp was left behind" >&2; exit 1; fi
say "the program said: ${proof:-nothing}"
[ "$proof" = "uid=62000" ] || { echo "the program ran as '${proof:-?}', not uid 62000 alone" >&2; tail -n 30 "$work/run2.log" >&2; exit 1; }
python3 - "$ag/results/results.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["score"] != 1000 and "isolation:" in r["output"], r
assert "your main.go differs from the lab's program" in r["output"], r["output"]
print("results.json after the attempt: score %s, written by golab" % r["score"])
PY

# --- 7. the grader with a toolchains folder ------------------------------------------------
say "cargo test: grading with a toolchains folder ($pin_go, dlv-$pin_dlv)"
GOLAB_TOOLCHAINS=$toolchains cargo test --quiet --test grade_questions -- --ignored >&2

say "passed: setup.sh ${setup_s}s, run_autograder ${run_s}s, all $(($(date +%s) - t0))s"
