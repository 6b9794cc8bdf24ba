//! The ELF file read in-process (object): entry point, symbols, DWARF presence.
//! The third witness of the entry point, independent of readelf and gdb.

use anyhow::{Context, Result};
use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};
use std::collections::BTreeMap;
use std::path::Path;

pub struct Elf {
    pub entry: u64,
    pub has_dwarf: bool,
    /// name -> (address, is a text symbol)
    symbols: BTreeMap<String, (u64, bool)>,
    /// Text symbols by address: (start, size, name).
    text: Vec<(u64, u64, String)>,
}

impl Elf {
    pub fn read(path: &Path) -> Result<Elf> {
        let data =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let file = object::File::parse(&*data)
            .with_context(|| format!("{} is not an ELF file object can read", path.display()))?;
        let has_dwarf = file.sections().any(|s| {
            let n = s.name().unwrap_or("");
            n == ".debug_info" || n == ".zdebug_info"
        });
        let mut symbols = BTreeMap::new();
        let mut text = Vec::new();
        for s in file.symbols() {
            if let Ok(n) = s.name() {
                symbols.insert(n.to_string(), (s.address(), s.kind() == SymbolKind::Text));
                if s.kind() == SymbolKind::Text {
                    text.push((s.address(), s.size(), n.to_string()));
                }
            }
        }
        text.sort();
        Ok(Elf {
            entry: file.entry(),
            has_dwarf,
            symbols,
            text,
        })
    }

    pub fn symbol(&self, name: &str) -> Option<u64> {
        self.symbols.get(name).map(|s| s.0)
    }

    pub fn is_function(&self, name: &str) -> bool {
        self.symbols.get(name).map(|s| s.1).unwrap_or(false)
    }

    /// The text symbol that contains `addr`, as `name+0xOFF` (`name` at its start).
    pub fn describe(&self, addr: u64) -> Option<String> {
        let i = self.text.partition_point(|t| t.0 <= addr).checked_sub(1)?;
        let (start, size, name) = &self.text[i];
        if addr >= start + (*size).max(1) {
            return None;
        }
        Some(if addr == *start {
            name.clone()
        } else {
            format!("{name}+{:#x}", addr - start)
        })
    }

    /// A data symbol (not code) that starts exactly at `addr`: `runtime.m0`, `runtime.mainPC`.
    pub fn data_symbol_at(&self, addr: u64) -> Option<String> {
        self.symbols
            .iter()
            .find(|(_, (a, text))| *a == addr && !*text)
            .map(|(n, _)| n.clone())
    }

    /// The text symbol that starts exactly at `addr`.
    pub fn function_at(&self, addr: u64) -> Option<&str> {
        self.symbols
            .iter()
            .find(|(_, (a, text))| *a == addr && *text)
            .map(|(n, _)| n.as_str())
    }
}
