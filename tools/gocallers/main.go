// Command gocallers lists, for one Go tree, which functions of package runtime
// call the scheduler functions the lab asks about (runqget, schedule, execute, ...).
//
// It reads only the runtime's non-test files that go/build selects for
// GOOS=linux GOARCH=amd64 with the target toolchain's own tool tags
// (GOEXPERIMENT, GOAMD64), and works on syntax alone: a use is an identifier
// naming a target function, attributed to the enclosing top-level function (a
// use inside a func literal counts for the function around it, closure=true).
// It does not type-check, so it sees what "find usages" sees, not what the
// linker keeps.
//
// Usage: go run . -goroot ROOT > go1.X.json
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"io/ioutil"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// targets are the runtime functions golab's reference describes. Both
// spellings of findRunnable are listed: it was findrunnable before Go 1.19.
var targets = []string{
	"runqget", "runqput", "globrunqget", "globrunqput", "schedule",
	"findrunnable", "findRunnable", "stealWork", "execute", "newproc1", "sysmon",
}

// Use is one place where a target function is named.
type Use struct {
	Caller  string `json:"caller"`
	File    string `json:"file"`
	Line    int    `json:"line"`
	Closure bool   `json:"closure"`
	// Kind is "call" for f(...), "go"/"defer" for go f()/defer f(), and
	// "funcvalue" when f is used as a value (newm(sysmon, ...)).
	Kind string `json:"kind"`
	Note string `json:"note,omitempty"`
}

// AsmUse is a reference to a target from an assembly file (CALL/JMP runtime·f(SB)).
type AsmUse struct {
	Symbol string `json:"symbol"`
	File   string `json:"file"`
	Line   int    `json:"line"`
	Text   string `json:"text"`
}

// Function is what the reference holds for one target.
type Function struct {
	Defined string   `json:"defined"`
	Callers []Use    `json:"callers"`
	Asm     []AsmUse `json:"asm,omitempty"`
}

// Report is the whole output for one Go tree.
type Report struct {
	Go        string               `json:"go"`
	Source    string               `json:"source"`
	ToolTags  []string             `json:"tool_tags"`
	AsmFiles  int                  `json:"asm_files"`
	Functions map[string]*Function `json:"functions"`
	Absent    []string             `json:"absent"`
	Skipped   []Use                `json:"skipped,omitempty"`
}

func main() {
	goroot := flag.String("goroot", "", "root of the Go tree to read (the directory holding src/runtime)")
	tooltags := flag.String("tooltags", "auto", `build tool tags (GOEXPERIMENT, GOAMD64): "auto" asks ROOT/bin/go, "none" uses none, or a comma-separated list`)
	flag.Parse()
	if *goroot == "" {
		fail("missing -goroot ROOT (for the running Go: -goroot $(go env GOROOT))")
	}
	root, err := filepath.Abs(*goroot)
	if err != nil {
		fail("cannot resolve -goroot %s: %v", *goroot, err)
	}
	rep, err := run(root, *tooltags)
	if err != nil {
		fail("%v", err)
	}
	out, err := encode(rep)
	if err != nil {
		fail("encoding JSON: %v", err)
	}
	os.Stdout.Write(out)
}

