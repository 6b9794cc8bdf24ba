//! The offline edits that make a baked ext4 file system a Vagrant box's, shared by every
//! box `golab image build` makes (libvirt's in `image`, VirtualBox's and vagrant-qemu's
//! in `bootdisk`): e2fsprogs' `debugfs` on the raw image, no root, no loop device, each
//! edit read back; and Vagrant's insecure key, which the boxes carry.

use crate::exec;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The lab user's name in a baked image (cloud-init's user-data makes it).
pub const LAB_USER: &str = "golab";

/// Vagrant's insecure public key(s), which a box carries until Vagrant swaps in a fresh
/// key at the first `vagrant up`: `GOLAB_VAGRANT_PUBKEY`, else the installed vagrant's.
pub(crate) fn vagrant_insecure_keys() -> Result<String> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Ok(p) = std::env::var("GOLAB_VAGRANT_PUBKEY") {
        return std::fs::read_to_string(&p).with_context(|| format!("GOLAB_VAGRANT_PUBKEY={p}"));
    }
    for pattern_root in [
        "/usr/share/rubygems-integration/all/gems",
        "/opt/vagrant/embedded/gems/gems",
        "/usr/local/share/gems/gems",
    ] {
        if let Ok(rd) = std::fs::read_dir(pattern_root) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with("vagrant-") {
                    dirs.push(e.path().join("keys"));
                }
            }
        }
    }
    dirs.push("/usr/share/vagrant/keys".into());
    dirs.push("/usr/lib/ruby/vendor_ruby/vagrant/keys".into());
    for d in dirs {
        if let Ok(t) = std::fs::read_to_string(d.join("vagrant.pub")) {
            let mut keys = t;
            // Vagrant >= 2.3.7 adds an ed25519 key beside the RSA one.
            if let Ok(more) = std::fs::read_to_string(d.join("vagrant.pub.ed25519")) {
                keys.push_str(&more);
            }
            return Ok(keys);
        }
    }
    bail!(
        "cannot find Vagrant's insecure public key (keys/vagrant.pub of the vagrant gem): install vagrant, set GOLAB_VAGRANT_PUBKEY, or pass --no-box"
    )
}

pub(crate) fn tool_ok(c: Command, what: &str, secs: u64) -> Result<exec::Captured> {
    let o = exec::run(c, what, Duration::from_secs(secs))?;
    if !o.ok() {
        bail!("{what} failed: {}", o.combined().trim());
    }
    Ok(o)
}

/// `debugfs -R CMD` on an ext4 image, read-only: what it printed.
pub(crate) fn debugfs_read(raw: &Path, cmd: &str) -> Result<String> {
    let mut c = Command::new("debugfs");
    c.arg("-R").arg(cmd).arg(raw);
    Ok(tool_ok(c, &format!("debugfs -R {cmd:?}"), 120)?.stdout)
}

/// A file written into an ext4 image: where, what, owner and mode.
struct Put {
    path: String,
    text: String,
    uid: u32,
    gid: u32,
    mode: u32,
}

