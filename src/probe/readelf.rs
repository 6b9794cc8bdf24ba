//! `readelf -h`: the ELF header as binutils reads it (the seed's first way to the entry).

use crate::machine::{Cmd, Machine};
use anyhow::{Context, Result};
use std::path::Path;
use std::time::Duration;

pub struct Header {
    pub entry: u64,
    /// The full output, kept for the transcript.
    pub text: String,
}

pub fn header(m: &Machine, readelf: &Path, binary: &Path) -> Result<Header> {
    let out = m.run(
        Cmd::new(readelf).arg("-h").arg(binary),
        "readelf -h",
        Duration::from_secs(60),
    )?;
    if !out.ok() {
        anyhow::bail!(
            "readelf -h {} failed: {}",
            binary.display(),
            out.combined().trim()
        );
    }
    let entry =
        parse_entry(&out.stdout).context("readelf printed no 'Entry point address' line")?;
    Ok(Header {
        entry,
        text: out.stdout,
    })
}

/// Finds `Entry point address: 0x45d820`.
pub fn parse_entry(text: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let v = l.trim().strip_prefix("Entry point address:")?;
        u64::from_str_radix(v.trim().trim_start_matches("0x"), 16).ok()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_entry_line() {
        // Recorded from a real run: `readelf -h main` (binutils 2.40, Go 1.19.8 lab binary).
        let text = include_str!("../../tests/fixtures/readelf-h.go1.19.txt");
        assert_eq!(super::parse_entry(text), Some(0x45d820));
    }
}
