//! The DWARF line table of a binary, read in-process (gimli over object's sections,
//! compressed or not): the file and line of any pc, as dlv looks them up.
//! Not for: deciding which pc dlv looks up for a frame (grade/transcript.rs does that).

use anyhow::{Context, Result};
use object::{Object, ObjectSection};
use std::borrow::Cow;
use std::path::Path;

/// One row of a line-number program: (address, index into `Lines::files`, line).
type Row = (u64, usize, u32);

/// Rows of every line-number program, by address: one sorted run per sequence.
pub struct Lines {
    /// (start, end, rows).
    sequences: Vec<(u64, u64, Vec<Row>)>,
    files: Vec<String>,
}

impl Lines {
    pub fn read(path: &Path) -> Result<Lines> {
        let data =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let file = object::File::parse(&*data)
            .with_context(|| format!("{} is not an object file", path.display()))?;
        let load = |id: gimli::SectionId| -> Result<Cow<[u8]>, gimli::Error> {
            Ok(file
                .section_by_name(id.name())
                .and_then(|s| s.uncompressed_data().ok())
                .unwrap_or(Cow::Borrowed(&[])))
        };
        let owned = gimli::DwarfSections::load(load)?;
        let dwarf = owned.borrow(|s| gimli::EndianSlice::new(s, gimli::LittleEndian));
        let mut files: Vec<String> = Vec::new();
        let mut index: std::collections::HashMap<String, usize> = Default::default();
        let mut sequences = Vec::new();
        let mut units = dwarf.units();
        while let Some(header) = units.next()? {
            let unit = dwarf.unit(header)?;
            let Some(program) = unit.line_program.clone() else {
                continue;
            };
            let mut rows = program.rows();
            let mut seq: Vec<Row> = Vec::new();
            // The file index of the unit's line program -> ours.
            let mut local: std::collections::HashMap<u64, usize> = Default::default();
            while let Some((header, row)) = rows.next_row()? {
                if row.end_sequence() {
                    if let Some(first) = seq.first() {
                        let start = first.0;
                        seq.sort_by_key(|r| r.0);
                        sequences.push((start, row.address(), std::mem::take(&mut seq)));
                    }
                    continue;
                }
                let f = match local.get(&row.file_index()) {
                    Some(f) => *f,
                    None => {
                        let mut name = String::new();
                        if let Some(fe) = row.file(header) {
                            if let Some(dir) = fe.directory(header)
                                && let Ok(d) = dwarf.attr_string(&unit, dir)
                            {
                                let d = d.to_string_lossy();
                                if !d.is_empty() {
                                    name.push_str(&d);
                                    name.push('/');
                                }
                            }
                            if let Ok(n) = dwarf.attr_string(&unit, fe.path_name()) {
                                let n = n.to_string_lossy();
                                if n.starts_with('/') {
                                    name.clear();
                                }
                                name.push_str(&n);
                            }
                        }
                        let i = *index.entry(name.clone()).or_insert_with(|| {
                            files.push(name);
                            files.len() - 1
                        });
                        local.insert(row.file_index(), i);
                        i
                    }
                };
                let line = row.line().map(|l| l.get() as u32).unwrap_or(0);
                seq.push((row.address(), f, line));
            }
        }
        sequences.sort_by_key(|s| s.0);
        Ok(Lines { sequences, files })
    }

    /// The file (as the DWARF names it) and line of `pc` as dlv's `PCToLine` gives it:
    /// the first row at exactly `pc`, else the last row before it, in the sequence that
    /// holds it.
    pub fn at(&self, pc: u64) -> Option<(&str, u32)> {
        let i = self
            .sequences
            .partition_point(|s| s.0 <= pc)
            .checked_sub(1)?;
        let (_, end, rows) = &self.sequences[i];
        if pc >= *end {
            return None;
        }
        let first = rows.partition_point(|r| r.0 < pc);
        let j = match rows.get(first) {
            Some(r) if r.0 == pc => first,
            _ => first.checked_sub(1)?,
        };
        let (_, f, line) = rows[j];
        Some((self.files[f].as_str(), line))
    }

    pub fn is_empty(&self) -> bool {
        self.sequences.is_empty()
    }
}
