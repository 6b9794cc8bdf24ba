//! The lab VM's Vagrantfile as Ruby, Vagrant and each provider see it, and the
//! provisioner beside it as bash sees it.
//!
//! `vagrant validate` does not look inside provider blocks (a typo like `vb.memroy`
//! passes), so the values there are checked by evaluating the rendered Vagrantfile with
//! Ruby against a stub `Vagrant.configure` that records every attribute each provider
//! block sets (the `STUB` script below).
//!
//! Needs `ruby`, `shellcheck` and `vagrant` with `vagrant-libvirt` (Debian packages,
//! installed by scripts/install-deps.sh); without one the test that needs it fails with
//! the package to install, never skips.

use golab::machine::DlvSource;
use golab::machine::vagrant::{self, DirectBoot, LibvirtDriver, Provider, VagrantConfig};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn need(tool: &str, package: &str) {
    assert!(
        have(tool),
        "`{tool}` is not installed: install the Debian package `{package}` (scripts/install-deps.sh)"
    );
}

fn run(cmd: Command, label: &str) -> golab::exec::Captured {
    golab::exec::run(cmd, label, Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{label}: {e:#}"))
}

/// The configuration the checks below expect to find again in the Vagrantfile.
fn lab_config(dir: &Path) -> VagrantConfig {
    let labs = dir.join("labs");
    std::fs::create_dir_all(&labs).unwrap();
    VagrantConfig {
        box_name: "generic/ubuntu2204".into(),
        cpus: 3,
        memory_mib: 3072,
        hostname: "golab-lab-1".into(),
        ssh_port: 52022,
        dlv_port: 52345,
        dlv_port_guest: 2345,
        labs_dir: labs,
        go_base_url: "http://127.0.0.1:8080/go/".into(),
        libvirt_driver: LibvirtDriver::Qemu,
        go_version: "1.17.1".into(),
        go_sha256: GO1171_SHA256.into(),
        dlv: DlvSource::GoInstall("v1.9.1".into()),
        boot: None,
    }
}

/// As go.dev publishes it (VMS.md), typed here again rather than read from golab.
const GO1171_SHA256: &str = "dab7d9c34361dc21ec237d584590d72500652e7c909bf082758fb63064fca0ef";

fn ruby_syntax_ok(vagrantfile: &Path) {
    let mut c = Command::new("ruby");
    c.arg("-c").arg(vagrantfile);
    let out = run(c, "ruby -c");
    assert!(
        out.ok() && out.stdout.contains("Syntax OK"),
        "ruby -c {}:\n{}\n{}",
        vagrantfile.display(),
        out.combined(),
        std::fs::read_to_string(vagrantfile).unwrap()
    );
}

#[test]
fn every_provider_renders_a_vagrantfile_ruby_accepts() {
    need("ruby", "ruby");
    let d = tempfile::tempdir().unwrap();
    let cfg = lab_config(d.path());
    for p in Provider::ALL {
        let dir = d.path().join(p.name());
        let vf = vagrant::write(p, &cfg, &dir).unwrap();
        ruby_syntax_ok(&vf);
    }
}

#[test]
fn write_puts_the_provisioner_beside_the_vagrantfile() {
    let d = tempfile::tempdir().unwrap();
    let vf = vagrant::write(
        Provider::Libvirt,
        &lab_config(d.path()),
        &d.path().join("vm"),
    )
    .unwrap();
    assert_eq!(vf, d.path().join("vm/Vagrantfile"));
    let script = d.path().join("vm/provision/lab-vm.sh");
    assert_eq!(
        std::fs::read_to_string(&script).unwrap(),
        vagrant::PROVISIONER
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&script).unwrap().permissions().mode() & 0o777,
        0o755
    );
    let names: BTreeSet<String> = std::fs::read_dir(d.path().join("vm"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["Vagrantfile".to_string(), "provision".to_string()]),
        "no temporary file left"
    );
    assert!(
        std::fs::read_to_string(&vf)
            .unwrap()
            .contains(&format!("path: \"{}\"", vagrant::PROVISIONER_PATH))
    );
}

#[test]
fn vagrant_validate_accepts_the_libvirt_rendering() {
    need("vagrant", "vagrant");
    let d = tempfile::tempdir().unwrap();
    let cfg = lab_config(d.path());
    let validate = |p: Provider| {
        let dir = d.path().join(p.name());
        vagrant::write(p, &cfg, &dir).unwrap();
        let mut c = Command::new("vagrant");
        c.arg("validate").current_dir(&dir);
        // Vagrant's own state in the test's folder; no version check over the network;
        // the default provider must come from the Vagrantfile, not from this shell.
        c.env("VAGRANT_HOME", d.path().join("vagrant-home"))
            .env("VAGRANT_CHECKPOINT_DISABLE", "1")
            .env_remove("VAGRANT_DEFAULT_PROVIDER");
        run(c, "vagrant validate")
    };
    let out = validate(Provider::Libvirt);
    assert!(
        out.ok() && out.stdout.contains("validated successfully"),
        "vagrant validate (libvirt):\n{}",
        out.combined()
    );
    eprintln!("vagrant validate ran: the libvirt rendering validated successfully");
    // The rendering's choice is the default: the same file made for VirtualBox asks for
    // VirtualBox, which cannot run where VBoxManage is missing.
    if !have("VBoxManage") {
        let out = validate(Provider::Virtualbox);
        assert!(
            !out.ok() && out.combined().contains("virtualbox"),
            "the virtualbox rendering should ask for VirtualBox:\n{}",
            out.combined()
        );
    }
}

/// Evaluates a Vagrantfile against stub `Vagrant.configure`/config objects and prints,
/// as JSON, everything it set: vm attributes, networks, synced folders, provisioners,
/// and per provider block every attribute assigned (in order) and any other call, plus
/// what the block's `override` config set. Unknown methods on `config` and `config.vm`
/// raise, so a typo there fails the evaluation.
const STUB: &str = r#"
require "json"

def new_record
  { "vm" => {}, "networks" => [], "synced_folders" => [], "provision" => [], "providers" => {}, "provider_order" => [] }
end

$record = new_record.merge("configure_versions" => [])

class ProviderRecorder
  def initialize(into)
    @into = into
  end

  def method_missing(name, *args, **kw, &blk)
    n = name.to_s
    if n.end_with?("=") && args.size == 1 && kw.empty? && blk.nil?
      @into["sets"] << [n.chomp("="), args[0]]
    else
      @into["calls"] << [n, args, kw]
    end
    nil
  end

  def respond_to_missing?(*)
    true
  end
end

class VMStub
  def initialize(rec)
    @rec = rec
  end

  def network(type, **opts)
    @rec["networks"] << { "type" => type.to_s, "opts" => opts }
  end

  def synced_folder(host, guest, **opts)
    @rec["synced_folders"] << { "host" => host, "guest" => guest, "opts" => opts }
  end

  def provision(name, **opts)
    @rec["provision"] << { "name" => name.to_s, "opts" => opts }
  end

  def provider(name, &blk)
    name = name.to_s
    raise "provider #{name} configured twice" if @rec["providers"].key?(name)
    p = { "sets" => [], "calls" => [], "override" => new_record }
    @rec["providers"][name] = p
    @rec["provider_order"] << name
    blk.call(ProviderRecorder.new(p), ConfigStub.new(p["override"]))
  end

  def method_missing(name, *args)
    n = name.to_s
    raise NoMethodError, "config.vm.#{n} is not something this stub knows" unless n.end_with?("=") && args.size == 1
    @rec["vm"][n.chomp("=")] = args[0]
  end

  def respond_to_missing?(*)
    true
  end
end

class ConfigStub
  attr_reader :vm

  def initialize(rec)
    @vm = VMStub.new(rec)
  end
end

module Vagrant
  def self.configure(version)
    $record["configure_versions"] << version
    yield ConfigStub.new($record)
  end
end

ENV.delete("VAGRANT_DEFAULT_PROVIDER")
load ARGV[0]
$record["default_provider"] = ENV["VAGRANT_DEFAULT_PROVIDER"]
puts JSON.generate($record)
"#;

/// Attributes each provider's config accepts (setters), to catch a misspelt name.
/// VirtualBox: Vagrant 2.3.4, plugins/providers/virtualbox/config.rb (attr_accessors,
/// plus the `memory=` and `cpus=` methods).
const VIRTUALBOX_ATTRS: &[&str] = &[
    "auto_nat_dns_proxy",
    "check_guest_additions",
    "default_nic_type",
    "destroy_unused_network_interfaces",
    "gui",
    "linked_clone",
    "linked_clone_snapshot",
    "name",
    "functional_vboxsf",
    "memory",
    "cpus",
];
/// libvirt: vagrant-libvirt 0.11.2, lib/vagrant-libvirt/config.rb (attr_accessors).
const LIBVIRT_ATTRS: &[&str] = &[
    "uri",
    "driver",
    "host",
    "port",
    "connect_via_ssh",
    "socket",
    "username",
    "password",
    "id_ssh_key_file",
    "proxy_command",
    "forward_ssh_port",
    "storage_pool_name",
    "storage_pool_path",
    "snapshot_pool_name",
    "random_hostname",
    "management_network_device",
    "management_network_name",
    "management_network_address",
    "management_network_mode",
    "management_network_mac",
    "management_network_guest_ipv6",
    "management_network_autostart",
    "management_network_pci_bus",
    "management_network_pci_slot",
    "management_network_domain",
    "management_network_mtu",
    "management_network_keep",
    "management_network_driver_iommu",
    "system_uri",
    "default_prefix",
    "title",
    "description",
    "uuid",
    "memory",
    "nodeset",
    "memory_backing",
    "memtunes",
    "channel",
    "cpus",
    "cpuset",
    "cpu_mode",
    "cpu_model",
    "cpu_fallback",
    "cpu_features",
    "cpu_topology",
    "cpu_affinity",
    "shares",
    "features",
    "features_hyperv",
    "clock_offset",
    "clock_timers",
    "launchsecurity_data",
    "numa_nodes",
    "loader",
    "nvram",
    "boot_order",
    "machine_type",
    "machine_arch",
    "machine_virtual_size",
    "disk_bus",
    "disk_device",
    "disk_address_type",
    "disk_controller_model",
    "disk_driver_opts",
    "nic_model_type",
    "nested",
    "volume_cache",
    "kernel",
    "cmd_line",
    "initrd",
    "dtb",
    "emulator_path",
    "graphics_type",
    "graphics_autoport",
    "graphics_port",
    "graphics_websocket",
    "graphics_passwd",
    "graphics_ip",
    "graphics_gl",
    "video_type",
    "video_vram",
    "video_accel3d",
    "keymap",
    "kvm_hidden",
    "sound_type",
    "tpm_model",
    "tpm_type",
    "tpm_path",
    "tpm_version",
    "sysinfo",
    "memballoon_enabled",
    "memballoon_model",
    "memballoon_pci_bus",
    "memballoon_pci_slot",
    "nic_adapter_count",
    "disks",
    "cdroms",
    "floppies",
    "inputs",
    "channels",
    "pcis",
    "rng",
    "watchdog_dev",
    "usbctl_dev",
    "usbs",
    "redirdevs",
    "redirfilters",
    "smartcard_dev",
    "suspend_mode",
    "autostart",
    "mgmt_attach",
    "qemu_args",
    "qemu_env",
    "qemu_use_session",
    "qemu_use_agent",
    "serials",
    "host_device_exclude_prefixes",
];
/// qemu: the vagrant-qemu plugin, lib/vagrant-qemu/config.rb (the attr_accessors its
/// 0.3 releases have; later releases add names, none of them used here).
const QEMU_ATTRS: &[&str] = &[
    "ssh_host",
    "ssh_port",
    "ssh_auto_correct",
    "arch",
    "machine",
    "cpu",
    "smp",
    "memory",
    "net_device",
    "drive_interface",
    "image_path",
    "qemu_bin",
    "qemu_dir",
    "disk_resize",
    "extra_qemu_args",
    "extra_netdev_args",
    "extra_drive_args",
    "control_port",
    "debug_port",
    "no_daemonize",
    "firmware_format",
    "other_default",
    "extra_image_opts",
];
/// config.vm: Vagrant 2.3.4, plugins/kernel_v2/config/vm.rb (attr_accessors).
const VM_ATTRS: &[&str] = &[
    "allowed_synced_folder_types",
    "allow_fstab_modification",
    "allow_hosts_modification",
    "base_mac",
    "base_address",
    "boot_timeout",
    "box",
    "ignore_box_vagrantfile",
    "box_check_update",
    "box_url",
    "box_server_url",
    "box_version",
    "box_download_ca_cert",
    "box_download_ca_path",
    "box_download_checksum",
    "box_download_checksum_type",
    "box_download_client_cert",
    "box_download_insecure",
    "box_download_location_trusted",
    "box_download_options",
    "communicator",
    "graceful_halt_timeout",
    "guest",
    "hostname",
    "post_up_message",
    "usable_port_range",
];

/// What the stub recorded for one rendering.
fn evaluate(vagrantfile: &Path) -> Value {
    let stub = vagrantfile.with_file_name("record-stub.rb");
    std::fs::write(&stub, STUB).unwrap();
    let mut c = Command::new("ruby");
    c.arg(&stub)
        .arg(vagrantfile)
        .current_dir(vagrantfile.parent().unwrap());
    let out = run(c, "ruby record-stub.rb");
    assert!(
        out.ok(),
        "evaluating {} with the stub:\n{}",
        vagrantfile.display(),
        out.combined()
    );
    serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("the stub's JSON: {e}\n{}", out.stdout))
}