// encode writes one caller per line, so that a diff between two Go versions
// reads as a diff of caller sets.
func encode(rep *Report) ([]byte, error) {
	var b strings.Builder
	field := func(name string, v interface{}, last bool) error {
		j, err := json.Marshal(v)
		if err != nil {
			return err
		}
		sep := ","
		if last {
			sep = ""
		}
		fmt.Fprintf(&b, "  %q: %s%s\n", name, j, sep)
		return nil
	}
	list := func(indent string, items interface{}) error {
		j, err := json.Marshal(items)
		if err != nil {
			return err
		}
		var raw []json.RawMessage
		if err := json.Unmarshal(j, &raw); err != nil {
			return err
		}
		if len(raw) == 0 {
			b.WriteString("[]")
			return nil
		}
		b.WriteString("[\n")
		for i, r := range raw {
			b.WriteString(indent + "  " + string(r))
			if i < len(raw)-1 {
				b.WriteString(",")
			}
			b.WriteString("\n")
		}
		b.WriteString(indent + "]")
		return nil
	}
	b.WriteString("{\n")
	for _, f := range []struct {
		name string
		v    interface{}
	}{{"go", rep.Go}, {"source", rep.Source}, {"tool_tags", rep.ToolTags}, {"asm_files", rep.AsmFiles}, {"absent", rep.Absent}} {
		if err := field(f.name, f.v, false); err != nil {
			return nil, err
		}
	}
	names := make([]string, 0, len(rep.Functions))
	for n := range rep.Functions {
		names = append(names, n)
	}
	sort.Strings(names)
	b.WriteString("  \"functions\": {\n")
	for i, n := range names {
		fn := rep.Functions[n]
		fmt.Fprintf(&b, "    %q: {\n      \"defined\": %q,\n      \"callers\": ", n, fn.Defined)
		if err := list("      ", fn.Callers); err != nil {
			return nil, err
		}
		if len(fn.Asm) > 0 {
			b.WriteString(",\n      \"asm\": ")
			if err := list("      ", fn.Asm); err != nil {
				return nil, err
			}
		}
		b.WriteString("\n    }")
		if i < len(names)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("  }")
	if len(rep.Skipped) > 0 {
		b.WriteString(",\n  \"skipped\": ")
		if err := list("  ", rep.Skipped); err != nil {
			return nil, err
		}
	}
	b.WriteString("\n}\n")
	return []byte(b.String()), nil
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "gocallers: "+format+"\n", args...)
	os.Exit(1)
}

func run(root, tooltagsFlag string) (*Report, error) {
	version, err := goVersion(root)
	if err != nil {
		return nil, err
	}
	tags, err := toolTags(root, tooltagsFlag)
	if err != nil {
		return nil, err
	}

	ctx := build.Default
	ctx.GOROOT = root
	ctx.GOPATH = ""
	ctx.GOOS = "linux"
	ctx.GOARCH = "amd64"
	ctx.CgoEnabled = true
	ctx.Compiler = "gc"
	ctx.BuildTags = nil
	ctx.ReleaseTags = releaseTags(version)
	setToolTags(&ctx, tags)

	dir := filepath.Join(root, "src", "runtime")
	pkg, err := ctx.ImportDir(dir, 0)
	if err != nil {
		return nil, fmt.Errorf("reading package runtime in %s: %v (is -goroot the root of a Go tree?)", dir, err)
	}
	goFiles := append(append([]string{}, pkg.GoFiles...), pkg.CgoFiles...)
	sort.Strings(goFiles)

	want := map[string]bool{}
	for _, t := range targets {
		want[t] = true
	}
	fset := token.NewFileSet()
	defs := map[string][]string{}
	uses := map[string][]Use{}
	var skipped []Use
	for _, name := range goFiles {
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, 0)
		if err != nil {
			return nil, fmt.Errorf("parsing runtime/%s: %v", name, err)
		}
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil && want[d.Name.Name] {
					defs[d.Name.Name] = append(defs[d.Name.Name], position(fset, d.Pos()))
				}
				if d.Body != nil {
					collect(fset, d.Body, funcName(d), "", want, uses, &skipped)
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					vs, ok := spec.(*ast.ValueSpec)
					if !ok {
						continue
					}
					for _, v := range vs.Values {
						// The compiler runs package-level initialisers in the package's init.
						collect(fset, v, "runtime.init", "initialiser of package-level "+vs.Names[0].Name, want, uses, &skipped)
					}
				}
			}
		}
	}

	asm, err := asmUses(dir, pkg.SFiles, want)
	if err != nil {
		return nil, err
	}

	rep := &Report{
		Go:        version,
		Source:    fmt.Sprintf("GOROOT/src/runtime, GOOS=linux GOARCH=amd64, files: %d", len(goFiles)),
		ToolTags:  tags,
		AsmFiles:  len(pkg.SFiles),
		Functions: map[string]*Function{},
		Absent:    []string{},
		Skipped:   skipped,
	}
	if rep.ToolTags == nil {
		rep.ToolTags = []string{}
	}
	for _, t := range targets {
		if len(defs[t]) == 0 {
			rep.Absent = append(rep.Absent, "runtime."+t)
			continue
		}
		if len(defs[t]) > 1 {
			fmt.Fprintf(os.Stderr, "gocallers: runtime.%s is defined %d times (%s): build constraints not applied as the toolchain would?\n", t, len(defs[t]), strings.Join(defs[t], ", "))
		}
		cs := uses[t]
		if cs == nil {
			cs = []Use{}
		}
		sort.SliceStable(cs, func(i, j int) bool {
			if cs[i].Caller != cs[j].Caller {
				return cs[i].Caller < cs[j].Caller
			}
			if cs[i].Line != cs[j].Line {
				return cs[i].Line < cs[j].Line
			}
			return cs[i].File < cs[j].File
		})
		rep.Functions["runtime."+t] = &Function{Defined: strings.Join(defs[t], ", "), Callers: cs, Asm: asm[t]}
	}
	return rep, nil
}

