// goshape reads a lab's Go program (package main in one folder) and, for one set of
// command-line arguments, writes what each goroutine does that the scheduler sees:
// the go statements, runtime.Gosched calls, channel sends, receives and closes,
// WaitGroup Add/Done/Wait, and the values it records. golab's run-order model
// replays that on one P to predict the whole order.
//
// It interprets the program's syntax (go/ast) with the given arguments. Each
// goroutine's body is worked out when it is started; that is sound only if nothing
// it reads changes after that, so a program whose goroutines read what others write,
// whose control flow depends on a received value, or that uses something the model
// does not have (select, mutexes, timers, maps iterated in random order, ...) is
// refused with the reason and the line.
//
// Usage: goshape -dir DIR [-record NAME] [-- ARGS...]
// Output (stdout, JSON): {"goroutines": [...], "chans": [...], "wgs": N} or
// {"refused": "main.go:12: why"}. It builds with every Go from 1.15.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/ioutil"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
)

// Op is one step of a goroutine that the scheduler sees.
type Op struct {
	Op    string `json:"op"` // go gosched record send recv close wgadd wgwait exit
	G     int    `json:"g,omitempty"`
	Ch    int    `json:"ch,omitempty"`
	Wg    int    `json:"wg,omitempty"`
	N     int64  `json:"n,omitempty"`
	Label string `json:"label,omitempty"`
	Pos   string `json:"pos"`
}

type Goroutine struct {
	Label string `json:"label"`
	Ops   []Op   `json:"ops"`
}

type Output struct {
	Refused    string      `json:"refused,omitempty"`
	Goroutines []Goroutine `json:"goroutines,omitempty"`
	Chans      []int64     `json:"chans,omitempty"`
	Wgs        int         `json:"wgs,omitempty"`
}

// refusal unwinds the interpreter with the reason.
type refusal struct{ why string }

// Values: int64, bool, string, *Chan, *WG, *Slice, *Map, *Closure, *Cell (a pointer),
// Unknown, Opaque, nil.
type Chan struct{ id int }
type WG struct{ id int }
type Slice struct{ elems []*Cell }
type Map struct {
	m    map[string]*Cell
	zero interface{}
}
type Closure struct {
	lit  *ast.FuncLit
	decl *ast.FuncDecl
	env  *Env
	name string
}
type Unknown struct{ why string }
type Opaque struct{ typ string }
type Tuple []interface{}

type Cell struct {
	v     interface{}
	owner int
	name  string
	// readers: goroutines other than the owner that read it (worked out early).
	readers map[int]string
}

type Env struct {
	vars   map[string]*Cell
	parent *Env
}

func (e *Env) lookup(n string) *Cell {
	for s := e; s != nil; s = s.parent {
		if c, ok := s.vars[n]; ok {
			return c
		}
	}
	return nil
}

type ctl int

const (
	ctlNone ctl = iota
	ctlBreak
	ctlContinue
	ctlReturn
	ctlExit
)

type frame struct {
	results []interface{}
	named   []*Cell
	defers  []func()
}

type Interp struct {
	fset      *token.FileSet
	funcs     map[string]*ast.FuncDecl
	consts    map[string]interface{}
	imports   map[string]string // local name -> path
	globals   *Env
	record    string
	args      []string
	loopvar   bool
	gs        []*Goroutine
	cur       int
	chans     []int64
	wgs       int
	steps     int
	ops       int
	mainWrote string
	frames    []*frame
}

const maxSteps = 20000000
const maxOps = 2000000

func (in *Interp) pos(n ast.Node) string {
	p := in.fset.Position(n.Pos())
	return fmt.Sprintf("%s:%d", filepath.Base(p.Filename), p.Line)
}

func (in *Interp) refuse(n ast.Node, f string, a ...interface{}) {
	panic(refusal{in.pos(n) + ": " + fmt.Sprintf(f, a...)})
}

func (in *Interp) emit(n ast.Node, op Op) {
	if in.cur == 0 && in.mainWrote != "" && op.Op != "exit" {
		in.refuse(n, "main writes to standard output (a system call, in which the P may be handed to another goroutine) at %s and then goes on scheduling; print only at the end", in.mainWrote)
	}
	in.ops++
	if in.ops > maxOps {
		in.refuse(n, "more than %d scheduler steps", maxOps)
	}
	op.Pos = in.pos(n)
	g := in.gs[in.cur]
	g.Ops = append(g.Ops, op)
}

func (in *Interp) step(n ast.Node) {
	in.steps++
	if in.steps > maxSteps {
		in.refuse(n, "the program takes more than %d steps to work out", maxSteps)
	}
}

func (in *Interp) newCell(name string, v interface{}) *Cell {
	return &Cell{v: v, owner: in.cur, name: name}
}

// read is a read of a variable by the running goroutine.
func (in *Interp) read(n ast.Node, c *Cell) interface{} {
	if _, unknown := c.v.(Unknown); !unknown && c.owner != in.cur {
		if c.readers == nil {
			c.readers = map[int]string{}
		}
		if _, ok := c.readers[in.cur]; !ok {
			c.readers[in.cur] = in.pos(n)
		}
	}
	return c.v
}

// write is a write of a variable by the running goroutine.
func (in *Interp) write(n ast.Node, c *Cell, v interface{}) {
	for g, at := range c.readers {
		if g != in.cur {
			in.refuse(n, "%s is changed here after %s read it (%s), and what it sees depends on when it runs", c.name, in.gs[g].Label, at)
		}
	}
	if c.owner != in.cur && in.cur != 0 {
		// A goroutine writes what another owns: from now on its value depends on
		// the order of execution.
		v = Unknown{fmt.Sprintf("%s, which %s writes at %s", c.name, in.gs[in.cur].Label, in.pos(n))}
	}
	c.v = v
}

func main() {
	dir := flag.String("dir", ".", "the program's folder")
	record := flag.String("record", "record", "the function whose calls record a value")
	flag.Parse()
	out := run(*dir, *record, flag.Args())
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func langLoopvar(dir string) bool {
	// Per-iteration loop variables: Go 1.22+ building a module whose go line is 1.22+.
	tv := strings.TrimPrefix(runtime.Version(), "go")
	if minor(tv) < 22 {
		return false
	}
	b, err := ioutil.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && f[0] == "go" {
			return minor(f[1]) >= 22
		}
	}
	return false
}

func minor(v string) int {
	p := strings.Split(v, ".")
	if len(p) < 2 {
		return 0
	}
	digits := p[1]
	for i, r := range digits {
		if r < '0' || r > '9' {
			digits = digits[:i]
			break
		}
	}
	m, _ := strconv.Atoi(digits)
	return m
}

