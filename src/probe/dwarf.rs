//! The DWARF line table of a binary, read in-process (gimli over object's sections,
//! compressed or not): the file and line of any pc, as dlv looks them up.
//! Not for: deciding which pc dlv looks up for a frame (grade/transcript.rs does that).

use anyhow::{Context, Result};
use object::{Object, ObjectSection};
use std::borrow::Cow;
use std::path::Path;

/// One row of a line-number program: (address, index into `Lines::files`, line).
type Row = (u64, u32, u32);

/// The most rows kept from all line-number programs of a binary. A lab program built
/// with `-l -N` has ~300k (the whole runtime included); a binary past this is a
/// line-table bomb (a unit of its own written in a cgo preamble's asm), not a Go
/// program of this course.
pub const MAX_ROWS: usize = 4_000_000;

/// The most bytes of DWARF sections loaded, decompressed, all sections together (a lab
/// program has a few MB): a compressed section states its size, checked before it is
/// inflated.
pub const MAX_SECTION_BYTES: u64 = 128 << 20;

/// The most bytes of line-number programs run, all units together: units may share one
/// program (each `DW_AT_stmt_list` is read once), or name overlapping ones.
pub const MAX_PROGRAM_BYTES: u64 = 64 << 20;

/// The binary's line table is past a limit: it is not read (the facts that need it are
/// not checked), never read whole.
pub use super::TooLarge;

/// Rows of every line-number program, by address: one sorted run per sequence.
pub struct Lines {
    /// (start, end, rows).
    sequences: Vec<(u64, u64, Vec<Row>)>,
    files: Vec<String>,
}

impl Lines {
    /// The line table of the binary at `path`, in bounded work and memory: past
    /// `MAX_SECTION_BYTES`, `MAX_PROGRAM_BYTES` or `MAX_ROWS` the error is a `TooLarge`
    /// that says which.
    pub fn read(path: &Path) -> Result<Lines> {
        let data =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let file = object::File::parse(&*data)
            .with_context(|| format!("{} is not an object file", path.display()))?;
        let loaded = std::cell::Cell::new(0u64);
        let too_large: std::cell::RefCell<Option<String>> = Default::default();
        let load = |id: gimli::SectionId| -> Result<Cow<[u8]>, gimli::Error> {
            let Some(s) = file.section_by_name(id.name()) else {
                return Ok(Cow::Borrowed(&[]));
            };
            // The size it inflates to, as its header states it (object inflates to
            // exactly that, or fails).
            let size = s
                .compressed_file_range()
                .map(|r| r.uncompressed_size)
                .unwrap_or_else(|_| s.size());
            if loaded.get().saturating_add(size) > MAX_SECTION_BYTES {
                too_large.borrow_mut().get_or_insert_with(|| {
                    format!(
                        "the binary's DWARF sections are larger than {} MiB uncompressed ({} is {size} bytes)",
                        MAX_SECTION_BYTES >> 20,
                        id.name()
                    )
                });
                return Ok(Cow::Borrowed(&[]));
            }
            loaded.set(loaded.get() + size);
            Ok(s.uncompressed_data().unwrap_or(Cow::Borrowed(&[])))
        };
        let owned = gimli::DwarfSections::load(load)?;
        if let Some(why) = too_large.into_inner() {
            return Err(TooLarge(why).into());
        }
        let dwarf = owned.borrow(|s| gimli::EndianSlice::new(s, gimli::LittleEndian));
        let mut files: Vec<String> = Vec::new();
        let mut index: std::collections::HashMap<String, usize> = Default::default();
        let mut sequences = Vec::new();
        let mut programs_read = std::collections::HashSet::new();
        let (mut program_bytes, mut row_count) = (0u64, 0usize);
        let mut units = dwarf.units();
        while let Some(header) = units.next()? {
            let unit = dwarf.unit(header)?;
            let Some(program) = unit.line_program.clone() else {
                continue;
            };
            if !programs_read.insert(program.header().offset().0) {
                continue;
            }
            program_bytes = program_bytes.saturating_add(program.header().unit_length() as u64);
            if program_bytes > MAX_PROGRAM_BYTES {
                return Err(TooLarge(format!(
                    "the binary's line-number programs are larger than {} MiB",
                    MAX_PROGRAM_BYTES >> 20
                ))
                .into());
            }
            let mut rows = program.rows();
            let mut seq: Vec<Row> = Vec::new();
            // The file index of the unit's line program -> ours.
            let mut local: std::collections::HashMap<u64, u32> = Default::default();
            while let Some((header, row)) = rows.next_row()? {
                row_count += 1;
                if row_count > MAX_ROWS {
                    return Err(TooLarge(format!(
                        "the binary's line table is larger than {MAX_ROWS} rows"
                    ))
                    .into());
                }
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
                        }) as u32;
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
        Some((self.files[f as usize].as_str(), line))
    }

    pub fn is_empty(&self) -> bool {
        self.sequences.is_empty()
    }
}