// collect records every use of a target name inside node, attributed to caller.
func collect(fset *token.FileSet, node ast.Node, caller, note string, want map[string]bool, uses map[string][]Use, skipped *[]Use) {
	var stack []ast.Node
	ast.Inspect(node, func(n ast.Node) bool {
		if n == nil {
			stack = stack[:len(stack)-1]
			return true
		}
		stack = append(stack, n)
		id, ok := n.(*ast.Ident)
		if !ok || !want[id.Name] {
			return true
		}
		var parent, grand ast.Node
		if len(stack) >= 2 {
			parent = stack[len(stack)-2]
		}
		if len(stack) >= 3 {
			grand = stack[len(stack)-3]
		}
		closure := false
		for _, s := range stack {
			if _, ok := s.(*ast.FuncLit); ok {
				closure = true
				break
			}
		}
		pos := fset.Position(id.Pos())
		u := Use{Caller: caller, File: filepath.Base(pos.Filename), Line: pos.Line, Closure: closure, Note: note}

		if sel, ok := parent.(*ast.SelectorExpr); ok && sel.Sel == id {
			return true // x.schedule: a field or method, not the function
		}
		if kv, ok := parent.(*ast.KeyValueExpr); ok && kv.Key == id {
			if _, ok := grand.(*ast.CompositeLit); ok {
				return true // struct literal key
			}
		}
		// The parser resolves names declared in the same file: a local
		// variable or parameter with a target's name shadows the function.
		if id.Obj != nil && id.Obj.Kind != ast.Fun {
			u.Kind = "shadowed"
			u.Note = "local " + id.Obj.Kind.String() + " " + id.Name
			*skipped = append(*skipped, u)
			return true
		}
		u.Kind = "funcvalue"
		if call, ok := parent.(*ast.CallExpr); ok && call.Fun == id {
			u.Kind = "call"
			switch g := grand.(type) {
			case *ast.GoStmt:
				if g.Call == call {
					u.Kind = "go"
				}
			case *ast.DeferStmt:
				if g.Call == call {
					u.Kind = "defer"
				}
			}
		}
		uses[id.Name] = append(uses[id.Name], u)
		return true
	})
}

// funcName names a declaration the way the Go toolchain names its symbol:
// runtime.f, runtime.(*p).destroy, runtime.T.m, runtime.(*T[...]).m.
func funcName(d *ast.FuncDecl) string {
	if d.Recv == nil || len(d.Recv.List) == 0 {
		return "runtime." + d.Name.Name
	}
	t := d.Recv.List[0].Type
	star := false
	if s, ok := t.(*ast.StarExpr); ok {
		star, t = true, s.X
	}
	typ := ""
	// The first identifier is the type name; anything around it is type
	// parameters (IndexExpr / IndexListExpr, the latter unknown before Go 1.18).
	ast.Inspect(t, func(n ast.Node) bool {
		if id, ok := n.(*ast.Ident); ok && typ == "" {
			typ = id.Name
		}
		return typ == ""
	})
	if _, plain := t.(*ast.Ident); !plain {
		typ += "[...]"
	}
	if star {
		return "runtime.(*" + typ + ")." + d.Name.Name
	}
	return "runtime." + typ + "." + d.Name.Name
}