func run(dir, record string, args []string) (out Output) {
	in := &Interp{
		fset:    token.NewFileSet(),
		funcs:   map[string]*ast.FuncDecl{},
		consts:  map[string]interface{}{},
		imports: map[string]string{},
		globals: &Env{vars: map[string]*Cell{}},
		record:  record,
		args:    append([]string{"./main"}, args...),
		loopvar: langLoopvar(dir),
	}
	defer func() {
		if r := recover(); r != nil {
			if rf, ok := r.(refusal); ok {
				out = Output{Refused: rf.why}
				return
			}
			panic(r)
		}
	}()
	names, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	sort.Strings(names)
	var files []*ast.File
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(in.fset, n, nil, 0)
		if err != nil {
			return Output{Refused: "the program does not parse: " + err.Error()}
		}
		if f.Name.Name != "main" {
			continue
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		return Output{Refused: "no package main in " + dir}
	}
	in.gs = []*Goroutine{{Label: "main"}}
	for _, f := range files {
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			name := p[strings.LastIndex(p, "/")+1:]
			if im.Name != nil {
				name = im.Name.Name
			}
			in.imports[name] = p
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv != nil {
					in.refuse(d, "method %s: methods of the program's own types are not modelled", d.Name.Name)
				}
				in.funcs[d.Name.Name] = d
			}
		}
	}
	for _, f := range files {
		for _, d := range f.Decls {
			if g, ok := d.(*ast.GenDecl); ok && (g.Tok == token.VAR || g.Tok == token.CONST) {
				in.genDecl(g, in.globals)
			}
		}
	}
	if in.funcs["init"] != nil {
		in.refuse(in.funcs["init"], "func init is not modelled")
	}
	if d := in.funcs[record]; d != nil {
		in.checkRecorder(d)
	} else {
		return Output{Refused: fmt.Sprintf("the program has no function %s (the function whose calls record a value; the run-order check's `record:` names another)", record)}
	}
	m := in.funcs["main"]
	if m == nil {
		return Output{Refused: "the program has no func main"}
	}
	in.frames = append(in.frames, &frame{})
	exited := false
	func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(exitNow); ok {
					exited = true
					return
				}
				panic(r)
			}
		}()
		in.block(m.Body.List, &Env{vars: map[string]*Cell{}, parent: in.globals})
	}()
	if !exited {
		in.runDefers(in.frames[len(in.frames)-1])
		in.emit(m.Body, Op{Op: "exit"})
	}
	out.Chans = in.chans
	out.Wgs = in.wgs
	for _, g := range in.gs {
		out.Goroutines = append(out.Goroutines, *g)
	}
	return out
}

// checkRecorder: the record function may compute and store, nothing the scheduler sees.
func (in *Interp) checkRecorder(d *ast.FuncDecl) {
	if d.Type.Params == nil || len(d.Type.Params.List) == 0 {
		in.refuse(d, "%s takes no argument: it must take the value it records", d.Name.Name)
	}
	ast.Inspect(d.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt, *ast.SendStmt, *ast.SelectStmt, *ast.DeferStmt:
			in.refuse(n, "%s, the record function, must not start, send, select or defer", d.Name.Name)
		case *ast.UnaryExpr:
			if n.Op == token.ARROW {
				in.refuse(n, "%s, the record function, must not receive", d.Name.Name)
			}
		case *ast.CallExpr:
			switch f := n.Fun.(type) {
			case *ast.Ident:
				switch f.Name {
				case "len", "cap", "append", "int", "int32", "int64", "uint32", "uint64", "uint":
					return true
				}
			case *ast.SelectorExpr:
				if x, ok := f.X.(*ast.Ident); ok && in.imports[x.Name] == "sync/atomic" {
					return true
				}
			}
			in.refuse(n, "%s, the record function, may only store (with sync/atomic), not call other functions", d.Name.Name)
		}
		return true
	})
}

func (in *Interp) genDecl(g *ast.GenDecl, env *Env) {
	var last []ast.Expr
	for i, s := range g.Specs {
		vs, ok := s.(*ast.ValueSpec)
		if !ok {
			continue
		}
		vals := vs.Values
		if g.Tok == token.CONST && len(vals) == 0 {
			vals = last
		}
		last = vals
		for k, n := range vs.Names {
			var v interface{}
			switch {
			case len(vals) == len(vs.Names):
				if g.Tok == token.CONST {
					in.consts["iota"] = int64(i)
				}
				v = in.expr(vals[k], env)
			case len(vals) == 1 && len(vs.Names) > 1:
				t := in.expr(vals[0], env)
				tu, ok := t.(Tuple)
				if !ok || len(tu) != len(vs.Names) {
					in.refuse(vs, "assignment count mismatch")
				}
				v = tu[k]
			case len(vals) == 0:
				v = in.zero(vs.Type)
			default:
				in.refuse(vs, "assignment count mismatch")
			}
			if n.Name == "_" {
				continue
			}
			env.vars[n.Name] = in.newCell(n.Name, v)
		}
	}
}

// zero is the zero value of a declared type.
func (in *Interp) zero(t ast.Expr) interface{} {
	switch t := t.(type) {
	case *ast.Ident:
		switch t.Name {
		case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "uintptr", "byte", "rune":
			return int64(0)
		case "bool":
			return false
		case "string":
			return ""
		}
		in.refuse(t, "variables of type %s are not modelled", t.Name)
	case *ast.SelectorExpr:
		pkg := ""
		if x, ok := t.X.(*ast.Ident); ok {
			pkg = in.imports[x.Name]
		}
		name := pkg + "." + t.Sel.Name
		switch name {
		case "sync.WaitGroup":
			in.wgs++
			return &WG{in.wgs}
		case "strings.Builder", "sync/atomic.Int32", "sync/atomic.Int64", "sync/atomic.Uint32", "sync/atomic.Uint64", "sync/atomic.Bool":
			return Opaque{name}
		}
		in.refuse(t, "variables of type %s are not modelled by the run-order model", name)
	case *ast.ArrayType:
		if t.Len == nil {
			return &Slice{}
		}
		in.refuse(t, "arrays are not modelled (use a slice)")
	case *ast.ChanType:
		return nil
	case *ast.MapType:
		return nil
	case *ast.FuncType:
		return nil
	}
	in.refuse(t, "variables of this type are not modelled")
	return nil
}

func (in *Interp) block(list []ast.Stmt, env *Env) ctl {
	for _, s := range list {
		if c := in.stmt(s, env); c != ctlNone {
			return c
		}
	}
	return ctlNone
}

