//! The NoCloud seed, written in Rust: a FAT12 image labelled `cidata` holding
//! `user-data` and `meta-data` at its root. cloud-init's NoCloud datasource reads a vfat
//! or iso9660 filesystem with that label; FAT needs no genisoimage, mkisofs or xorriso
//! (none of which a Mac has), and QEMU attaches it as a raw virtio disk.
//! `cloud-localds -f vfat` makes the same kind of seed (`mkfs.vfat -n cidata`).

use anyhow::{Context, Result, bail};
use std::io::{Cursor, Write};
use std::path::Path;

/// The label cloud-init looks for (lower case, as cloud-localds writes it; cloud-init
/// accepts CIDATA too since 2020, older releases only this).
pub const LABEL: &[u8; 11] = b"cidata     ";

/// The image's bytes: FAT12, `files` at the root (8.3-safe names are not needed: long
/// names are written as VFAT entries).
pub fn image(files: &[(&str, &[u8])]) -> Result<Vec<u8>> {
    for (name, _) in files {
        if name.is_empty() || name.contains('/') || name.len() > 64 {
            bail!("'{name}' is not a seed file name");
        }
    }
    let payload: usize = files.iter().map(|(_, b)| b.len()).sum();
    // Room for the files twice over (cluster rounding), at least 1 MiB, in 512-byte
    // sectors; FAT12 addresses up to 4084 clusters, so larger seeds get bigger clusters
    // from fatfs's defaults.
    let bytes = (payload * 2 + (1 << 20)).div_ceil(512) * 512;
    let mut disk = Cursor::new(vec![0u8; bytes]);
    fatfs::format_volume(
        &mut disk,
        fatfs::FormatVolumeOptions::new()
            .volume_label(*LABEL)
            .volume_id(0x6c61_6267), // "glab": a fixed id, so the same files give the same image
    )
    .context("cannot format the cloud-init seed")?;
    disk.set_position(0);
    {
        let fs = fatfs::FileSystem::new(&mut disk, fatfs::FsOptions::new())
            .context("cannot open the seed just formatted")?;
        for (name, body) in files {
            let root = fs.root_dir();
            let mut f = root
                .create_file(name)
                .with_context(|| format!("cannot create {name} in the seed"))?;
            f.truncate()?;
            f.write_all(body)
                .with_context(|| format!("cannot write {name} into the seed"))?;
            f.flush()?;
        }
        fs.unmount().context("cannot finish the seed")?;
    }
    Ok(disk.into_inner())
}

/// Writes the seed image to `out` (atomically).
pub fn write(out: &Path, files: &[(&str, &[u8])]) -> Result<()> {
    crate::files::write_atomic(out, &image(files)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::process::Command;

    fn files() -> Vec<(&'static str, Vec<u8>)> {
        // The provisioner makes user-data a few tens of KiB: more than one cluster.
        let mut user_data = b"#cloud-config\nusers: []\n".to_vec();
        user_data.extend(std::iter::repeat_n(b'#', 70_000));
        user_data.push(b'\n');
        vec![
            ("user-data", user_data),
            (
                "meta-data",
                b"instance-id: golab-lab-1\nlocal-hostname: golab-lab\n".to_vec(),
            ),
        ]
    }

    fn written() -> (
        tempfile::TempDir,
        std::path::PathBuf,
        Vec<(&'static str, Vec<u8>)>,
    ) {
        let d = tempfile::tempdir().unwrap();
        let f = files();
        let refs: Vec<(&str, &[u8])> = f.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        let p = d.path().join("seed.img");
        write(&p, &refs).unwrap();
        (d, p, f)
    }

    #[test]
    fn the_seed_reads_back_with_its_label_and_files() {
        let (_d, p, f) = written();
        let img = std::fs::read(&p).unwrap();
        let fs = fatfs::FileSystem::new(Cursor::new(img), fatfs::FsOptions::new()).unwrap();
        assert_eq!(fs.fat_type(), fatfs::FatType::Fat12);
        assert_eq!(fs.volume_label(), "cidata");
        for (name, body) in &f {
            let mut got = Vec::new();
            fs.root_dir()
                .open_file(name)
                .unwrap()
                .read_to_end(&mut got)
                .unwrap();
            assert_eq!(&got, body, "{name}");
        }
    }

    /// What Linux's own tools see, as cloud-init's `blkid -tLABEL=cidata` and mount do.
    #[test]
    fn blkid_and_fsck_vfat_accept_the_seed() {
        let (_d, p, f) = written();
        let o = Command::new("blkid")
            .args(["-p", "-o", "export"])
            .arg(&p)
            .output()
            .expect("blkid (util-linux) runs");
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "{out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(out.contains("TYPE=vfat"), "{out}");
        assert!(out.lines().any(|l| l == "LABEL=cidata"), "{out}");
        let o = Command::new("fsck.vfat")
            .arg("-n")
            .arg(&p)
            .output()
            .expect("fsck.vfat (dosfstools) runs");
        assert!(
            o.status.success(),
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        // mtools reads each file back as a third implementation.
        for (name, body) in &f {
            let o = Command::new("mtype")
                .args(["-i"])
                .arg(&p)
                .arg(format!("::{name}"))
                .output()
                .expect("mtype (mtools) runs");
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            assert_eq!(&o.stdout, body, "{name}");
        }
    }

    #[test]
    fn the_same_files_give_the_same_image_and_bad_names_are_refused() {
        let f = files();
        let refs: Vec<(&str, &[u8])> = f.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        assert_eq!(image(&refs).unwrap(), image(&refs).unwrap());
        assert!(image(&[("a/b", b"")]).is_err());
    }
}
