//! A disk that boots by itself, from a baked image's bare ext4 file system, and the
//! boxes made of it: `NAME.virtualbox.box` and vagrant-qemu's `NAME.qemu.box`.
//!
//! A baked disk is a file system with no partition table: QEMU and vagrant-libvirt boot
//! its kernel directly. VirtualBox cannot, so this module lays the same file system out
//! as a BIOS disk, with no root and no loop device:
//!
//! ```text
//! LBA 0        boot.img (GRUB's MBR code, its drive check turned off as grub-setup does
//!              for a hard disk), one partition entry (0x83, active)
//! LBA 1..      core.img (grub-mkimage: biosdisk, part_msdos, ext2, linux; its menu is
//!              built in: the image's kernel, root=UUID=<the file system's>)
//! LBA 2048..   the ext4 file system, byte for byte (holes stay holes)
//! ```
//!
//! GRUB's defaults place core.img just there (boot.img reads LBA 1, diskboot's block list
//! starts at LBA 2); both are checked before the disk is written. The file system gets an
//! fstab by UUID (the disk is /dev/sda under VirtualBox's SATA controller, /dev/vda under
//! virtio). The box is `box.ovf` (2 CPUs, 2 GiB, SATA AHCI, one NAT e1000 adapter, Debian
//! 64-bit), `box-disk1.vmdk` (streamOptimized, as VirtualBox exports), `metadata.json`
//! and a Vagrantfile, in a tar. vagrant-qemu's box is libvirt's format around the same
//! disk as qcow2. scripts/check-boot-box.sh boots each under QEMU on its provider's
//! hardware (VirtualBox's: AHCI, e1000; vagrant-qemu's: q35, virtio) from its own GRUB
//! and logs in with Vagrant's key.

use super::boxfs::{debugfs_read, e2fsck, make_vagrant_ready, tool_ok, vagrant_insecure_keys};
use anyhow::{Context, Result, bail};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the file system starts: 1 MiB, the usual alignment, and room for core.img.
const PART_START: u64 = 2048;
const SECTOR: u64 = 512;
/// GRUB's BIOS images, as grub-pc-bin installs them (`GOLAB_GRUB_DIR` overrides).
const GRUB_DIR: &str = "/usr/lib/grub/i386-pc";