func (in *Interp) stmt(s ast.Stmt, env *Env) ctl {
	in.step(s)
	switch s := s.(type) {
	case *ast.ExprStmt:
		in.exprMulti(s.X, env)
	case *ast.DeclStmt:
		g, ok := s.Decl.(*ast.GenDecl)
		if !ok || (g.Tok != token.VAR && g.Tok != token.CONST) {
			in.refuse(s, "declarations other than var and const are not modelled")
		}
		in.genDecl(g, env)
	case *ast.AssignStmt:
		in.assign(s, env)
	case *ast.IncDecStmt:
		c, idx := in.lvalue(s.X, env)
		v := in.loadL(s.X, c, idx)
		d := int64(1)
		if s.Tok == token.DEC {
			d = -1
		}
		in.storeL(s, c, idx, in.arith(s, token.ADD, v, d))
	case *ast.GoStmt:
		in.goStmt(s, env)
	case *ast.SendStmt:
		ch := in.expr(s.Chan, env)
		in.expr(s.Value, env)
		c, ok := ch.(*Chan)
		if !ok {
			in.refuse(s, "a send on a channel the model cannot follow (%s)", describe(ch))
		}
		in.emit(s, Op{Op: "send", Ch: c.id})
	case *ast.BlockStmt:
		return in.block(s.List, &Env{vars: map[string]*Cell{}, parent: env})
	case *ast.IfStmt:
		e := &Env{vars: map[string]*Cell{}, parent: env}
		if s.Init != nil {
			if c := in.stmt(s.Init, e); c != ctlNone {
				return c
			}
		}
		if in.cond(s.Cond, e) {
			return in.block(s.Body.List, &Env{vars: map[string]*Cell{}, parent: e})
		} else if s.Else != nil {
			return in.stmt(s.Else, e)
		}
	case *ast.ForStmt:
		return in.forStmt(s, env)
	case *ast.RangeStmt:
		return in.rangeStmt(s, env)
	case *ast.SwitchStmt:
		return in.switchStmt(s, env)
	case *ast.BranchStmt:
		if s.Label != nil {
			in.refuse(s, "labelled break/continue is not modelled")
		}
		switch s.Tok {
		case token.BREAK:
			return ctlBreak
		case token.CONTINUE:
			return ctlContinue
		}
		in.refuse(s, "%s is not modelled", s.Tok)
	case *ast.ReturnStmt:
		f := in.frames[len(in.frames)-1]
		if len(s.Results) == 1 && len(f.named) != 1 && len(f.named) > 1 {
			t, _ := in.expr(s.Results[0], env).(Tuple)
			f.results = t
		} else if len(s.Results) > 0 {
			f.results = nil
			for _, r := range s.Results {
				f.results = append(f.results, in.expr(r, env))
			}
		} else {
			f.results = nil
			for _, c := range f.named {
				f.results = append(f.results, c.v)
			}
		}
		return ctlReturn
	case *ast.DeferStmt:
		in.deferStmt(s, env)
	case *ast.EmptyStmt:
	case *ast.SelectStmt:
		in.refuse(s, "select is not modelled (which case runs depends on timing)")
	case *ast.LabeledStmt:
		in.refuse(s, "labelled statements are not modelled")
	default:
		in.refuse(s, "this kind of statement (%T) is not modelled", s)
	}
	return ctlNone
}

func (in *Interp) cond(e ast.Expr, env *Env) bool {
	v := in.expr(e, env)
	switch v := v.(type) {
	case bool:
		return v
	case Unknown:
		in.refuse(e, "this condition depends on %s; the order it leads to depends on timing", v.why)
	}
	in.refuse(e, "a condition the model cannot work out (%s)", describe(v))
	return false
}

func (in *Interp) intOf(e ast.Expr, v interface{}, what string) int64 {
	switch v := v.(type) {
	case int64:
		return v
	case Unknown:
		in.refuse(e, "%s depends on %s", what, v.why)
	}
	in.refuse(e, "%s is not a number the model can work out (%s)", what, describe(v))
	return 0
}

func describe(v interface{}) string {
	switch v := v.(type) {
	case Unknown:
		return v.why
	case nil:
		return "nil"
	case Opaque:
		return "a " + v.typ
	}
	return fmt.Sprintf("%T", v)
}

func (in *Interp) forStmt(s *ast.ForStmt, env *Env) ctl {
	outer := &Env{vars: map[string]*Cell{}, parent: env}
	if s.Init != nil {
		in.stmt(s.Init, outer)
	}
	// Go 1.22 loop variables: each iteration has its own copy, made before the post
	// statement runs.
	perIter := in.loopvar && len(outer.vars) > 0
	iter := outer
	for {
		in.step(s)
		if s.Cond != nil && !in.cond(s.Cond, iter) {
			return ctlNone
		}
		c := in.block(s.Body.List, &Env{vars: map[string]*Cell{}, parent: iter})
		if c == ctlBreak {
			return ctlNone
		}
		if c == ctlReturn || c == ctlExit {
			return c
		}
		if perIter {
			next := &Env{vars: map[string]*Cell{}, parent: env}
			for k, cell := range iter.vars {
				next.vars[k] = in.newCell(k, in.read(s, cell))
			}
			iter = next
		}
		if s.Post != nil {
			in.stmt(s.Post, iter)
		}
	}
}

func (in *Interp) rangeStmt(s *ast.RangeStmt, env *Env) ctl {
	x := in.expr(s.X, env)
	var keys, vals []interface{}
	switch x := x.(type) {
	case int64:
		for i := int64(0); i < x; i++ {
			keys = append(keys, i)
			vals = append(vals, nil)
		}
	case *Slice:
		for i, c := range x.elems {
			keys = append(keys, int64(i))
			vals = append(vals, in.read(s, c))
		}
	case string:
		for i, r := range x {
			keys = append(keys, int64(i))
			vals = append(vals, int64(r))
		}
	case *Chan:
		return in.rangeChan(s, x, env)
	case *Map:
		in.refuse(s, "range over a map is not modelled (its order is random)")
	default:
		in.refuse(s, "range over %s is not modelled", describe(x))
	}
	var shared *Env
	if s.Tok == token.DEFINE && !in.loopvar {
		shared = &Env{vars: map[string]*Cell{}, parent: env}
	}
	for i := range keys {
		in.step(s)
		e := shared
		if e == nil {
			e = &Env{vars: map[string]*Cell{}, parent: env}
		}
		set := func(lhs ast.Expr, v interface{}) {
			if lhs == nil {
				return
			}
			if id, ok := lhs.(*ast.Ident); ok && id.Name == "_" {
				return
			}
			if s.Tok == token.DEFINE {
				id := lhs.(*ast.Ident)
				if c := e.vars[id.Name]; c != nil && shared != nil {
					in.write(s, c, v)
				} else {
					e.vars[id.Name] = in.newCell(id.Name, v)
				}
				return
			}
			c, idx := in.lvalue(lhs, env)
			in.storeL(s, c, idx, v)
		}
		set(s.Key, keys[i])
		set(s.Value, vals[i])
		c := in.block(s.Body.List, &Env{vars: map[string]*Cell{}, parent: e})
		if c == ctlBreak {
			return ctlNone
		}
		if c == ctlReturn || c == ctlExit {
			return c
		}
	}
	return ctlNone
}