/// The edits that make a baked disk a Vagrant box (see the module's doc), applied to the
/// raw ext4 image `raw` with `debugfs -w`, then read back and checked.
pub fn make_vagrant_ready(raw: &Path, keys: &str) -> Result<()> {
    let passwd = debugfs_read(raw, "cat /etc/passwd")?;
    let (uid, gid, home) = passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 7 && f[0] == LAB_USER).then(|| (f[2].parse().ok(), f[3].parse().ok(), f[5]))
        })
        .and_then(|(u, g, h)| Some((u?, g?, h.to_string())))
        .with_context(|| format!("the image has no user {LAB_USER} in /etc/passwd"))?;
    if !home.starts_with('/') || home.contains(char::is_whitespace) {
        bail!("{LAB_USER}'s home {home:?} is not a plain absolute path");
    }
    let ssh_dir = format!("{home}/.ssh");
    let puts = [
        Put {
            path: "/etc/systemd/network/20-wired.network".into(),
            text: "[Match]\nName=en* eth*\n\n[Network]\nDHCP=ipv4\nIPv6AcceptRA=no\nLinkLocalAddressing=no\n".into(),
            uid: 0,
            gid: 0,
            mode: 0o100644,
        },
        Put {
            path: "/etc/cloud/cloud-init.disabled".into(),
            text: String::new(),
            uid: 0,
            gid: 0,
            mode: 0o100644,
        },
        Put {
            path: "/etc/ssh/sshd_config.d/90-vagrant-box.conf".into(),
            text: "# golab box: no reverse lookup of the client (the guest has no name server)\nUseDNS no\n".into(),
            uid: 0,
            gid: 0,
            mode: 0o100644,
        },
        Put {
            path: "/etc/systemd/system/ssh.service.d/golab-host-keys.conf".into(),
            text: "[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n".into(),
            uid: 0,
            gid: 0,
            mode: 0o100644,
        },
        Put {
            path: format!("{ssh_dir}/authorized_keys"),
            text: keys.to_string(),
            uid,
            gid,
            mode: 0o100600,
        },
    ];
    let staging = tempfile::tempdir()?;
    let mut script = String::new();
    // Each machine its own host keys (made before sshd's config test, at its first boot).
    for l in debugfs_read(raw, "ls -l /etc/ssh")?.lines() {
        if let Some(n) = l
            .split_whitespace()
            .last()
            .filter(|n| n.starts_with("ssh_host_"))
        {
            script.push_str(&format!("rm /etc/ssh/{n}\n"));
        }
    }
    // Every folder on the way (debugfs's mkdir makes one level; "exists" is harmless).
    for p in &puts {
        let dir = p.path.rsplit_once('/').map_or("", |(d, _)| d);
        let mut at = String::new();
        for part in dir.split('/').filter(|p| !p.is_empty()) {
            at = format!("{at}/{part}");
            script.push_str(&format!("mkdir {at}\n"));
        }
    }
    script.push_str(&format!(
        "mkdir {ssh_dir}\nsif {ssh_dir} uid {uid}\nsif {ssh_dir} gid {gid}\nsif {ssh_dir} mode 040700\n"
    ));
    for (i, p) in puts.iter().enumerate() {
        let local = staging.path().join(i.to_string());
        std::fs::write(&local, &p.text)?;
        let (dir, file) = p.path.rsplit_once('/').unwrap();
        script.push_str(&format!(
            "rm {0}\ncd {dir}\nwrite {1} {file}\ncd /\nsif {0} uid {2}\nsif {0} gid {3}\nsif {0} mode 0{4:o}\n",
            p.path,
            local.display(),
            p.uid,
            p.gid,
            p.mode
        ));
    }
    let sf = staging.path().join("script");
    std::fs::write(&sf, &script)?;
    let mut c = Command::new("debugfs");
    c.arg("-w").arg("-f").arg(&sf).arg(raw);
    tool_ok(c, "debugfs -w (the box's edits)", 300)?;
    // Read back: debugfs goes on after a failed command, so each edit is checked.
    for p in &puts {
        let got = debugfs_read(raw, &format!("cat {}", p.path))?;
        if got != p.text {
            bail!("the box's {} did not take: it reads {got:?}", p.path);
        }
        let st = debugfs_read(raw, &format!("stat {}", p.path))?;
        let want = format!("User: {:>5}   Group: {:>5}", p.uid, p.gid);
        let squeeze = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
        let mode = format!("Mode: {:04o}", p.mode & 0o7777);
        if !squeeze(&st).contains(&squeeze(&want)) || !squeeze(&st).contains(&mode) {
            bail!(
                "the box's {} has the wrong owner or mode: {}",
                p.path,
                st.lines().take(3).collect::<Vec<_>>().join(" / ")
            );
        }
    }
    if debugfs_read(raw, "ls -l /etc/ssh")?.contains("ssh_host_") {
        bail!("the box still holds the bake machine's ssh host keys");
    }
    e2fsck(raw)
}

