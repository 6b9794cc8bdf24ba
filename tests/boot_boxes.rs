//! The boxes of a baked image that boot by themselves (VirtualBox's and vagrant-qemu's),
//! made and booted (ignored: it needs a baked image; `scripts/test-vm.sh qemu` checks
//! the boxes of the image it bakes with the same script). GOLAB_VBOX_IMAGE names the
//! baked NAME.manifest.json; GOLAB_VBOX_INITRD optionally puts another initrd in the
//! disk (an image baked before its initrd held the SATA driver: its base's). The box is
//! made by `golab::machine::bootdisk::boxes` and checked by scripts/check-boot-box.sh:
//! VirtualBox's OVF, and for each a boot from its own GRUB under QEMU on its provider's
//! hardware (AHCI and e1000; q35 and virtio), the lab user's login with Vagrant's key,
//! the tools as the manifest lists them.

use std::path::{Path, PathBuf};
use std::process::Command;

#[test]
#[ignore]
fn the_virtualbox_and_vagrant_qemu_boxes_boot_by_themselves_as_their_manifest_says() {
    let manifest = PathBuf::from(
        std::env::var("GOLAB_VBOX_IMAGE").expect("GOLAB_VBOX_IMAGE: a baked NAME.manifest.json"),
    );
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    let dir = manifest.parent().unwrap();
    let qcow2 = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["name"].as_str())
        .find(|n| n.ends_with(".qcow2"))
        .map(|n| dir.join(n))
        .expect("the manifest lists a qcow2");
    let initrd = std::env::var_os("GOLAB_VBOX_INITRD").map(PathBuf::from);
    let out = tempfile::Builder::new()
        .prefix("golab-vbox-test-")
        .tempdir_in(std::env::var_os("GOLAB_VBOX_WORK").map_or(std::env::temp_dir(), PathBuf::from))
        .unwrap();
    let (vb, qb) = (
        out.path().join("test.virtualbox.box"),
        out.path().join("test.qemu.box"),
    );
    let t = std::time::Instant::now();
    let to = golab::machine::bootdisk::Dests {
        virtualbox: &vb,
        qemu: Some(&qb),
    };
    golab::machine::bootdisk::boxes(&qcow2, initrd.as_deref(), &to).unwrap();
    eprintln!(
        "bootdisk::boxes: {:.1} s; virtualbox {} MiB, qemu {} MiB",
        t.elapsed().as_secs_f64(),
        std::fs::metadata(&vb).unwrap().len() >> 20,
        std::fs::metadata(&qb).unwrap().len() >> 20
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check-boot-box.sh");
    for b in [&vb, &qb] {
        let st = Command::new("bash")
            .arg(&script)
            .arg(b)
            .arg(&manifest)
            .status()
            .unwrap();
        assert!(
            st.success(),
            "scripts/check-boot-box.sh {}: {st}",
            b.display()
        );
    }
}