fn grub_dir() -> PathBuf {
    std::env::var_os("GOLAB_GRUB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(GRUB_DIR))
}

/// The MBR and the core image GRUB boots from, for a file system whose UUID is `uuid`
/// and whose /boot holds `vmlinuz-KVER` and `initrd.img-KVER`. `sectors`: the file
/// system's size in 512-byte sectors.
pub fn boot_code(work: &Path, uuid: &str, kver: &str, sectors: u64) -> Result<(Vec<u8>, Vec<u8>)> {
    let dir = grub_dir();
    let boot_img = std::fs::read(dir.join("boot.img")).with_context(|| {
        format!(
            "no GRUB BIOS images in {} (the VirtualBox box needs them: apt-get install grub-pc-bin, or GOLAB_GRUB_DIR)",
            dir.display()
        )
    })?;
    if boot_img.len() != SECTOR as usize || boot_img[0x5c..0x64] != 1u64.to_le_bytes() {
        bail!(
            "{}/boot.img does not read its core image from LBA 1 (not a GRUB 2 boot.img as golab knows it)",
            dir.display()
        );
    }
    let menu = format!(
        "set root=(hd0,msdos1)\n\
         linux /boot/vmlinuz-{kver} root=UUID={uuid} ro console=ttyS0,115200n8 console=tty0\n\
         initrd /boot/initrd.img-{kver}\n\
         boot\n"
    );
    let cfg = work.join("grub-early.cfg");
    std::fs::write(&cfg, menu)?;
    let core = work.join("core.img");
    let mut c = Command::new("grub-mkimage");
    c.args(["-O", "i386-pc", "-d"])
        .arg(&dir)
        .arg("-o")
        .arg(&core)
        .arg("-c")
        .arg(&cfg)
        .args(["-p", "(hd0,msdos1)/boot/grub"])
        .args(["biosdisk", "part_msdos", "ext2", "linux", "boot"]);
    tool_ok(c, "grub-mkimage (the VirtualBox disk's loader)", 120)
        .context("grub-mkimage is in grub-common (apt-get install grub-pc-bin)")?;
    let core_img = std::fs::read(&core)?;
    let core_sectors = (core_img.len() as u64).div_ceil(SECTOR);
    // diskboot.img (core.img's first sector) reads the rest from LBA 2, len sectors.
    let block = &core_img[500..512];
    let start = u64::from_le_bytes(block[0..8].try_into().unwrap());
    let len = u16::from_le_bytes(block[8..10].try_into().unwrap()) as u64;
    if start != 2 || len + 1 != core_sectors {
        bail!(
            "grub-mkimage's core.img reads {len} sectors from LBA {start}, not {} from LBA 2",
            core_sectors - 1
        );
    }
    if 1 + core_sectors > PART_START {
        bail!("core.img is {core_sectors} sectors: it does not fit before the partition");
    }
    let mut mbr = vec![0u8; SECTOR as usize];
    mbr[..440].copy_from_slice(&boot_img[..440]);
    // grub-setup's hard-disk workaround: the BIOS's boot drive is trusted (two nops).
    mbr[0x66] = 0x90;
    mbr[0x67] = 0x90;
    let count = u32::try_from(sectors).context("the file system is over 2 TiB: no MBR")?;
    let mut entry = [0u8; 16];
    entry[0] = 0x80; // active
    entry[1..4].copy_from_slice(&[0xfe, 0xff, 0xff]); // CHS: past 8 GiB, LBA only
    entry[4] = 0x83; // Linux
    entry[5..8].copy_from_slice(&[0xfe, 0xff, 0xff]);
    entry[8..12].copy_from_slice(&(PART_START as u32).to_le_bytes());
    entry[12..16].copy_from_slice(&count.to_le_bytes());
    mbr[446..462].copy_from_slice(&entry);
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    Ok((mbr, core_img))
}

/// Writes the whole disk: `mbr`, `core` from LBA 1, and `fs` from [`PART_START`], its
/// zero MiBs left as holes.
pub fn write_disk(dest: &Path, mbr: &[u8], core: &[u8], fs: &Path) -> Result<()> {
    let mut out =
        std::fs::File::create(dest).with_context(|| format!("cannot create {}", dest.display()))?;
    out.write_all(mbr)?;
    out.write_all(core)?;
    let n = std::fs::metadata(fs)?.len();
    out.set_len(PART_START * SECTOR + n)?;
    let mut r = std::fs::File::open(fs)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0u64;
    loop {
        let mut got = 0;
        while got < buf.len() {
            match r.read(&mut buf[got..])? {
                0 => break,
                k => got += k,
            }
        }
        if got == 0 {
            break;
        }
        if buf[..got].iter().any(|&b| b != 0) {
            out.seek(SeekFrom::Start(PART_START * SECTOR + off))?;
            out.write_all(&buf[..got])?;
        }
        off += got as u64;
    }
    out.sync_all()?;
    Ok(())
}

/// The one kernel in the file system's /boot (`vmlinuz-KVER`, with its `initrd.img-KVER`).
fn kernel_version(raw: &Path) -> Result<String> {
    let ls = debugfs_read(raw, "ls /boot")?;
    let names: Vec<&str> = ls.split_whitespace().collect();
    let kvers: Vec<&str> = names
        .iter()
        .filter_map(|n| n.strip_prefix("vmlinuz-"))
        .collect();
    match kvers.as_slice() {
        [k] if names.contains(&format!("initrd.img-{k}").as_str()) => Ok(k.to_string()),
        [k] => bail!("the image's /boot has vmlinuz-{k} but no initrd.img-{k}"),
        _ => bail!(
            "the image's /boot holds {} kernels, not one: {ls}",
            kvers.len()
        ),
    }
}

/// The file system's UUID (debugfs `stats`).
fn fs_uuid(raw: &Path) -> Result<String> {
    let stats = debugfs_read(raw, "stats")?;
    stats
        .lines()
        .find_map(|l| l.strip_prefix("Filesystem UUID:"))
        .map(|u| u.trim().to_string())
        .filter(|u| u.len() == 36 && u.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
        .context("the image's file system has no UUID debugfs can read")
}

/// The file system edited to boot from its own disk: an fstab by UUID, and `initrd` (if
/// given) in place of the image's; both root's, 0644, read back. Returns the kernel
/// version in /boot and the file system's UUID.
fn root_by_uuid(raw: &Path, initrd: Option<&Path>, work: &Path) -> Result<(String, String)> {
    let kver = kernel_version(raw)?;
    let uuid = fs_uuid(raw)?;
    let fstab = work.join("fstab");
    std::fs::write(
        &fstab,
        format!("UUID={uuid} / ext4 rw,errors=remount-ro 0 1\n"),
    )?;
    // debugfs's `write` takes the owner of the local file: root's is set after it.
    let own = |p: &str| format!("sif {p} uid 0\nsif {p} gid 0\nsif {p} mode 0100644\n");
    let mut script = format!(
        "rm /etc/fstab\ncd /etc\nwrite {} fstab\ncd /\n{}",
        fstab.display(),
        own("/etc/fstab")
    );
    if let Some(i) = initrd {
        script.push_str(&format!(
            "rm /boot/initrd.img-{kver}\ncd /boot\nwrite {} initrd.img-{kver}\ncd /\n{}",
            i.display(),
            own(&format!("/boot/initrd.img-{kver}"))
        ));
    }
    let sf = work.join("script");
    std::fs::write(&sf, script)?;
    let mut c = Command::new("debugfs");
    c.arg("-w").arg("-f").arg(&sf).arg(raw);
    tool_ok(c, "debugfs -w (the VirtualBox disk's fstab)", 300)?;
    let got = debugfs_read(raw, "cat /etc/fstab")?;
    if !got.starts_with(&format!("UUID={uuid} ")) {
        bail!("the VirtualBox disk's fstab did not take: it reads {got:?}");
    }
    let mut written = vec![("/etc/fstab".to_string(), None)];
    if let Some(i) = initrd {
        written.push((
            format!("/boot/initrd.img-{kver}"),
            Some(std::fs::metadata(i)?.len()),
        ));
    }
    let squeeze = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    for (p, size) in written {
        let st = squeeze(&debugfs_read(raw, &format!("stat {p}"))?);
        let sized = size.is_none_or(|n| st.contains(&format!("Size: {n}")));
        if !sized || !st.contains("User: 0 Group: 0") || !st.contains("Mode: 0644") {
            bail!("{p} in the boot disk is not root's 0644 file of its size: {st:.200}");
        }
    }
    e2fsck(raw)?;
    Ok((kver, uuid))
}

/// Where the boxes that boot by themselves go.
pub struct Dests<'a> {
    /// `NAME.virtualbox.box`.
    pub virtualbox: &'a Path,
    /// `NAME.qemu.box`, for vagrant-qemu: libvirt's box format (which vagrant-qemu
    /// imports), its `box.img` the same BIOS disk, since vagrant-qemu boots no kernel of
    /// its own.
    pub qemu: Option<&'a Path>,
}

/// The boxes of a baked disk (`disk`, qcow2) that boot by themselves. `initrd`: a file
/// put in place of the image's own initrd (which must hold the SATA driver:
/// `image::build` puts ahci into it; an image baked before that needs its base's here).
pub fn boxes(disk: &Path, initrd: Option<&Path>, to: &Dests) -> Result<()> {
    let keys = vagrant_insecure_keys()?;
    let dest = to.virtualbox;
    let dir = dest.parent().context("the box has no folder")?;
    let work = tempfile::Builder::new().prefix(".vbox-").tempdir_in(dir)?;
    let raw = work.path().join("root.raw");
    let mut c = Command::new("qemu-img");
    c.args(["convert", "-f", "qcow2", "-O", "raw"])
        .arg(disk)
        .arg(&raw);
    tool_ok(c, "qemu-img convert (to raw, for the VirtualBox box)", 3600)?;
    make_vagrant_ready(&raw, &keys)?;
    let (kver, uuid) = root_by_uuid(&raw, initrd, work.path())?;
    let fs_bytes = std::fs::metadata(&raw)?.len();
    let (mbr, core) = boot_code(work.path(), &uuid, &kver, fs_bytes / SECTOR)?;
    let whole = work.path().join("disk.raw");
    write_disk(&whole, &mbr, &core, &raw)?;
    std::fs::remove_file(&raw)?;
    let b = work.path().join("box");
    std::fs::create_dir(&b)?;
    let mut c = Command::new("qemu-img");
    c.args([
        "convert",
        "-f",
        "raw",
        "-O",
        "vmdk",
        "-o",
        "subformat=streamOptimized",
    ])
    .arg(&whole)
    .arg(b.join("box-disk1.vmdk"));
    tool_ok(c, "qemu-img convert (the VirtualBox disk, VMDK)", 3600)?;
    let capacity = std::fs::metadata(&whole)?.len();
    if let Some(q) = to.qemu {
        qemu_box(&whole, capacity, q)?;
    }
    std::fs::remove_file(&whole)?;
    let mac = base_mac(&uuid);
    std::fs::write(b.join("box.ovf"), ovf(capacity, &mac))?;
    std::fs::write(b.join("metadata.json"), "{\"provider\":\"virtualbox\"}\n")?;
    std::fs::write(b.join("Vagrantfile"), vagrantfile(&mac))?;
    let tmp = work.path().join("box.tar");
    let mut c = Command::new("tar");
    c.arg("-C").arg(&b).arg("-cf").arg(&tmp).args([
        "box.ovf",
        "box-disk1.vmdk",
        "metadata.json",
        "Vagrantfile",
    ]);
    tool_ok(c, "tar (the VirtualBox box)", 3600)?;
    std::fs::rename(&tmp, dest)?;
    Ok(())
}

/// vagrant-qemu's box: libvirt's format (`metadata.json`, `Vagrantfile`, `box.img`), its
/// disk the BIOS disk `whole` (qcow2, compressed).
fn qemu_box(whole: &Path, capacity: u64, dest: &Path) -> Result<()> {
    let dir = dest.parent().context("the box has no folder")?;
    let work = tempfile::Builder::new()
        .prefix(".qemubox-")
        .tempdir_in(dir)?;
    let b = work.path();
    let mut c = Command::new("qemu-img");
    c.args(["convert", "-c", "-f", "raw", "-O", "qcow2"])
        .arg(whole)
        .arg(b.join("box.img"));
    tool_ok(c, "qemu-img convert (vagrant-qemu's box disk)", 3600)?;
    std::fs::write(
        b.join("metadata.json"),
        format!(
            "{{\"provider\":\"libvirt\",\"format\":\"qcow2\",\"virtual_size\":{}}}\n",
            capacity.div_ceil(1 << 30)
        ),
    )?;
    std::fs::write(b.join("Vagrantfile"), QEMU_VAGRANTFILE)?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        dest.file_name().unwrap_or_default().to_string_lossy()
    ));
    let mut c = Command::new("tar");
    c.arg("-C")
        .arg(b)
        .arg("-cf")
        .arg(&tmp)
        .args(["metadata.json", "Vagrantfile", "box.img"]);
    tool_ok(c, "tar (vagrant-qemu's box)", 3600)?;
    std::fs::rename(&tmp, dest)?;
    Ok(())
}