/// `e2fsck -f -p` after debugfs's edits (debugfs leaves the free counts to e2fsck).
pub(crate) fn e2fsck(raw: &Path) -> Result<()> {
    let mut c = Command::new("e2fsck");
    c.args(["-f", "-p"]).arg(raw);
    let o = exec::run(c, "e2fsck", Duration::from_secs(600))?;
    // 0: clean, 1: errors corrected.
    if !matches!(o.status.code(), Some(0 | 1)) {
        bail!(
            "e2fsck found errors in the box's file system: {}",
            o.combined().trim()
        );
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small ext4 image made like the base image (`mkfs.ext4 -d`), with what a baked
    /// disk holds where the box's edits go.
    fn tiny_root(with_user: bool) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let r = d.path().join("root");
        for dir in [
            "etc/ssh/sshd_config.d",
            "etc/systemd/network",
            "etc/cloud",
            "home/golab",
        ] {
            std::fs::create_dir_all(r.join(dir)).unwrap();
        }
        let user = if with_user {
            "golab:x:1000:1000:golab lab user:/home/golab:/bin/bash\n"
        } else {
            ""
        };
        std::fs::write(
            r.join("etc/passwd"),
            format!("root:x:0:0:root:/root:/bin/bash\n{user}"),
        )
        .unwrap();
        std::fs::write(
            r.join("etc/ssh/ssh_host_ed25519_key"),
            "secret of the bake machine",
        )
        .unwrap();
        std::fs::write(
            r.join("etc/ssh/ssh_host_ed25519_key.pub"),
            "ssh-ed25519 BAKE",
        )
        .unwrap();
        std::fs::write(
            r.join("etc/systemd/network/20-wired.network"),
            "[Network]\nAddress=10.0.2.15/24\n",
        )
        .unwrap();
        let img = d.path().join("root.raw");
        ext4_of(&r, &img);
        (d, img)
    }

    /// A 16 MiB ext4 image of the folder `root`, made as the base image is (`mkfs.ext4 -d`).
    pub(crate) fn ext4_of(root: &Path, img: &Path) {
        let o = Command::new("mkfs.ext4")
            .args(["-q", "-F", "-d"])
            .arg(root)
            .arg(img)
            .arg("16M")
            .output()
            .expect("mkfs.ext4 (e2fsprogs) must be installed");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }

    #[test]
    fn a_baked_disk_becomes_a_vagrant_box_offline_with_debugfs() {
        let (_d, img) = tiny_root(true);
        make_vagrant_ready(&img, "ssh-rsa AAAAinsecure vagrant\n").unwrap();
        let cat = |p: &str| debugfs_read(&img, &format!("cat {p}")).unwrap();
        assert_eq!(
            cat("/home/golab/.ssh/authorized_keys"),
            "ssh-rsa AAAAinsecure vagrant\n"
        );
        assert!(cat("/etc/systemd/network/20-wired.network").contains("DHCP=ipv4"));
        assert!(!cat("/etc/systemd/network/20-wired.network").contains("10.0.2.15"));
        assert!(cat("/etc/ssh/sshd_config.d/90-vagrant-box.conf").contains("UseDNS no"));
        assert!(
            cat("/etc/systemd/system/ssh.service.d/golab-host-keys.conf").contains("ssh-keygen -A")
        );
        let ls = debugfs_read(&img, "ls -l /etc/ssh").unwrap();
        assert!(!ls.contains("ssh_host_"), "{ls}");
        let st = debugfs_read(&img, "stat /home/golab/.ssh").unwrap();
        assert!(
            st.contains("Mode:  0700") && st.contains("User:  1000"),
            "{st}"
        );
        // The file system is sound afterwards, as e2fsck judges it read-only.
        let o = Command::new("e2fsck")
            .args(["-f", "-n"])
            .arg(&img)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    }

    #[test]
    fn a_disk_without_the_lab_user_is_not_made_a_box() {
        let (_d, img) = tiny_root(false);
        let e = format!("{:#}", make_vagrant_ready(&img, "k\n").unwrap_err());
        assert!(e.contains("no user golab"), "{e}");
    }
}