// rangeChan: `for v := range ch { body }` as a loop the model runs until the channel
// is closed: `rangerecv` (N = the body's steps + 1: where a close jumps to), the body
// worked out once, and `loop` (N = how far back). That is sound when the body does the
// same each time: no go statements, no break/continue/return, and the variables from
// outside that it changes are unknown from the start (how often it runs is not known).
func (in *Interp) rangeChan(s *ast.RangeStmt, ch *Chan, env *Env) ctl {
	ast.Inspect(s.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			in.refuse(n, "a go statement inside a range over a channel (how many goroutines it starts depends on the channel) is not modelled")
		case *ast.BranchStmt:
			in.refuse(n, "%s inside a range over a channel is not modelled", n.Tok)
		case *ast.ReturnStmt:
			in.refuse(n, "return inside a range over a channel is not modelled")
		case *ast.FuncLit:
			return false
		case *ast.AssignStmt:
			if n.Tok == token.DEFINE {
				return true
			}
			for _, l := range n.Lhs {
				in.taintOuter(l, env)
			}
		case *ast.IncDecStmt:
			in.taintOuter(n.X, env)
		}
		return true
	})
	g := in.gs[in.cur]
	in.emit(s, Op{Op: "rangerecv", Ch: ch.id})
	at := len(g.Ops) - 1
	e := &Env{vars: map[string]*Cell{}, parent: env}
	why := Unknown{fmt.Sprintf("a value received by the range at %s", in.pos(s))}
	for _, lhs := range []ast.Expr{s.Key, s.Value} {
		if id, ok := lhs.(*ast.Ident); ok && id.Name != "_" {
			if s.Tok != token.DEFINE {
				in.taintOuter(id, env)
				continue
			}
			e.vars[id.Name] = in.newCell(id.Name, why)
		}
	}
	in.block(s.Body.List, &Env{vars: map[string]*Cell{}, parent: e})
	g = in.gs[in.cur]
	in.emit(s, Op{Op: "loop", N: int64(len(g.Ops) + 1 - at)})
	g.Ops[at].N = int64(len(g.Ops) - 1 - at)
	return ctlNone
}

// taintOuter: a variable from outside a range-over-channel body that the body changes.
func (in *Interp) taintOuter(l ast.Expr, env *Env) {
	id, ok := l.(*ast.Ident)
	if !ok {
		in.refuse(l, "inside a range over a channel only variables may be assigned")
	}
	if id.Name == "_" {
		return
	}
	if c := env.lookup(id.Name); c != nil {
		in.write(l, c, Unknown{fmt.Sprintf("%s, changed in a range over a channel", id.Name)})
	}
}

func (in *Interp) switchStmt(s *ast.SwitchStmt, env *Env) ctl {
	e := &Env{vars: map[string]*Cell{}, parent: env}
	if s.Init != nil {
		in.stmt(s.Init, e)
	}
	var tag interface{} = true
	if s.Tag != nil {
		tag = in.expr(s.Tag, e)
		if u, ok := tag.(Unknown); ok {
			in.refuse(s.Tag, "this switch depends on %s", u.why)
		}
	}
	var def *ast.CaseClause
	for _, cc := range s.Body.List {
		cc := cc.(*ast.CaseClause)
		if cc.List == nil {
			def = cc
			continue
		}
		for _, x := range cc.List {
			v := in.expr(x, e)
			if u, ok := v.(Unknown); ok {
				in.refuse(x, "this case depends on %s", u.why)
			}
			if v == tag {
				return in.caseBody(cc, e)
			}
		}
	}
	if def != nil {
		return in.caseBody(def, e)
	}
	return ctlNone
}

func (in *Interp) caseBody(cc *ast.CaseClause, env *Env) ctl {
	for _, st := range cc.Body {
		if b, ok := st.(*ast.BranchStmt); ok && b.Tok == token.FALLTHROUGH {
			in.refuse(b, "fallthrough is not modelled")
		}
	}
	c := in.block(cc.Body, &Env{vars: map[string]*Cell{}, parent: env})
	if c == ctlBreak {
		return ctlNone
	}
	return c
}

func (in *Interp) assign(s *ast.AssignStmt, env *Env) {
	if s.Tok != token.ASSIGN && s.Tok != token.DEFINE {
		// x op= y
		op := map[token.Token]token.Token{token.ADD_ASSIGN: token.ADD, token.SUB_ASSIGN: token.SUB, token.MUL_ASSIGN: token.MUL, token.QUO_ASSIGN: token.QUO, token.REM_ASSIGN: token.REM}[s.Tok]
		if op == 0 || len(s.Lhs) != 1 {
			in.refuse(s, "%s is not modelled", s.Tok)
		}
		c, idx := in.lvalue(s.Lhs[0], env)
		v := in.arith(s, op, in.loadL(s.Lhs[0], c, idx), in.expr(s.Rhs[0], env))
		in.storeL(s, c, idx, v)
		return
	}
	var vals []interface{}
	if len(s.Rhs) == 1 && len(s.Lhs) > 1 {
		t := in.exprMulti(s.Rhs[0], env)
		tu, ok := t.(Tuple)
		if !ok || len(tu) != len(s.Lhs) {
			in.refuse(s, "assignment count mismatch")
		}
		vals = tu
	} else {
		for _, r := range s.Rhs {
			vals = append(vals, in.expr(r, env))
		}
	}
	for i, l := range s.Lhs {
		if id, ok := l.(*ast.Ident); ok {
			if id.Name == "_" {
				continue
			}
			if s.Tok == token.DEFINE {
				if c := env.vars[id.Name]; c != nil {
					in.write(s, c, vals[i])
				} else {
					env.vars[id.Name] = in.newCell(id.Name, vals[i])
				}
				continue
			}
		}
		c, idx := in.lvalue(l, env)
		in.storeL(s, c, idx, vals[i])
	}
}

