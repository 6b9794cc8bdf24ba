//! `value` checks: a value read inside the process (through dlv, at a stop the lab
//! names) against a `Fact` golab knows independently.
use super::*;

impl Fact {
    fn value(&self, o: &Observation) -> Option<Val> {
        let f = &o.facts;
        Some(match self {
            Fact::Argc => Val::Int(f.argc),
            Fact::Argv => Val::Int(f.argv?),
            Fact::PageSize => Val::Int(f.page_size),
            Fact::Ncpu => Val::Int(f.ncpu),
            Fact::Gomaxprocs => Val::Int(f.gomaxprocs),
            Fact::Symbol(s) => Val::Int(*f.symbols.get(s)?),
            Fact::Int(n) => Val::Int(*n),
            Fact::Bool(b) => Val::Bool(*b),
            Fact::Name(_) => return None,
        })
    }

    fn name(&self) -> String {
        match self {
            Fact::Argc => "argc: the program's argument count".into(),
            Fact::Argv => "argv: the entry stack pointer + 8".into(),
            Fact::PageSize => "the machine's page size".into(),
            Fact::Ncpu => "the machine's logical CPUs".into(),
            Fact::Gomaxprocs => "GOMAXPROCS of the run".into(),
            Fact::Symbol(s) => format!("the address of {s}"),
            Fact::Int(_) | Fact::Bool(_) => "literal".into(),
            Fact::Name(_) => "a Go constant, by name".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Val {
    Int(u64),
    Bool(bool),
}

impl std::fmt::Display for Val {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Val::Int(n) if *n > 0xffff => write!(f, "{n:#x}"),
            Val::Int(n) => write!(f, "{n}"),
            Val::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// `waitReasonChanReceive`, `_Gwaiting`, `runtime.waitReasonZero`: a Go identifier,
/// optionally qualified.
/// The name in dlv's rendering of a constant: `waitReasonChanReceive (14)` ->
/// `waitReasonChanReceive`; `runtime.waitReasonChanReceive (14)` as well.
fn value_name(observed: &str) -> Option<&str> {
    let n = observed.split_whitespace().next()?;
    is_go_name(n).then_some(n)
}

fn parse_val(s: &str) -> Option<Val> {
    match s.trim() {
        "true" => Some(Val::Bool(true)),
        "false" => Some(Val::Bool(false)),
        t => parse_int(t).map(Val::Int),
    }
}

pub(super) fn values(
    spec: &CheckSpec,
    o: &Observation,
    v: crate::toolchain::GoVersion,
) -> Judgement {
    let mut lines = Vec::new();
    let mut ok = true;
    for x in spec
        .expect
        .iter()
        .filter(|x| crate::toolchain::applies(x.go.as_deref(), v))
    {
        let key = match (&x.eval, &x.reg) {
            (Some(e), _) => format!("eval {e}"),
            (_, Some(r)) => format!("reg {}", r.to_lowercase()),
            _ => continue,
        };
        let what = key
            .split_once(' ')
            .map(|(_, w)| w.to_string())
            .unwrap_or_default();
        let fact = Fact::parse(&x.equals).expect("validated when the lab was loaded");
        let hit: Option<&Hit> = o.dlv.hits.iter().find(|h| {
            stop_matches(h, x.at.function(), x.at.caller()) && x.at.scope().admits(h, &o.dlv.hits)
        });
        let expected = fact.value(o);
        let observed = hit.and_then(|h| h.values.get(&key));
        if let (Fact::Name(want), Some(obs)) = (&fact, observed) {
            let got = value_name(obs);
            let same =
                got.is_some_and(|g| g == want || g.rsplit('.').next() == want.rsplit('.').next());
            ok &= same;
            lines.push(line(
                if same { Mark::Good } else { Mark::Bad },
                if same {
                    format!("{what} at {} = {obs}", x.at.describe())
                } else {
                    format!(
                        "{what} at {}: observed {obs}, expected {want}",
                        x.at.describe()
                    )
                },
            ));
            continue;
        }
        match (observed, expected) {
            (None, _) => {
                ok = false;
                lines.push(line(
                    Mark::Missing,
                    format!("{what} at {}: no such stop was recorded", x.at.describe()),
                ));
            }
            (Some(obs), Some(exp)) => {
                let v = parse_val(obs);
                if v == Some(exp) {
                    lines.push(line(
                        Mark::Good,
                        format!(
                            "{what} at {} = {} ({})",
                            x.at.describe(),
                            v.map(|v| v.to_string()).unwrap_or_default(),
                            fact.name()
                        ),
                    ));
                } else {
                    ok = false;
                    let shown = v.map(|v| v.to_string()).unwrap_or_else(|| obs.clone());
                    lines.push(line(
                        Mark::Bad,
                        format!(
                            "{what} at {}: observed {shown}, expected {exp} ({})",
                            x.at.describe(),
                            fact.name()
                        ),
                    ));
                }
            }
            (Some(_), None) => {
                ok = false;
                lines.push(line(
                    Mark::Missing,
                    format!("{what}: golab does not know {} for this run", fact.name()),
                ));
            }
        }
    }
    Judgement {
        passed: ok,
        summary: spec.says.clone().unwrap_or_default(),
        lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_enum_value_compares_by_its_name() {
        assert_eq!(
            Fact::parse("waitReasonChanReceive").unwrap(),
            Fact::Name("waitReasonChanReceive".into())
        );
        assert_eq!(
            value_name("waitReasonChanReceive (14)"),
            Some("waitReasonChanReceive")
        );
        assert_eq!(
            value_name("runtime.waitReasonChanReceive (14)"),
            Some("runtime.waitReasonChanReceive")
        );
        assert_eq!(value_name("14"), None);
        assert!(Fact::parse("two words").is_err());
    }

    #[test]
    fn facts_parse() {
        assert_eq!(
            Fact::parse("symbol runtime.main").unwrap(),
            Fact::Symbol("runtime.main".into())
        );
        assert_eq!(Fact::parse("10000").unwrap(), Fact::Int(10000));
        assert_eq!(Fact::parse("0x10").unwrap(), Fact::Int(16));
        assert!(Fact::parse("cpus").is_err());
    }

    #[test]
    fn lcs_keeps_the_common_order() {
        let a: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        let b: Vec<String> = ["a", "c", "b", "d"].map(String::from).to_vec();
        let l = lcs(&a, &b);
        assert_eq!(l.len(), 3);
        assert_eq!(l[0], (0, 0));
        assert_eq!(*l.last().unwrap(), (3, 3));
    }
}