func position(fset *token.FileSet, p token.Pos) string {
	pos := fset.Position(p)
	return filepath.Base(pos.Filename) + ":" + strconv.Itoa(pos.Line)
}

var textRe = regexp.MustCompile(`^TEXT\s+(?:runtime)?·([A-Za-z0-9_]+)(?:<[A-Za-z0-9]+>)?\(SB\)`)
var refRe = regexp.MustCompile(`(?:runtime)?·([A-Za-z0-9_]+)(?:<[A-Za-z0-9]+>)?\(SB\)`)

// asmUses finds targets named in the assembly files go/build selected.
func asmUses(dir string, sfiles []string, want map[string]bool) (map[string][]AsmUse, error) {
	out := map[string][]AsmUse{}
	for _, name := range sfiles {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("reading runtime/%s: %v", name, err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		symbol, line := "", 0
		for sc.Scan() {
			line++
			text := strings.TrimSpace(sc.Text())
			if i := strings.Index(text, "//"); i >= 0 {
				text = strings.TrimSpace(text[:i])
			}
			if m := textRe.FindStringSubmatch(text); m != nil {
				symbol = "runtime." + m[1]
				continue
			}
			for _, m := range refRe.FindAllStringSubmatch(text, -1) {
				if want[m[1]] {
					out[m[1]] = append(out[m[1]], AsmUse{Symbol: symbol, File: name, Line: line, Text: text})
				}
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("reading runtime/%s: %v", name, err)
		}
	}
	return out, nil
}

// goVersion reads ROOT/VERSION (release trees), else asks ROOT/bin/go.
func goVersion(root string) (string, error) {
	if b, err := ioutil.ReadFile(filepath.Join(root, "VERSION")); err == nil {
		first := strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])
		if strings.HasPrefix(first, "go") {
			return first, nil
		}
	}
	out, err := goCmd(root, "env", "GOVERSION")
	if err != nil || !strings.HasPrefix(out, "go") {
		return "", fmt.Errorf("cannot tell the Go version of %s: no VERSION file and `bin/go env GOVERSION` failed (%v)", root, err)
	}
	return out, nil
}

// toolTags returns the tags the target toolchain itself would use for
// linux/amd64. They decide files such as lockrank_on.go or map_swiss.go, and
// the running go/build only knows its own version's defaults.
func toolTags(root, flagValue string) ([]string, error) {
	switch flagValue {
	case "none":
		return nil, nil
	case "auto":
	default:
		return strings.Split(flagValue, ","), nil
	}
	out, err := goCmd(root, "list", "-f", `{{join context.ToolTags ","}}`, "runtime")
	if err != nil {
		// Before Go 1.17 there were no tool tags; go list's context has no such field.
		if strings.Contains(err.Error(), "ToolTags") {
			return nil, nil
		}
		return nil, fmt.Errorf("asking %s/bin/go for its tool tags: %v (pass -tooltags none or a list)", root, err)
	}
	if out == "" {
		return nil, nil
	}
	return strings.Split(out, ","), nil
}

func goCmd(root string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(root, "bin", "go"), args...)
	cmd.Dir = root
	env := []string{}
	for _, kv := range os.Environ() {
		k := strings.SplitN(kv, "=", 2)[0]
		switch k {
		case "GOROOT", "GOOS", "GOARCH", "GOEXPERIMENT", "GOAMD64", "GOFLAGS", "GOTOOLCHAIN", "CGO_ENABLED", "GOWORK":
			continue
		}
		env = append(env, kv)
	}
	cmd.Env = append(env, "GOROOT="+root, "GOOS=linux", "GOARCH=amd64", "GOFLAGS=", "GOTOOLCHAIN=local", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// releaseTags are go1.1 ... go1.N for the target version, not the running one.
func releaseTags(version string) []string {
	minor := 0
	if m := regexp.MustCompile(`^go1\.(\d+)`).FindStringSubmatch(version); m != nil {
		minor, _ = strconv.Atoi(m[1])
	}
	var tags []string
	for i := 1; i <= minor; i++ {
		tags = append(tags, "go1."+strconv.Itoa(i))
	}
	return tags
}