// lvalue: the cell to store into (idx is non-nil for a map or slice element, c the
// container's cell then).
func (in *Interp) lvalue(e ast.Expr, env *Env) (*Cell, interface{}) {
	switch e := e.(type) {
	case *ast.Ident:
		c := env.lookup(e.Name)
		if c == nil {
			in.refuse(e, "%s is not a variable the model knows", e.Name)
		}
		return c, nil
	case *ast.IndexExpr:
		x := in.expr(e.X, env)
		k := in.expr(e.Index, env)
		switch x := x.(type) {
		case *Slice:
			i := in.intOf(e.Index, k, "an index")
			if i < 0 || int(i) >= len(x.elems) {
				in.refuse(e, "index %d out of range (the program would panic)", i)
			}
			return x.elems[i], nil
		case *Map:
			key := fmt.Sprint(k)
			if _, ok := k.(Unknown); ok {
				in.refuse(e, "a map key that depends on %s", describe(k))
			}
			c := x.m[key]
			if c == nil {
				c = in.newCell("an element of a map", nil)
				x.m[key] = c
			}
			return c, nil
		case nil:
			in.refuse(e, "assignment to an element of a nil map or slice (the program would panic)")
		}
		in.refuse(e, "an element of %s", describe(x))
	case *ast.StarExpr:
		p, ok := in.expr(e.X, env).(*Cell)
		if !ok {
			in.refuse(e, "a pointer the model cannot follow")
		}
		return p, nil
	case *ast.ParenExpr:
		return in.lvalue(e.X, env)
	}
	in.refuse(e, "an assignment to this kind of expression (%T) is not modelled", e)
	return nil, nil
}

func (in *Interp) loadL(n ast.Node, c *Cell, _ interface{}) interface{} { return in.read(n, c) }
func (in *Interp) storeL(n ast.Node, c *Cell, _ interface{}, v interface{}) {
	in.write(n, c, v)
}

func (in *Interp) arith(n ast.Node, op token.Token, a, b interface{}) interface{} {
	if u, ok := a.(Unknown); ok {
		return u
	}
	if u, ok := b.(Unknown); ok {
		return u
	}
	switch x := a.(type) {
	case int64:
		y, ok := b.(int64)
		if !ok {
			in.refuse(n, "arithmetic on %s", describe(b))
		}
		switch op {
		case token.ADD:
			return x + y
		case token.SUB:
			return x - y
		case token.MUL:
			return x * y
		case token.QUO, token.REM:
			if y == 0 {
				in.refuse(n, "division by zero (the program would panic)")
			}
			if op == token.QUO {
				return x / y
			}
			return x % y
		case token.SHL:
			return x << uint(y)
		case token.SHR:
			return x >> uint(y)
		case token.AND:
			return x & y
		case token.OR:
			return x | y
		case token.XOR:
			return x ^ y
		case token.EQL:
			return x == y
		case token.NEQ:
			return x != y
		case token.LSS:
			return x < y
		case token.LEQ:
			return x <= y
		case token.GTR:
			return x > y
		case token.GEQ:
			return x >= y
		}
	case string:
		y, ok := b.(string)
		if !ok {
			in.refuse(n, "string operation on %s", describe(b))
		}
		switch op {
		case token.ADD:
			return x + y
		case token.EQL:
			return x == y
		case token.NEQ:
			return x != y
		case token.LSS:
			return x < y
		case token.GTR:
			return x > y
		}
	case bool:
		y, ok := b.(bool)
		if !ok {
			in.refuse(n, "bool operation on %s", describe(b))
		}
		switch op {
		case token.EQL:
			return x == y
		case token.NEQ:
			return x != y
		}
	case nil:
		switch op {
		case token.EQL:
			return b == nil
		case token.NEQ:
			return b != nil
		}
	}
	in.refuse(n, "the operator %s on %s is not modelled", op, describe(a))
	return nil
}

// exprMulti may return a Tuple (a call with several results, v, ok := m[k]).
func (in *Interp) exprMulti(e ast.Expr, env *Env) interface{} {
	switch e := e.(type) {
	case *ast.CallExpr:
		return in.call(e, env)
	case *ast.IndexExpr:
		if m, ok := in.expr(e.X, env).(*Map); ok {
			k := fmt.Sprint(in.expr(e.Index, env))
			if c := m.m[k]; c != nil {
				return Tuple{in.read(e, c), true}
			}
			return Tuple{m.zero, false}
		}
	case *ast.UnaryExpr:
		if e.Op == token.ARROW {
			v := in.expr(e, env)
			return Tuple{v, Unknown{"whether the channel was closed"}}
		}
	}
	return in.expr(e, env)
}