/// The attributes one provider block set, by name; each name may be set only once.
fn provider_sets(record: &Value, provider: &str) -> BTreeMap<String, Value> {
    let block = &record["providers"][provider];
    assert!(
        block.is_object(),
        "no config.vm.provider {provider:?} block"
    );
    assert_eq!(
        block["calls"],
        serde_json::json!([]),
        "{provider}: calls other than attribute assignments"
    );
    let mut sets = BTreeMap::new();
    for pair in block["sets"].as_array().unwrap() {
        let name = pair[0].as_str().unwrap().to_string();
        assert!(
            sets.insert(name.clone(), pair[1].clone()).is_none(),
            "{provider}.{name} is set twice"
        );
    }
    sets
}

/// The synced folders `provider` ends with: the block's `override` merged over the
/// top-level ones by guest path, as Vagrant merges them (options merged key by key).
fn effective_synced_folders(record: &Value, provider: &str) -> BTreeMap<String, Value> {
    let mut folders: BTreeMap<String, Value> = BTreeMap::new();
    let lists = [
        &record["synced_folders"],
        &record["providers"][provider]["override"]["synced_folders"],
    ];
    for list in lists {
        for f in list.as_array().unwrap() {
            let guest = f["guest"].as_str().unwrap().to_string();
            let entry = folders
                .entry(guest)
                .or_insert_with(|| serde_json::json!({"host": f["host"], "opts": {}}));
            entry["host"] = f["host"].clone();
            for (k, v) in f["opts"].as_object().unwrap() {
                entry["opts"][k] = v.clone();
            }
        }
    }
    folders
}

