//! `golab doctor`: can `golab run startup-trace` work on this machine, and if not, the
//! exact command that fixes each problem.

use crate::exec;
use crate::machine::Machine;
use crate::toolchain::{self, Choice, GoVersion};
use std::process::Command;
use std::time::Duration;

#[derive(serde::Serialize)]
pub struct Finding {
    pub ok: bool,
    /// A problem that stops the lab (as opposed to a warning).
    pub blocking: bool,
    pub what: String,
    pub fix: Option<String>,
}

fn found(what: String) -> Finding {
    Finding {
        ok: true,
        blocking: false,
        what,
        fix: None,
    }
}

pub fn examine(choice: &Choice) -> Vec<Finding> {
    let host = Machine::Host;
    let mut out = Vec::new();
    let mut go_version: Option<GoVersion> = None;
    let go = choice
        .goroot
        .as_ref()
        .map(|r| Ok(r.join("bin/go")))
        .unwrap_or_else(|| toolchain::find_tool(&host, "go", None, ""));
    match go
        .and_then(|g| toolchain::go_version(&host, &g, choice.goroot.as_deref()).map(|v| (g, v)))
    {
        Ok((g, v)) => {
            go_version = Some(v);
            out.push(found(format!("go {v} ({})", g.display())));
        }
        Err(e) => out.push(Finding {
            ok: false,
            blocking: true,
            what: format!("go: {e:#}"),
            fix: Some(toolchain::install_hint("go")),
        }),
    }
    let mut dlv_version = None;
    for (name, explicit) in [
        ("dlv", choice.dlv.as_deref()),
        ("gdb", choice.gdb.as_deref()),
        ("readelf", None),
        ("objdump", None),
    ] {
        match toolchain::find_tool(&host, name, explicit, "") {
            Ok(p) => {
                let v = if name == "dlv" {
                    toolchain::dlv_version(&host, &p)
                } else {
                    toolchain::first_line_version(&host, &p, "--version")
                };
                let v = v.unwrap_or_else(|e| format!("(version unreadable: {e:#})"));
                if name == "dlv" {
                    dlv_version = Some(v.clone());
                }
                out.push(found(format!("{name} {v} ({})", p.display())));
            }
            // golab decodes call sites itself; objdump is for the notes' own commands.
            Err(_) => out.push(Finding {
                ok: false,
                blocking: name != "objdump",
                what: match name {
                    "objdump" => "objdump is not installed (the lab notes use it by hand; golab does not need it)".to_string(),
                    _ => format!("{name} is not installed"),
                },
                fix: Some(toolchain::install_hint(name)),
            }),
        }
    }
    if let (Some(gv), Some(dv)) = (go_version, dlv_version) {
        match toolchain::dlv_supported_go(&dv) {
            Some((lo, hi)) if gv >= lo && gv <= hi => out.push(found(format!("dlv {dv} supports {gv} (Go {}-{})", lo.line(), hi.line()))),
            Some((lo, hi)) => out.push(Finding {
                ok: false,
                blocking: false,
                what: format!("dlv {dv} supports Go {}-{}, not {gv}: golab runs it with --check-go-version=false and says so in the report", lo.line(), hi.line()),
                fix: Some(if gv.minor <= 19 && gv.minor >= 17 { "go install github.com/go-delve/delve/cmd/dlv@v1.9.1".into() } else { "install a dlv release whose range covers this Go".into() }),
            }),
            None => out.push(Finding { ok: false, blocking: false, what: format!("dlv {dv}: golab does not know its supported Go range; it will retry with --check-go-version=false if dlv refuses"), fix: None }),
        }
    }
    out.push(ptrace());
    out.push(kvm());
    out
}

/// Tries to trace a real process with gdb: the only test that sees yama, seccomp and
/// missing capabilities alike.
fn ptrace() -> Finding {
    let scope = crate::sys::host::ptrace_scope();
    let Some(gdb) = crate::exec::which("gdb") else {
        return Finding {
            ok: false,
            blocking: true,
            what: "ptrace: not tested (no gdb)".into(),
            fix: Some(toolchain::install_hint("gdb")),
        };
    };
    let mut c = Command::new(gdb);
    c.args(["-nx", "-batch", "-ex", "run", "--args", "/bin/true"]);
    let out = exec::run(c, "gdb ptrace probe", Duration::from_secs(30));
    let text = out
        .as_ref()
        .map(|o| o.combined())
        .unwrap_or_else(|e| format!("{e:#}"));
    let scope_s = scope
        .clone()
        .map(|s| format!(", yama ptrace_scope={s}"))
        .unwrap_or_default();
    if text.contains("exited normally") {
        return found(format!("ptrace works (gdb traced /bin/true{scope_s})"));
    }
    let fix = if scope.as_deref().is_some_and(|s| s != "0" && s != "1") {
        "sysctl -w kernel.yama.ptrace_scope=1".to_string()
    } else if crate::sys::host::in_container() {
        "restart the container with --cap-add=SYS_PTRACE --security-opt seccomp=unconfined"
            .to_string()
    } else {
        "sysctl -w kernel.yama.ptrace_scope=0   (or run golab as the user that owns the processes)"
            .to_string()
    };
    Finding {
        ok: false,
        blocking: true,
        what: format!(
            "ptrace is not permitted{scope_s}: {}",
            text.lines()
                .find(|l| l.contains("ptrace") || l.contains("not permitted"))
                .unwrap_or(text.trim())
        ),
        fix: Some(fix),
    }
}

/// /dev/kvm: present and answering KVM_GET_API_VERSION. Whether a guest really boots
/// under it is only known from a boot (the VM providers probe that).
fn kvm() -> Finding {
    use crate::sys::host::Kvm;
    match crate::sys::host::kvm() {
        Kvm::NotLinux => Finding {
            ok: true,
            blocking: false,
            what: "no KVM on this OS: qemu VMs use HVF (Intel macOS) or software emulation".into(),
            fix: None,
        },
        Kvm::Api(v) => {
            if v == 12 {
                Finding { ok: true, blocking: false, what: "/dev/kvm opens and answers (KVM API 12); a VM still probes a real boot before trusting it".into(), fix: None }
            } else {
                Finding {
                    ok: false,
                    blocking: false,
                    what: format!(
                        "/dev/kvm answered API version {v}, expected 12: VMs will use software emulation"
                    ),
                    fix: None,
                }
            }
        }
        Kvm::Unusable(e) => Finding {
            ok: false,
            blocking: false,
            what: format!(
                "/dev/kvm: {e}; VMs would use software emulation (the host provider does not need it)"
            ),
            fix: Some("modprobe kvm_intel (or kvm_amd), and add your user to the kvm group".into()),
        },
    }
}

/// Prints the findings; true when the startup lab can run.
pub fn report(findings: &[Finding]) -> (String, bool) {
    let mut s = String::new();
    for f in findings {
        let mark = if f.ok {
            "ok  "
        } else if f.blocking {
            "FAIL"
        } else {
            "warn"
        };
        s.push_str(&format!("{mark} {}\n", f.what));
        if let Some(fix) = &f.fix
            && !f.ok
        {
            s.push_str(&format!("     fix: {fix}\n"));
        }
    }
    let ready = findings.iter().all(|f| f.ok || !f.blocking);
    s.push_str(if ready {
        "golab run startup-trace can run here.\n"
    } else {
        "golab run startup-trace cannot run here until the FAIL lines are fixed.\n"
    });
    (s, ready)
}