func (in *Interp) expr(e ast.Expr, env *Env) interface{} {
	in.step(e)
	switch e := e.(type) {
	case *ast.BasicLit:
		switch e.Kind {
		case token.INT:
			v, err := strconv.ParseInt(e.Value, 0, 64)
			if err != nil {
				in.refuse(e, "integer literal %s", e.Value)
			}
			return v
		case token.STRING:
			s, _ := strconv.Unquote(e.Value)
			return s
		case token.CHAR:
			s, _ := strconv.Unquote(e.Value)
			return int64([]rune(s)[0])
		}
		in.refuse(e, "literal %s is not modelled", e.Value)
	case *ast.Ident:
		switch e.Name {
		case "true":
			return true
		case "false":
			return false
		case "nil":
			return nil
		}
		if c := env.lookup(e.Name); c != nil {
			return in.read(e, c)
		}
		if v, ok := in.consts[e.Name]; ok {
			return v
		}
		if d := in.funcs[e.Name]; d != nil {
			return &Closure{decl: d, name: e.Name}
		}
		in.refuse(e, "%s is not something the model knows", e.Name)
	case *ast.ParenExpr:
		return in.expr(e.X, env)
	case *ast.BinaryExpr:
		if e.Op == token.LAND || e.Op == token.LOR {
			a := in.cond(e.X, env)
			if (e.Op == token.LAND && !a) || (e.Op == token.LOR && a) {
				return a
			}
			return in.cond(e.Y, env)
		}
		return in.arith(e, e.Op, in.expr(e.X, env), in.expr(e.Y, env))
	case *ast.UnaryExpr:
		switch e.Op {
		case token.ARROW:
			ch := in.expr(e.X, env)
			c, ok := ch.(*Chan)
			if !ok {
				in.refuse(e, "a receive from a channel the model cannot follow (%s)", describe(ch))
			}
			in.emit(e, Op{Op: "recv", Ch: c.id})
			return Unknown{fmt.Sprintf("the value received at %s", in.pos(e))}
		case token.SUB:
			return in.arith(e, token.SUB, int64(0), in.expr(e.X, env))
		case token.NOT:
			return !in.cond(e.X, env)
		case token.AND:
			if id, ok := e.X.(*ast.Ident); ok {
				if c := env.lookup(id.Name); c != nil {
					return c
				}
			}
			if cl, ok := e.X.(*ast.CompositeLit); ok {
				return in.newCell("a composite literal", in.expr(cl, env))
			}
			in.refuse(e, "taking this address is not modelled")
		}
		in.refuse(e, "the operator %s is not modelled", e.Op)
	case *ast.StarExpr:
		p, ok := in.expr(e.X, env).(*Cell)
		if !ok {
			in.refuse(e, "a pointer the model cannot follow")
		}
		return in.read(e, p)
	case *ast.CallExpr:
		v := in.call(e, env)
		if t, ok := v.(Tuple); ok {
			if len(t) == 0 {
				return nil
			}
			return t[0]
		}
		return v
	case *ast.IndexExpr:
		x := in.expr(e.X, env)
		k := in.expr(e.Index, env)
		switch x := x.(type) {
		case *Slice:
			i := in.intOf(e.Index, k, "an index")
			if i < 0 || int(i) >= len(x.elems) {
				in.refuse(e, "index %d out of range (the program would panic)", i)
			}
			return in.read(e, x.elems[i])
		case string:
			i := in.intOf(e.Index, k, "an index")
			if i < 0 || int(i) >= len(x) {
				in.refuse(e, "index %d out of range (the program would panic)", i)
			}
			return int64(x[i])
		case *Map:
			if _, ok := k.(Unknown); ok {
				in.refuse(e, "a map key that depends on %s", describe(k))
			}
			if c := x.m[fmt.Sprint(k)]; c != nil {
				return in.read(e, c)
			}
			return x.zero
		case nil:
			return nil
		case Unknown:
			return x
		}
		in.refuse(e, "indexing %s is not modelled", describe(x))
	case *ast.SliceExpr:
		x := in.expr(e.X, env)
		lo, hi := int64(0), int64(-1)
		if e.Low != nil {
			lo = in.intOf(e.Low, in.expr(e.Low, env), "a slice bound")
		}
		if e.High != nil {
			hi = in.intOf(e.High, in.expr(e.High, env), "a slice bound")
		}
		switch x := x.(type) {
		case string:
			if hi < 0 {
				hi = int64(len(x))
			}
			if lo > hi || hi > int64(len(x)) {
				in.refuse(e, "slice bounds out of range")
			}
			return x[lo:hi]
		case *Slice:
			if hi < 0 {
				hi = int64(len(x.elems))
			}
			if lo > hi || hi > int64(len(x.elems)) {
				in.refuse(e, "slice bounds out of range")
			}
			return &Slice{elems: x.elems[lo:hi]}
		}
		in.refuse(e, "slicing %s is not modelled", describe(x))
	case *ast.CompositeLit:
		switch t := e.Type.(type) {
		case *ast.ArrayType:
			s := &Slice{}
			for _, el := range e.Elts {
				if _, ok := el.(*ast.KeyValueExpr); ok {
					in.refuse(el, "keyed slice literals are not modelled")
				}
				s.elems = append(s.elems, in.newCell("an element of a slice", in.expr(el, env)))
			}
			return s
		case *ast.MapType:
			m := &Map{m: map[string]*Cell{}, zero: in.elemZero(t.Value)}
			for _, el := range e.Elts {
				kv := el.(*ast.KeyValueExpr)
				m.m[fmt.Sprint(in.expr(kv.Key, env))] = in.newCell("an element of a map", in.expr(kv.Value, env))
			}
			return m
		case *ast.StructType:
			if len(t.Fields.List) == 0 {
				return Opaque{"struct{}"}
			}
		case *ast.Ident:
			if t.Name == "struct{}" {
				return Opaque{"struct{}"}
			}
		}
		in.refuse(e, "composite literals of this type are not modelled")
	case *ast.FuncLit:
		return &Closure{lit: e, env: env, name: "func@" + in.pos(e)}
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); ok && env.lookup(x.Name) == nil {
			path := in.imports[x.Name]
			switch path + "." + e.Sel.Name {
			case "os.Args":
				s := &Slice{}
				for _, a := range in.args {
					s.elems = append(s.elems, &Cell{v: a, owner: 0, name: "os.Args"})
				}
				return s
			case "os.Stdout", "os.Stderr":
				return Opaque{"*os.File"}
			}
			if path != "" {
				// A function or constant of a package used as a value: opaque (a
				// call through it, or arithmetic on it, is refused where it happens).
				return Opaque{path + "." + e.Sel.Name}
			}
			in.refuse(e, "%s is not modelled", e.Sel.Name)
		}
		in.refuse(e, "fields and method values are not modelled")
	case *ast.TypeAssertExpr:
		in.refuse(e, "type assertions are not modelled")
	}
	in.refuse(e, "this kind of expression (%T) is not modelled", e)
	return nil
}

func (in *Interp) goStmt(s *ast.GoStmt, env *Env) {
	call := s.Call
	fn, args := in.callee(call, env)
	if fn == nil {
		in.refuse(s, "go with something other than a function of the program: only the program's own functions and func literals are modelled")
	}
	label := fn.name
	if fn.lit != nil {
		label = "func@" + in.pos(fn.lit)
	}
	var shown []string
	for _, a := range args {
		if i, ok := a.(int64); ok {
			shown = append(shown, strconv.FormatInt(i, 10))
		}
	}
	label = fmt.Sprintf("%s(%s)", label, strings.Join(shown, ","))
	id := len(in.gs)
	in.gs = append(in.gs, &Goroutine{Label: label})
	in.emit(s, Op{Op: "go", G: id, Label: label})
	parent, frames := in.cur, in.frames
	in.cur = id
	in.frames = nil
	in.invoke(s, fn, args)
	in.emit(s, Op{Op: "exit"})
	in.cur, in.frames = parent, frames
}

func (in *Interp) deferStmt(s *ast.DeferStmt, env *Env) {
	f := in.frames[len(in.frames)-1]
	call := s.Call
	// Evaluate the function and its arguments now, run it at return.
	if sel, ok := call.Fun.(*ast.SelectorExpr); ok {
		recv := in.methodRecv(sel, env)
		if recv != nil {
			var args []interface{}
			for _, a := range call.Args {
				args = append(args, in.expr(a, env))
			}
			f.defers = append(f.defers, func() { in.method(call, recv, sel.Sel.Name, args) })
			return
		}
	}
	fn, args := in.callee(call, env)
	if fn == nil {
		in.refuse(s, "defer of this call is not modelled")
	}
	f.defers = append(f.defers, func() { in.invoke(s, fn, args) })
}

func (in *Interp) runDefers(f *frame) {
	for i := len(f.defers) - 1; i >= 0; i-- {
		f.defers[i]()
	}
}

// callee: a call of the program's own function (or closure) with evaluated arguments.
func (in *Interp) callee(call *ast.CallExpr, env *Env) (*Closure, []interface{}) {
	var fn *Closure
	switch f := call.Fun.(type) {
	case *ast.FuncLit:
		fn = &Closure{lit: f, env: env, name: "func@" + in.pos(f)}
	case *ast.Ident:
		if c := env.lookup(f.Name); c != nil {
			fn, _ = in.read(f, c).(*Closure)
		} else if d := in.funcs[f.Name]; d != nil && f.Name != in.record {
			fn = &Closure{decl: d, name: f.Name}
		}
	}
	if fn == nil {
		return nil, nil
	}
	var args []interface{}
	for _, a := range call.Args {
		args = append(args, in.expr(a, env))
	}
	return fn, args
}