const QEMU_VAGRANTFILE: &str = r#"# golab's baked lab VM box for vagrant-qemu (golab image build): a BIOS disk with GRUB,
# in libvirt's box format, which vagrant-qemu imports.
Vagrant.configure("2") do |config|
  config.ssh.username = "golab"
  config.vm.synced_folder ".", "/vagrant", type: "rsync"
end
"#;

/// The NAT adapter's MAC: VirtualBox's prefix (08:00:27) and three bytes of the file
/// system's UUID, so a box says the same MAC in its OVF and its Vagrantfile.
fn base_mac(uuid: &str) -> String {
    let hex: String = uuid.chars().filter(|c| *c != '-').take(6).collect();
    format!("080027{}", hex.to_ascii_uppercase())
}

/// Vagrant's VirtualBox provider sets the NAT adapter's MAC from `base_mac`; the lab user
/// logs in; two CPUs need the I/O APIC.
fn vagrantfile(mac: &str) -> String {
    format!(
        r#"# golab's baked lab VM box for VirtualBox (golab image build): a BIOS disk with GRUB.
Vagrant.configure("2") do |config|
  config.vm.base_mac = "{mac}"
  config.ssh.username = "golab"
  config.vm.synced_folder ".", "/vagrant", type: "rsync"
  config.vm.provider :virtualbox do |vb|
    vb.customize ["modifyvm", :id, "--ioapic", "on"]
  end
end
"#
    )
}