/// Where an installed gem keeps its source, if Ruby knows the gem.
fn gem_dir(gem: &str) -> Option<PathBuf> {
    let mut c = Command::new("ruby");
    c.arg("-e").arg(format!(
        "print Gem::Specification.find_by_name({gem:?}).gem_dir"
    ));
    let out = golab::exec::run(c, "ruby gem_dir", Duration::from_secs(30)).ok()?;
    out.ok().then(|| PathBuf::from(out.stdout.trim()))
}

/// Every name set is an attribute of the real provider config class, when the provider
/// is installed here (the lists above are checked against the source they came from).
fn check_against_installed_source(source: &Path, names: &BTreeSet<String>) {
    let text = std::fs::read_to_string(source).unwrap();
    for n in names {
        let declared = text.lines().any(|l| {
            let l = l.trim();
            l.strip_prefix("attr_accessor :")
                .map(|r| r.split_whitespace().next() == Some(n.as_str()))
                .unwrap_or(false)
                || l.starts_with(&format!("def {n}="))
        });
        assert!(declared, "{n} is not an attribute in {}", source.display());
    }
}

#[test]
fn provider_blocks_set_the_configured_values_under_their_real_names() {
    need("ruby", "ruby");
    let d = tempfile::tempdir().unwrap();
    let cfg = lab_config(d.path());
    let labs = cfg.labs_dir.to_str().unwrap().to_string();
    let known: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("virtualbox", VIRTUALBOX_ATTRS),
        ("libvirt", LIBVIRT_ATTRS),
        ("qemu", QEMU_ATTRS),
    ]);
    let mut used: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();

    for chosen in Provider::ALL {
        let vf = vagrant::write(chosen, &cfg, &d.path().join(chosen.name())).unwrap();
        let r = evaluate(&vf);

        assert_eq!(r["configure_versions"], serde_json::json!(["2"]));
        assert_eq!(
            r["default_provider"],
            chosen.name(),
            "the rendering picks the default provider"
        );
        assert_eq!(
            r["provider_order"][0],
            chosen.name(),
            "the chosen provider's block comes first"
        );
        let mut order: Vec<String> = r["provider_order"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        order.sort();
        assert_eq!(
            order,
            ["libvirt", "qemu", "virtualbox"],
            "every provider block is present"
        );

        for name in r["vm"].as_object().unwrap().keys() {
            assert!(
                VM_ATTRS.contains(&name.as_str()),
                "config.vm.{name} is not a Vagrant vm attribute"
            );
        }
        assert_eq!(r["vm"]["box"], "generic/ubuntu2204");
        assert_eq!(r["vm"]["hostname"], "golab-lab-1");

        assert_eq!(
            r["networks"],
            serde_json::json!([
                {"type": "forwarded_port", "opts": {"id": "ssh", "guest": 22, "host": 52022, "host_ip": "127.0.0.1"}},
                {"type": "forwarded_port", "opts": {"id": "dlv", "guest": 2345, "host": 52345, "host_ip": "127.0.0.1"}},
            ])
        );
        assert_eq!(
            r["provision"],
            serde_json::json!([{"name": "shell", "opts": {
            "name": "golab-lab-vm", "path": "provision/lab-vm.sh",
            "env": {
                "GOLAB_GO_BASE_URL": "http://127.0.0.1:8080/go/",
                "GOLAB_GO_VERSION": "1.17.1",
                "GOLAB_GO_SHA256": GO1171_SHA256,
                "GOLAB_DLV_SOURCE": "go-install",
                "GOLAB_DLV_VERSION": "1.9.1",
            }}}])
        );

        let vb = provider_sets(&r, "virtualbox");
        assert_eq!(
            vb,
            BTreeMap::from([
                ("name".into(), "golab-lab-1".into()),
                ("cpus".into(), 3.into()),
                ("memory".into(), 3072.into())
            ])
        );

        let lv = provider_sets(&r, "libvirt");
        let want: BTreeMap<String, Value> = [
            ("driver", Value::from("qemu")),
            ("cpus", 3.into()),
            ("memory", 3072.into()),
            ("cpu_mode", "custom".into()),
            ("cpu_model", "qemu64".into()),
            ("forward_ssh_port", true.into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(lv, want);

        let qe = provider_sets(&r, "qemu");
        let want: BTreeMap<String, Value> = [
            ("arch", Value::from("x86_64")),
            ("machine", "q35".into()),
            ("cpu", "max".into()),
            ("net_device", "virtio-net-pci".into()),
            ("smp", 3.into()),
            ("memory", "3G".into()),
            ("ssh_port", 52022.into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(qe, want);

        for (provider, attrs) in &known {
            for name in provider_sets(&r, provider).keys() {
                assert!(
                    attrs.contains(&name.as_str()),
                    "{provider} has no attribute {name:?} (a typo?)"
                );
                used.entry(provider).or_default().insert(name.clone());
            }
        }

        let disabled = serde_json::json!({"host": ".", "opts": {"disabled": true}});
        let vbox_folders = effective_synced_folders(&r, "virtualbox");
        assert_eq!(vbox_folders["/vagrant"], disabled);
        assert_eq!(
            vbox_folders["/home/vagrant/labs"],
            serde_json::json!({"host": labs, "opts": {}}),
            "VirtualBox's own shared folders"
        );
        for rsync in ["libvirt", "qemu"] {
            let f = effective_synced_folders(&r, rsync);
            assert_eq!(f.len(), 2, "{rsync}: {f:?}");
            assert_eq!(f["/vagrant"], disabled);
            assert_eq!(
                f["/home/vagrant/labs"],
                serde_json::json!({"host": labs, "opts": {"type": "rsync"}}),
                "{rsync}"
            );
        }
    }

    // The hand-written lists against the real config classes (scripts/install-deps.sh
    // installs both gems: without them this fails, it does not skip).
    for (gem, rel, provider) in [
        (
            "vagrant",
            "plugins/providers/virtualbox/config.rb",
            "virtualbox",
        ),
        (
            "vagrant-libvirt",
            "lib/vagrant-libvirt/config.rb",
            "libvirt",
        ),
    ] {
        match gem_dir(gem) {
            Some(dir) if dir.join(rel).is_file() => {
                check_against_installed_source(&dir.join(rel), &used[provider])
            }
            _ => panic!(
                "the gem {gem} is not installed (no {rel}): install the Debian package `{gem}` (scripts/install-deps.sh); {provider}'s attributes cannot be checked against it"
            ),
        }
    }
}

#[test]
fn kvm_leaves_the_cpu_model_to_libvirt() {
    need("ruby", "ruby");
    let d = tempfile::tempdir().unwrap();
    let cfg = VagrantConfig {
        libvirt_driver: LibvirtDriver::Kvm,
        ..lab_config(d.path())
    };
    let r = evaluate(&vagrant::write(Provider::Libvirt, &cfg, d.path()).unwrap());
    let lv = provider_sets(&r, "libvirt");
    assert_eq!(lv["driver"], "kvm");
    assert!(
        !lv.contains_key("cpu_mode") && !lv.contains_key("cpu_model"),
        "{lv:?}"
    );
}

#[test]
fn direct_boot_and_apt_dlv_reach_libvirt_and_the_provisioner() {
    need("ruby", "ruby");
    let d = tempfile::tempdir().unwrap();
    let boot = DirectBoot {
        kernel: "/boxes/debian 12/vmlinuz".into(),
        initrd: "/boxes/debian 12/initrd".into(),
        cmdline: "root=/dev/vda console=ttyS0".into(),
    };
    let cfg = VagrantConfig {
        boot: Some(boot),
        dlv: DlvSource::Apt,
        go_version: "go1.19.8".into(),
        go_sha256: "AB".repeat(32),
        ..lab_config(d.path())
    };
    let r = evaluate(&vagrant::write(Provider::Libvirt, &cfg, d.path()).unwrap());
    let lv = provider_sets(&r, "libvirt");
    assert_eq!(lv["kernel"], "/boxes/debian 12/vmlinuz");
    assert_eq!(lv["initrd"], "/boxes/debian 12/initrd");
    assert_eq!(lv["cmd_line"], "root=/dev/vda console=ttyS0");
    // The provisioner's names for the pins (lab-vm.sh reads exactly these), no dlv
    // version when dlv comes from apt, and the version without its "go".
    let env = &r["provision"][0]["opts"]["env"];
    assert_eq!(env["GOLAB_GO_VERSION"], "1.19.8");
    assert_eq!(env["GOLAB_GO_SHA256"], "ab".repeat(32));
    assert_eq!(env["GOLAB_DLV_SOURCE"], "apt");
    assert!(env.get("GOLAB_DLV_VERSION").is_none(), "{env}");
    let script = std::fs::read_to_string(d.path().join("provision/lab-vm.sh")).unwrap();
    for k in env.as_object().unwrap().keys() {
        assert!(
            script.contains(&format!("${{{k}")),
            "lab-vm.sh does not read {k}"
        );
    }

    // Only libvirt boots a kernel directly; the other renderings refuse it.
    for p in [Provider::Virtualbox, Provider::Qemu] {
        let err = vagrant::render(p, &cfg).unwrap_err();
        assert!(
            format!("{err:#}").contains("libvirt provider only"),
            "{p}: {err:#}"
        );
    }
    // Values no provisioner could use are refused before anything is written.
    let out = d.path().join("refused");
    for (bad, says) in [
        (
            VagrantConfig {
                go_sha256: "123".into(),
                ..cfg.clone()
            },
            "SHA-256",
        ),
        (
            VagrantConfig {
                go_version: "1.17\n;rm".into(),
                ..cfg.clone()
            },
            "not a Go version",
        ),
        (
            VagrantConfig {
                boot: Some(DirectBoot {
                    kernel: "vmlinuz".into(),
                    ..cfg.boot.clone().unwrap()
                }),
                ..cfg.clone()
            },
            "absolute",
        ),
    ] {
        let err = vagrant::write(Provider::Libvirt, &bad, &out).unwrap_err();
        assert!(format!("{err:#}").contains(says), "{err:#}");
        assert!(
            !out.exists(),
            "nothing is written for a refused configuration"
        );
    }
}

#[test]
fn a_missing_variable_is_an_error() {
    let d = tempfile::tempdir().unwrap();
    let mut vars = vagrant::template_vars(Provider::Libvirt, &lab_config(d.path())).unwrap();
    vars.remove("hostname");
    let err = vagrant::render_template(vagrant::TEMPLATE, &vars).unwrap_err();
    assert!(format!("{err:#}").contains("hostname"), "{err:#}");
    // Strict undefined behaviour, beyond the top-level names: printing a missing field fails.
    let vars = serde_json::json!({"vm": {}}).as_object().unwrap().clone();
    assert!(vagrant::render_template("{{ vm.hostname }}", &vars).is_err());
    // And the ruby filter refuses what is not a string instead of printing it raw.
    let vars = serde_json::json!({"n": 3}).as_object().unwrap().clone();
    assert!(vagrant::render_template("{{ n|ruby }}", &vars).is_err());
}

#[test]
fn a_hostname_with_a_quote_stays_inside_its_string() {
    need("ruby", "ruby");
    let d = tempfile::tempdir().unwrap();
    let labs = d.path().join("labs \"quoted\" #{1} \\ dir");
    std::fs::create_dir_all(&labs).unwrap();
    // Breaking out of the literal with a quote, and Ruby interpolation that would write
    // a file named `escaped` beside the Vagrantfile if it ran.
    let hostnames = [
        "lab\"; File.write(\"escaped\", 1); \"\\",
        "lab-#{File.write('escaped', 1)}-\u{e9}\t",
    ];
    for (i, hostname) in hostnames.iter().enumerate() {
        let cfg = VagrantConfig {
            hostname: hostname.to_string(),
            labs_dir: labs.clone(),
            box_name: "box\\\"\n".into(),
            ..lab_config(d.path())
        };
        for p in Provider::ALL {
            let dir = d.path().join(format!("{i}-{p}"));
            let vf = vagrant::write(p, &cfg, &dir).unwrap();
            ruby_syntax_ok(&vf);
            let r = evaluate(&vf);
            assert!(
                !dir.join("escaped").exists(),
                "text from the hostname ran as Ruby"
            );
            assert_eq!(
                r["vm"]["hostname"], *hostname,
                "the hostname comes back exactly"
            );
            assert_eq!(r["vm"]["box"], "box\\\"\n");
            assert_eq!(provider_sets(&r, "virtualbox")["name"], *hostname);
            assert_eq!(r["synced_folders"][1]["host"], labs.to_str().unwrap());
        }
    }
}

#[test]
fn the_provisioner_passes_bash_n_and_shellcheck() {
    need("shellcheck", "shellcheck");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("provision/lab-vm.sh");
    let mut c = Command::new("bash");
    c.arg("-n").arg(&script);
    let out = run(c, "bash -n");
    assert!(out.ok(), "bash -n:\n{}", out.combined());
    let mut c = Command::new("shellcheck");
    c.arg(&script);
    let out = run(c, "shellcheck");
    assert!(out.ok(), "shellcheck:\n{}", out.combined());
}

#[test]
fn golab_render_writes_a_valid_vagrantfile_for_each_provider() {
    for provider in ["virtualbox", "libvirt", "qemu"] {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_golab"))
            .args(["render", "--provider", provider, "-o"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(dir.path().join("provision/lab-vm.sh").is_file());
        let c = std::process::Command::new("ruby")
            .arg("-c")
            .arg(dir.path().join("Vagrantfile"))
            .output()
            .unwrap();
        assert!(
            c.status.success(),
            "{provider}: {}",
            String::from_utf8_lossy(&c.stderr)
        );
    }
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_golab"))
        .args(["render", "--provider", "parallels"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