func (in *Interp) invoke(n ast.Node, fn *Closure, args []interface{}) interface{} {
	var ft *ast.FuncType
	var body *ast.BlockStmt
	parent := in.globals
	if fn.lit != nil {
		ft, body, parent = fn.lit.Type, fn.lit.Body, fn.env
	} else {
		ft, body = fn.decl.Type, fn.decl.Body
	}
	if len(in.frames) > 200 {
		in.refuse(n, "calls nested more than 200 deep")
	}
	env := &Env{vars: map[string]*Cell{}, parent: parent}
	k := 0
	for _, p := range ft.Params.List {
		if _, ok := p.Type.(*ast.Ellipsis); ok {
			in.refuse(p, "variadic functions are not modelled")
		}
		names := p.Names
		if len(names) == 0 {
			k++
			continue
		}
		for _, nm := range names {
			if k >= len(args) {
				in.refuse(n, "wrong number of arguments")
			}
			env.vars[nm.Name] = in.newCell(nm.Name, args[k])
			k++
		}
	}
	f := &frame{}
	if ft.Results != nil {
		for _, r := range ft.Results.List {
			for _, nm := range r.Names {
				c := in.newCell(nm.Name, in.zero(r.Type))
				env.vars[nm.Name] = c
				f.named = append(f.named, c)
			}
		}
	}
	in.frames = append(in.frames, f)
	c := in.block(body.List, env)
	if c == ctlExit {
		return ctlExit
	}
	in.runDefers(f)
	in.frames = in.frames[:len(in.frames)-1]
	if len(f.named) > 0 && c != ctlReturn {
		for _, nc := range f.named {
			f.results = append(f.results, nc.v)
		}
	}
	if len(f.results) == 1 {
		return f.results[0]
	}
	return Tuple(f.results)
}

// methodRecv: the receiver of x.M(...) when x is a value (not a package).
func (in *Interp) methodRecv(sel *ast.SelectorExpr, env *Env) interface{} {
	if x, ok := sel.X.(*ast.Ident); ok && env.lookup(x.Name) == nil {
		if _, isPkg := in.imports[x.Name]; isPkg {
			if in.imports[x.Name] == "os" && (sel.Sel.Name == "Stdout" || sel.Sel.Name == "Stderr") {
				return nil
			}
			return nil
		}
	}
	v := in.expr(sel.X, env)
	if c, ok := v.(*Cell); ok { // (&wg).Done, p.Done with p := &wg
		v = in.read(sel, c)
	}
	if v == nil {
		in.refuse(sel, "a method of nil")
	}
	return v
}

func (in *Interp) method(call *ast.CallExpr, recv interface{}, name string, args []interface{}) interface{} {
	switch r := recv.(type) {
	case *WG:
		switch name {
		case "Add":
			d := in.intOf(call, args[0], "wg.Add's argument")
			in.emit(call, Op{Op: "wgadd", Wg: r.id, N: d})
		case "Done":
			in.emit(call, Op{Op: "wgadd", Wg: r.id, N: -1})
		case "Wait":
			in.emit(call, Op{Op: "wgwait", Wg: r.id})
		default:
			in.refuse(call, "sync.WaitGroup.%s is not modelled", name)
		}
		return nil
	case Opaque:
		switch r.typ {
		case "*os.File":
			in.write1(call)
			return Tuple{Unknown{"a write's result"}, nil}
		case "strings.Builder":
			if name == "String" {
				return Unknown{"a strings.Builder's contents"}
			}
			return Tuple{Unknown{"a write's result"}, nil}
		}
		if strings.HasPrefix(r.typ, "sync/atomic.") {
			return Unknown{fmt.Sprintf("an atomic counter (%s.%s at %s)", r.typ, name, in.pos(call))}
		}
	}
	in.refuse(call, "the method %s of %s is not modelled", name, describe(recv))
	return nil
}

// write1: main may print only at its end; a goroutine may not print.
func (in *Interp) write1(n ast.Node) {
	if in.cur != 0 {
		in.refuse(n, "%s writes to standard output: a system call, in which the P may be handed to another goroutine (record with the record function; print in main at the end)", in.gs[in.cur].Label)
	}
	if in.mainWrote == "" {
		in.mainWrote = in.pos(n)
	}
}

func (in *Interp) call(call *ast.CallExpr, env *Env) interface{} {
	args := func() []interface{} {
		var a []interface{}
		for _, x := range call.Args {
			a = append(a, in.expr(x, env))
		}
		return a
	}
	switch f := call.Fun.(type) {
	case *ast.Ident:
		if env.lookup(f.Name) == nil {
			switch f.Name {
			case "len":
				switch v := in.expr(call.Args[0], env).(type) {
				case string:
					return int64(len(v))
				case *Slice:
					return int64(len(v.elems))
				case *Map:
					return int64(len(v.m))
				case nil:
					return int64(0)
				case *Chan:
					in.refuse(call, "len of a channel depends on timing")
				}
				in.refuse(call, "len of this value is not modelled")
			case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "byte", "rune":
				return in.expr(call.Args[0], env)
			case "string":
				v := in.expr(call.Args[0], env)
				if i, ok := v.(int64); ok {
					return string(rune(i))
				}
				return v
			case "make":
				return in.makeBuiltin(call, env)
			case "new":
				return in.newCell("new("+fmt.Sprint(call.Args[0])+")", in.zero(call.Args[0]))
			case "append":
				a := args()
				s, _ := a[0].(*Slice)
				if s == nil {
					if a[0] != nil {
						in.refuse(call, "append to %s", describe(a[0]))
					}
					s = &Slice{}
				}
				ns := &Slice{elems: append(append([]*Cell{}, s.elems...), nil)[:len(s.elems)]}
				for _, v := range a[1:] {
					ns.elems = append(ns.elems, in.newCell("an element of a slice", v))
				}
				return ns
			case "close":
				ch, ok := in.expr(call.Args[0], env).(*Chan)
				if !ok {
					in.refuse(call, "close of a channel the model cannot follow")
				}
				in.emit(call, Op{Op: "close", Ch: ch.id})
				return nil
			case "panic":
				in.refuse(call, "the program may panic here")
			case "print", "println":
				args()
				in.write1(call)
				return nil
			}
			if f.Name == in.record && in.funcs[f.Name] != nil {
				a := args()
				v, ok := a[0].(int64)
				if !ok {
					in.refuse(call, "the value recorded here depends on %s", describe(a[0]))
				}
				in.emit(call, Op{Op: "record", N: v})
				return nil
			}
		}
		fn, a := in.callee(call, env)
		if fn == nil {
			in.refuse(call, "%s is not a function the model knows", f.Name)
		}
		return in.invoke(call, fn, a)
	case *ast.FuncLit:
		fn, a := in.callee(call, env)
		return in.invoke(call, fn, a)
	case *ast.SelectorExpr:
		if x, ok := f.X.(*ast.Ident); ok && env.lookup(x.Name) == nil {
			if path, isPkg := in.imports[x.Name]; isPkg {
				if path == "os" && (f.Sel.Name == "Stdout" || f.Sel.Name == "Stderr") {
					break
				}
				return in.pkgCall(call, path, f.Sel.Name, args)
			}
		}
		recv := in.methodRecv(f, env)
		return in.method(call, recv, f.Sel.Name, args())
	case *ast.ArrayType, *ast.ChanType, *ast.MapType:
		return in.expr(call.Args[0], env)
	}
	in.refuse(call, "this call is not modelled")
	return nil
}