/// The OVF 1.0 envelope VirtualBox imports: the disk, 2 CPUs, 2 GiB, SATA (AHCI) with the
/// disk on port 0, a NAT e1000, Debian 64-bit (CIM OS 96; `vbox:OSType` for VirtualBox).
fn ovf(capacity: u64, mac: &str) -> String {
    format!(
        r#"<?xml version="1.0"?>
<Envelope ovf:version="1.0" xml:lang="en-US" xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:vbox="http://www.virtualbox.org/ovf/machine">
  <References>
    <File ovf:id="file1" ovf:href="box-disk1.vmdk"/>
  </References>
  <DiskSection>
    <Info>The lab VM's disk</Info>
    <Disk ovf:capacity="{capacity}" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <NetworkSection>
    <Info>The network the lab VM uses</Info>
    <Network ovf:name="NAT">
      <Description>NAT, as Vagrant's VirtualBox provider sets up</Description>
    </Network>
  </NetworkSection>
  <VirtualSystem ovf:id="golab-lab-vm">
    <Info>golab's lab VM (golab image build)</Info>
    <OperatingSystemSection ovf:id="96">
      <Info>The guest's operating system</Info>
      <Description>Debian_64</Description>
      <vbox:OSType ovf:required="false">Debian_64</vbox:OSType>
    </OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>The lab VM's hardware</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemIdentifier>golab-lab-vm</vssd:VirtualSystemIdentifier>
        <vssd:VirtualSystemType>virtualbox-2.2</vssd:VirtualSystemType>
      </System>
      <Item>
        <rasd:Caption>2 virtual CPUs</rasd:Caption>
        <rasd:Description>Number of virtual CPUs</rasd:Description>
        <rasd:ElementName>2 virtual CPUs</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>2</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>MegaBytes</rasd:AllocationUnits>
        <rasd:Caption>2048 MB of memory</rasd:Caption>
        <rasd:Description>Memory Size</rasd:Description>
        <rasd:ElementName>2048 MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>2048</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:Caption>sataController0</rasd:Caption>
        <rasd:Description>SATA Controller</rasd:Description>
        <rasd:ElementName>sataController0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>AHCI</rasd:ResourceSubType>
        <rasd:ResourceType>20</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:Caption>disk1</rasd:Caption>
        <rasd:Description>Disk Image</rasd:Description>
        <rasd:ElementName>disk1</rasd:ElementName>
        <rasd:HostResource>/disk/vmdisk1</rasd:HostResource>
        <rasd:InstanceID>4</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:Address>{mac}</rasd:Address>
        <rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>
        <rasd:Caption>Ethernet adapter on 'NAT'</rasd:Caption>
        <rasd:Connection>NAT</rasd:Connection>
        <rasd:ElementName>Ethernet adapter on 'NAT'</rasd:ElementName>
        <rasd:InstanceID>5</rasd:InstanceID>
        <rasd:ResourceSubType>E1000</rasd:ResourceSubType>
        <rasd:ResourceType>10</rasd:ResourceType>
      </Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
"#
    )
}

