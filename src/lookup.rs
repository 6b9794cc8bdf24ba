//! `golab explain` and `golab reference`: what the reference predicts or holds for a
//! lab, decided here; the binary parses the arguments and prints one of the renderings.
//! Above `lab` and `reference` (a lab names its reference; the reference does not know
//! the labs).

use crate::exit::{Doc, document};
use crate::lab::{self, CheckKind};
use crate::reference::{Profile, callers, moments, sched, startup};
use crate::toolchain::GoVersion;
use anyhow::{Result, bail};

/// What `golab explain` was asked: a runq-order scenario and the state at main.main.
pub struct ExplainRequest {
    pub lab: String,
    pub go: String,
    pub n: u32,
    pub block: String,
    pub gosched: String,
    pub schedtick: u32,
    pub runnext: bool,
    pub local: u32,
    pub global: u32,
}

/// The run-order model, stepped through the scenario from the given state.
pub fn explain(req: &ExplainRequest) -> Result<Explained> {
    let lab = lab::load(&req.lab)?;
    if !lab.checks.iter().any(|c| c.kind == CheckKind::RunOrder) {
        bail!("lab {} has no run-order scenarios to explain", lab.name);
    }
    let v = GoVersion::parse(&req.go)?;
    let spec = lab::ScenarioSpec {
        id: "explain".into(),
        args: None,
        n: req.n,
        block: req.block.clone(),
        gosched: req.gosched.clone(),
        main_gosched: Vec::new(),
    };
    let scenario = spec.model().map_err(anyhow::Error::msg)?;
    let live = sched::LiveState {
        schedtick: req.schedtick,
        runqhead: 0,
        local_len: req.local,
        runnext: req.runnext,
        global_len: req.global,
    };
    Ok(Explained(sched::simulate(
        &Profile::line(v.minor),
        &scenario,
        &live,
    )))
}

/// An explanation, in each of the forms `golab explain` prints.
pub struct Explained(pub sched::Explanation);

impl Explained {
    /// Every step.
    pub fn text(&self) -> String {
        self.0.render()
    }
    /// The notable moments only (`--summary`).
    pub fn summary(&self) -> String {
        moments::summary(&self.0)
    }
    /// schema golab.explain.
    pub fn json(&self) -> String {
        document(Doc::Explain, &self.0)
    }
}

/// What `golab reference LAB --go V` prints: the lab's callers table or startup chain.
pub struct Printed {
    /// Said on stderr before it: the version golab has no table of its own for.
    pub warning: Option<String>,
    pub text: String,
    /// schema golab.reference, whichever of the two it holds.
    pub json: String,
}

/// The reference a lab is checked against, for one Go version.
pub fn reference(lab_name: &str, go: &str) -> Result<Printed> {
    let lab = lab::load(lab_name)?;
    let v = GoVersion::parse(go)?;
    let startup_chain = lab.chain.as_deref() == Some("startup");
    let reads_callers = lab
        .checks
        .iter()
        .any(|c| matches!(c.kind, CheckKind::StaticCallers | CheckKind::DynamicCallers));
    if !startup_chain && reads_callers {
        let (t, warning) = callers::Table::for_version(v)?;
        let table: std::collections::BTreeMap<_, _> = callers::FUNCTIONS
            .iter()
            .map(|f| {
                let here = t.resolve(f).unwrap_or(f.to_string());
                (here.clone(), t.notes_callers(&here))
            })
            .collect();
        return Ok(Printed {
            warning,
            text: t.render(v),
            json: document(
                Doc::Reference,
                serde_json::json!({
                    "go": t.go, "source": t.source,
                    "callers": table,
                    "notes_differences": t.notes_differences(),
                }),
            ),
        });
    }
    if !startup_chain {
        bail!(
            "lab {} has no reference chain to print (its lab.yaml sets no `chain: startup`)",
            lab.name
        );
    }
    let (p, warning) = Profile::for_version(v);
    Ok(Printed {
        warning,
        text: startup::render(&p, v),
        json: document(
            Doc::Reference,
            serde_json::json!({"profile": p, "chain": startup::chain(&p), "walk": startup::walk(&p)}),
        ),
    })
}