func (in *Interp) makeBuiltin(call *ast.CallExpr, env *Env) interface{} {
	size := int64(0)
	if len(call.Args) > 1 {
		size = in.intOf(call.Args[1], in.expr(call.Args[1], env), "make's size")
	}
	switch call.Args[0].(type) {
	case *ast.ChanType:
		in.chans = append(in.chans, size)
		return &Chan{len(in.chans)}
	case *ast.ArrayType:
		s := &Slice{}
		elem := call.Args[0].(*ast.ArrayType).Elt
		z := in.elemZero(elem)
		for i := int64(0); i < size; i++ {
			s.elems = append(s.elems, in.newCell("an element of a slice", z))
		}
		return s
	case *ast.MapType:
		return &Map{m: map[string]*Cell{}, zero: in.elemZero(call.Args[0].(*ast.MapType).Value)}
	}
	in.refuse(call, "make of this type is not modelled")
	return nil
}

// elemZero: the zero value of a slice's or map's elements.
func (in *Interp) elemZero(t ast.Expr) interface{} {
	switch t := t.(type) {
	case *ast.Ident:
		if t.Name == "error" {
			return nil
		}
		return in.zero(t)
	case *ast.ChanType, *ast.MapType, *ast.ArrayType, *ast.StarExpr, *ast.FuncType:
		return nil
	case *ast.SelectorExpr:
		// A WaitGroup element would need one WaitGroup per element: not modelled.
		return Opaque{"element"}
	}
	return Opaque{"element"}
}

func (in *Interp) pkgCall(call *ast.CallExpr, path, name string, args func() []interface{}) interface{} {
	full := path + "." + name
	switch full {
	case "runtime.Gosched":
		in.emit(call, Op{Op: "gosched"})
		return nil
	case "runtime.GOMAXPROCS":
		a := args()
		if n, ok := a[0].(int64); ok && n <= 0 {
			return int64(1)
		}
		in.refuse(call, "runtime.GOMAXPROCS(n) changes the number of Ps (a stop of the world)")
	case "runtime.NumGoroutine":
		return Unknown{"runtime.NumGoroutine"}
	case "os.Exit":
		args()
		if in.cur != 0 {
			in.refuse(call, "os.Exit in a goroutine other than main is not modelled")
		}
		in.emit(call, Op{Op: "exit"})
		panic(exitNow{})
	case "strconv.Atoi":
		a := args()
		s, ok := a[0].(string)
		if !ok {
			in.refuse(call, "strconv.Atoi of %s", describe(a[0]))
		}
		v, err := strconv.Atoi(s)
		if err != nil {
			return Tuple{int64(0), Opaque{"error"}}
		}
		return Tuple{int64(v), nil}
	case "strconv.Itoa":
		a := args()
		if i, ok := a[0].(int64); ok {
			return strconv.Itoa(int(i))
		}
		return Unknown{"a number as text"}
	case "strings.HasPrefix", "strings.HasSuffix", "strings.Contains", "strings.TrimPrefix", "strings.TrimSuffix", "strings.Split", "strings.Fields", "strings.TrimSpace":
		a := args()
		var s []string
		for _, v := range a {
			x, ok := v.(string)
			if !ok {
				in.refuse(call, "%s of %s", full, describe(v))
			}
			s = append(s, x)
		}
		switch name {
		case "HasPrefix":
			return strings.HasPrefix(s[0], s[1])
		case "HasSuffix":
			return strings.HasSuffix(s[0], s[1])
		case "Contains":
			return strings.Contains(s[0], s[1])
		case "TrimPrefix":
			return strings.TrimPrefix(s[0], s[1])
		case "TrimSuffix":
			return strings.TrimSuffix(s[0], s[1])
		case "TrimSpace":
			return strings.TrimSpace(s[0])
		}
		var parts []string
		if name == "Split" {
			parts = strings.Split(s[0], s[1])
		} else {
			parts = strings.Fields(s[0])
		}
		sl := &Slice{}
		for _, p := range parts {
			sl.elems = append(sl.elems, in.newCell("an element of a slice", p))
		}
		return sl
	case "fmt.Sprint", "fmt.Sprintf", "fmt.Sprintln":
		args()
		return Unknown{"formatted text"}
	case "fmt.Print", "fmt.Printf", "fmt.Println", "fmt.Fprint", "fmt.Fprintf", "fmt.Fprintln":
		args()
		in.write1(call)
		return Tuple{Unknown{"a write's result"}, nil}
	}
	if path == "sync/atomic" {
		a := args()
		p, ok := a[0].(*Cell)
		if !ok {
			in.refuse(call, "%s of something other than a variable's address", full)
		}
		// A goroutine's atomic operation on another's variable: what it reads
		// depends on the order of execution, so its result is unknown (and not a
		// read that a later write could invalidate).
		old := p.v
		if p.owner != in.cur {
			old = Unknown{fmt.Sprintf("%s, which goroutines update with sync/atomic (%s)", p.name, in.pos(call))}
		}
		switch {
		case strings.HasPrefix(name, "Add"):
			nv := in.arith(call, token.ADD, old, a[1])
			in.write(call, p, nv)
			if _, ok := p.v.(Unknown); ok {
				return p.v
			}
			return nv
		case strings.HasPrefix(name, "Load"):
			return old
		case strings.HasPrefix(name, "Store"):
			in.write(call, p, a[1])
			return nil
		}
		in.refuse(call, "%s is not modelled", full)
	}
	in.refuse(call, "%s is not modelled by the run-order model (only what the scheduler sees through go, runtime.Gosched, channels and sync.WaitGroup is)", full)
	return nil
}

type exitNow struct{}