#[cfg(test)]
mod tests {
    /// The disk's layout from a file system of three MiB, one of them zeros: the MBR's
    /// one partition at LBA 2048 with the file system's size, core.img from LBA 1, the
    /// bytes at the partition, and the zero MiB a hole.
    #[test]
    fn the_disk_holds_the_file_system_at_lba_2048() {
        use std::os::unix::fs::MetadataExt;
        let d = tempfile::tempdir().unwrap();
        let fs = d.path().join("fs");
        let mut bytes = vec![0xabu8; 3 << 20];
        bytes[1 << 20..2 << 20].fill(0);
        std::fs::write(&fs, &bytes).unwrap();
        let mut mbr = vec![0u8; 512];
        mbr[446..462].copy_from_slice(&[
            0x80, 0xfe, 0xff, 0xff, 0x83, 0xfe, 0xff, 0xff, 0, 8, 0, 0, 0, 0x18, 0, 0,
        ]);
        mbr[510] = 0x55;
        mbr[511] = 0xaa;
        let core = vec![0xcdu8; 3 * 512];
        let disk = d.path().join("disk");
        super::write_disk(&disk, &mbr, &core, &fs).unwrap();
        let got = std::fs::read(&disk).unwrap();
        assert_eq!(got.len(), (1 << 20) + (3 << 20));
        assert_eq!(&got[..512], &mbr[..]);
        assert!(got[512..2048].iter().all(|&b| b == 0xcd));
        assert!(got[2048..1 << 20].iter().all(|&b| b == 0));
        assert_eq!(&got[1 << 20..], &bytes[..]);
        // Two MiB of data, the zero MiB a hole (st_blocks counts 512-byte blocks).
        let used = std::fs::metadata(&disk).unwrap().blocks() * 512;
        assert!(used < (3 << 20) + 8192, "{used} bytes used");
    }

