//! The one table of the toolchains golab knows (`toolchains.txt` at the repository
//! root, compiled in): the Go releases with their official tarballs' SHA-256, the dlv
//! releases with their native Go ranges, the matrix's pairs, and the course's pin. The
//! scripts read the same file; nothing else writes a version or a checksum down.

/// The table itself.
pub const TABLE: &str = include_str!("../toolchains.txt");

/// A `go` row: a Go release golab builds, and its official linux-amd64 tarball.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoRow {
    /// The GOROOT's folder name (`go1.17`).
    pub name: &'static str,
    /// The full version without `go` (`1.17.1`).
    pub version: &'static str,
    pub tarball: &'static str,
    pub tarball_sha256: &'static str,
}

/// The course's pair: the Go and dlv the labs are written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pin {
    pub go: GoRow,
    /// dlv's version without `v` (`1.9.1`).
    pub dlv: &'static str,
}

impl Pin {
    /// dlv's version as `go install` takes it (`v1.9.1`).
    pub fn dlv_tag(&self) -> String {
        format!("v{}", self.dlv)
    }
}

fn rows(kind: &str) -> impl Iterator<Item = Vec<&'static str>> + '_ {
    TABLE
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(move |f| f.first() == Some(&kind))
}

/// Every `go` row.
pub fn go_rows() -> Vec<GoRow> {
    rows("go")
        .filter(|f| f.len() >= 7)
        .map(|f| GoRow {
            name: f[1],
            version: f[2],
            tarball: f[5],
            tarball_sha256: f[6],
        })
        .collect()
}

/// The `go` row of a version (`1.17.1` or `go1.17.1`), if golab pins it.
pub fn go_row(version: &str) -> Option<GoRow> {
    let v = version.strip_prefix("go").unwrap_or(version);
    go_rows().into_iter().find(|g| g.version == v)
}

/// The course's pin (the `pin` row).
pub fn course() -> Pin {
    let f = rows("pin")
        .next()
        .expect("toolchains.txt has a pin row (tests/pins.rs checks it)");
    let go = go_rows()
        .into_iter()
        .find(|g| g.name == f[1])
        .expect("the pin's Go has a go row");
    Pin { go, dlv: f[2] }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pin_names_a_go_row_and_a_built_dlv() {
        let p = course();
        assert!(p.go.version.starts_with(&p.go.name["go".len()..]), "{p:?}");
        assert_eq!(
            p.go.tarball,
            format!("go{}.linux-amd64.tar.gz", p.go.version)
        );
        assert_eq!(p.go.tarball_sha256.len(), 64);
        assert!(p.go.tarball_sha256.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(
            rows("dlv").any(|f| f[1] == p.dlv && f.get(3) != Some(&"-")),
            "the pinned dlv {} is one golab builds",
            p.dlv
        );
        assert_eq!(p.dlv_tag(), format!("v{}", p.dlv));
        assert_eq!(go_row(&format!("go{}", p.go.version)), Some(p.go));
        assert_eq!(go_row("1.0.0"), None);
    }
}
