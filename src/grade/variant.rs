//! Variants: each student gets their own version of a lab's program (function names,
//! features that move the entry point, goroutine counts), drawn from the student's id
//! and the course's seed, so the right answers differ between students and the grader
//! can rebuild any student's variant from the same two strings.

use crate::lab::{Lab, ScenarioSpec, VariantSpec};
use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// The parameters drawn for one student.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub student: String,
    pub params: BTreeMap<String, serde_norway::Value>,
}

impl Variant {
    /// The parameters in words, for the gradebook and the student's handout.
    pub fn describe(&self) -> String {
        self.params
            .iter()
            .map(|(k, v)| format!("{k}={}", show(v)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn show(v: &serde_norway::Value) -> String {
    match v {
        serde_norway::Value::String(s) => s.clone(),
        serde_norway::Value::Sequence(s) => {
            format!("[{}]", s.iter().map(show).collect::<Vec<_>>().join(","))
        }
        other => serde_norway::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

/// A student id usable as a folder name and a gradebook cell: letters, digits, `.`,
/// `_`, `-`, starting with a letter or digit (so never `..`, a hidden file, an option,
/// or a spreadsheet formula).
pub fn check_student_id(id: &str) -> Result<()> {
    let ok = id.len() <= 64
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        bail!(
            "'{id}' is not a usable student id (letters, digits, '.', '_' and '-', at most 64, starting with a letter or digit)"
        );
    }
    Ok(())
}

/// Draws every parameter: SHA-256 of seed, student and parameter name picks a choice.
pub fn draw(spec: &VariantSpec, seed: &str, student: &str) -> Variant {
    let mut params = BTreeMap::new();
    for (name, choices) in &spec.params {
        let mut h = Sha256::new();
        for part in [seed, student, name] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        let d = h.finalize();
        let n = u64::from_le_bytes(d[..8].try_into().expect("8 bytes"));
        if !choices.is_empty() {
            params.insert(
                name.clone(),
                choices[(n % choices.len() as u64) as usize].clone(),
            );
        }
    }
    Variant {
        student: student.to_string(),
        params,
    }
}

/// Writes the variant's lab folder: the lab's files, the program rendered from the
/// template, and for scenario labs a lab.yaml whose one scenario is the variant's.
pub fn materialize(lab: &Lab, v: &Variant, dir: &Path) -> Result<()> {
    let spec = lab.variant.as_ref().context("this lab has no variant")?;
    std::fs::create_dir_all(dir)?;
    for e in std::fs::read_dir(&lab.dir)? {
        let e = e?;
        if e.file_type()?.is_file() {
            std::fs::copy(e.path(), dir.join(e.file_name()))?;
        }
    }
    std::fs::write(dir.join("main.go"), render(lab, spec, v)?)?;
    if spec.scenario {
        let mut l = lab.clone();
        let get = |k: &str| v.params.get(k).map(show);
        l.scenarios = vec![ScenarioSpec {
            id: "variant".into(),
            args: None,
            n: get("n")
                .and_then(|n| n.parse().ok())
                .context("a scenario variant needs a parameter n")?,
            block: get("block").unwrap_or_else(|| "wg".into()),
            gosched: get("gosched").unwrap_or_else(|| "none".into()),
            main_gosched: Vec::new(),
        }];
        std::fs::write(dir.join("lab.yaml"), serde_norway::to_string(&l)?)?;
    }
    Ok(())
}

/// The program text of a variant (minijinja; an undefined name is an error).
pub fn render(lab: &Lab, spec: &VariantSpec, v: &Variant) -> Result<String> {
    let path = lab.dir.join(&spec.template);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the variant template {}", path.display()))?;
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_template("program", &text)
        .with_context(|| format!("{}", path.display()))?;
    let ctx: BTreeMap<String, serde_json::Value> = v
        .params
        .iter()
        .map(|(k, val)| (k.clone(), serde_json::to_value(val).unwrap_or_default()))
        .collect();
    env.get_template("program")?
        .render(minijinja::value::Serde(&ctx))
        .with_context(|| format!("rendering {}", path.display()))
}

/// Reads the student ids of a roster: the column headed `student` (or `id`, or the
/// first column), one student per row.
pub fn roster(text: &str) -> Result<Vec<String>> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = lines
        .next()
        .context("the roster is empty")?
        .split(',')
        .map(|h| h.trim().trim_matches('"').to_lowercase())
        .collect();
    let col = header
        .iter()
        .position(|h| h == "student")
        .or_else(|| header.iter().position(|h| h == "id"))
        .unwrap_or(0);
    let mut ids = Vec::new();
    for (n, l) in lines.enumerate() {
        let cell = l
            .split(',')
            .nth(col)
            .map(|c| c.trim().trim_matches('"').to_string())
            .unwrap_or_default();
        check_student_id(&cell).with_context(|| format!("roster line {}", n + 2))?;
        if ids.contains(&cell) {
            bail!("roster line {}: student '{cell}' is listed twice", n + 2);
        }
        ids.push(cell);
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab() -> Lab {
        crate::lab::load_file(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("labs/startup-trace/lab.yaml"),
        )
        .unwrap()
    }

    #[test]
    fn the_same_seed_and_student_give_the_same_variant_and_students_differ() {
        let spec = lab().variant.unwrap();
        let a = draw(&spec, "fall-2026", "alice");
        assert_eq!(a, draw(&spec, "fall-2026", "alice"));
        let others: Vec<Variant> = (0..20)
            .map(|i| draw(&spec, "fall-2026", &format!("s{i}")))
            .collect();
        assert!(
            others.iter().filter(|o| o.params == a.params).count() < 5,
            "variants barely differ"
        );
        // Another course's seed gives the same students other variants.
        let moved = (0..20)
            .filter(|i| draw(&spec, "spring-2027", &format!("s{i}")) != others[*i as usize])
            .count();
        assert!(moved > 10, "{moved}");
    }

    #[test]
    fn a_variant_renders_a_program_and_rejects_unknown_names() {
        let l = lab();
        let spec = l.variant.clone().unwrap();
        let v = draw(&spec, "s", "bob");
        let text = render(&l, &spec, &v).unwrap();
        let func = show(&v.params["func"]);
        assert!(text.contains(&format!("func {func}()")), "{text}");
        let mut bad = v.clone();
        bad.params.remove("func");
        assert!(format!("{:#}", render(&l, &spec, &bad).unwrap_err()).contains("undefined"));
    }

    #[test]
    fn roster_ids_are_checked() {
        assert_eq!(
            roster("name,student\nAlice,alice\nBob,bob-2\n").unwrap(),
            ["alice", "bob-2"]
        );
        assert!(format!("{:#}", roster("student\n../etc\n").unwrap_err()).contains("line 2"));
        assert!(roster("student\na\na\n").is_err());
    }
}