    /// Real grub-mkimage (grub-pc-bin, scripts/install-deps.sh): the MBR is GRUB's
    /// boot.img with the drive check turned off and one active Linux partition at LBA
    /// 2048 of the file system's size; core.img fits before it and reads itself from
    /// LBA 2 on.
    #[test]
    fn the_boot_code_is_grubs_and_fits_before_the_partition() {
        let d = tempfile::tempdir().unwrap();
        let sectors = 16 << 21; // 16 GiB
        let (mbr, core) = super::boot_code(
            d.path(),
            "248c3a8f-5cd2-4fed-b6a2-325ed2bebd5d",
            "6.1.0-50-amd64",
            sectors,
        )
        .expect("grub-mkimage and /usr/lib/grub/i386-pc (apt-get install grub-pc-bin)");
        let boot = std::fs::read(super::grub_dir().join("boot.img")).unwrap();
        assert_eq!(&mbr[..0x66], &boot[..0x66]);
        assert_eq!(&mbr[0x66..0x68], &[0x90, 0x90]);
        assert_eq!(&mbr[0x68..440], &boot[0x68..440]);
        let e = &mbr[446..462];
        assert_eq!((e[0], e[4]), (0x80, 0x83));
        assert_eq!(u32::from_le_bytes(e[8..12].try_into().unwrap()), 2048);
        assert_eq!(
            u32::from_le_bytes(e[12..16].try_into().unwrap()) as u64,
            sectors
        );
        assert!(mbr[462..510].iter().all(|&b| b == 0), "one partition only");
        assert_eq!(&mbr[510..], &[0x55, 0xaa]);
        let n = core.len().div_ceil(512);
        assert!(n > 1 && n < 2048, "{n} sectors");
        assert_eq!(u64::from_le_bytes(core[500..508].try_into().unwrap()), 2);
        assert_eq!(
            u16::from_le_bytes(core[508..510].try_into().unwrap()) as usize,
            n - 1
        );
        // Past MBR's 2 TiB, no disk.
        let e = super::boot_code(d.path(), "u", "k", 1 << 33).unwrap_err();
        assert!(format!("{e:#}").contains("2 TiB"), "{e:#}");
    }

    /// On a small ext4 made as the base image is (`mkfs.ext4 -d`), by a file owner that is
    /// not root: the fstab names the root by UUID and the initrd is replaced, both root's
    /// and 0644, and the kernel version and UUID come back.
    #[test]
    fn the_root_is_named_by_uuid_and_the_initrd_replaced_as_roots() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let r = d.path().join("root");
        for dir in ["etc", "boot"] {
            std::fs::create_dir_all(r.join(dir)).unwrap();
        }
        std::fs::write(r.join("etc/fstab"), "/dev/vda / ext4 rw 0 1\n").unwrap();
        std::fs::write(r.join("boot/vmlinuz-6.1.0-50-amd64"), "kernel").unwrap();
        std::fs::write(r.join("boot/initrd.img-6.1.0-50-amd64"), "small").unwrap();
        let img = d.path().join("root.raw");
        crate::machine::boxfs::tests::ext4_of(&r, &img);
        let big = d.path().join("big.initrd");
        std::fs::write(&big, vec![7u8; 300_000]).unwrap();
        std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&big, Some(1234), Some(1234)).ok();
        let work = d.path().join("work");
        std::fs::create_dir(&work).unwrap();
        let (kver, uuid) = super::root_by_uuid(&img, Some(&big), &work).unwrap();
        assert_eq!(kver, "6.1.0-50-amd64");
        let fstab = super::debugfs_read(&img, "cat /etc/fstab").unwrap();
        assert_eq!(
            fstab,
            format!("UUID={uuid} / ext4 rw,errors=remount-ro 0 1\n")
        );
        let st = super::debugfs_read(&img, "stat /boot/initrd.img-6.1.0-50-amd64").unwrap();
        let st = st.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            st.contains("Size: 300000") && st.contains("User: 0 Group: 0"),
            "{st}"
        );
        // Again, on the disk already edited: the same answer.
        let again = super::root_by_uuid(&img, None, &work).unwrap();
        assert_eq!(again, (kver, uuid));
    }

    #[test]
    fn the_base_mac_is_virtualboxs_prefix_and_the_uuids_start() {
        assert_eq!(
            super::base_mac("248c3a8f-5cd2-4fed-b6a2-325ed2bebd5d"),
            "080027248C3A"
        );
    }
}
