//! The lab VM as a Vagrantfile: `Vagrantfile.tmpl` rendered with minijinja (strict, so a
//! missing variable is an error) and written with `provision/lab-vm.sh` beside it.
//!
//! This module only produces the files; running `vagrant` is the machine layer's job.
//! The template holds the provider blocks of all three providers (Vagrant evaluates only
//! the one in use); the `Provider` given to [`render`] becomes the default provider and
//! its block comes first. Every string reaches the Vagrantfile through the `ruby` filter
//! ([`ruby_string`]), so a hostname or a path with a quote cannot break out of its literal.
//!
//! The guest is x86_64 for every provider, also on Apple Silicon (vagrant-qemu emulates
//! it): the labs follow the amd64 startup path and the pinned Go is `linux-amd64`.

use super::{DlvSource, Machine};
use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value, json};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The template, from the crate's root.
pub const TEMPLATE: &str = include_str!("../../Vagrantfile.tmpl");
/// The shell provisioner the Vagrantfile runs (`provision/lab-vm.sh` beside it).
pub const PROVISIONER: &str = include_str!("../../provision/lab-vm.sh");
/// Where the provisioner sits, relative to the Vagrantfile (the template names it too).
pub const PROVISIONER_PATH: &str = "provision/lab-vm.sh";

/// A Vagrant provider golab can render for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// VirtualBox (x86_64 hosts).
    Virtualbox,
    /// vagrant-libvirt (Linux hosts; KVM, or QEMU's software emulation).
    Libvirt,
    /// The vagrant-qemu plugin (Apple Silicon: an emulated x86_64 guest).
    Qemu,
}

impl Provider {
    pub const ALL: [Provider; 3] = [Provider::Virtualbox, Provider::Libvirt, Provider::Qemu];

    /// The provider's name as Vagrant spells it (`--provider=...`).
    pub fn name(self) -> &'static str {
        match self {
            Provider::Virtualbox => "virtualbox",
            Provider::Libvirt => "libvirt",
            Provider::Qemu => "qemu",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Provider {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Provider::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                anyhow!("unknown Vagrant provider {s:?}: use one of virtualbox, libvirt, qemu")
            })
    }
}

/// How vagrant-libvirt runs the guest: `kvm`, or `qemu` (software emulation, TCG) where
/// KVM is missing or does not boot a guest (nested hosts; see VMS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LibvirtDriver {
    #[default]
    Kvm,
    Qemu,
}

impl LibvirtDriver {
    pub fn name(self) -> &'static str {
        match self {
            LibvirtDriver::Kvm => "kvm",
            LibvirtDriver::Qemu => "qemu",
        }
    }
}

impl fmt::Display for LibvirtDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for LibvirtDriver {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "kvm" => Ok(LibvirtDriver::Kvm),
            "qemu" | "tcg" => Ok(LibvirtDriver::Qemu),
            _ => bail!("unknown libvirt driver {s:?}: use kvm or qemu"),
        }
    }
}

/// What differs between one lab VM and another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VagrantConfig {
    /// The box. The default, `generic/ubuntu2204`, is published for virtualbox and
    /// libvirt, and vagrant-qemu imports libvirt boxes, so one x86_64 box serves all three.
    pub box_name: String,
    pub cpus: u32,
    pub memory_mib: u32,
    pub hostname: String,
    /// Host port (on 127.0.0.1) for the guest's ssh.
    pub ssh_port: u16,
    /// Host port (on 127.0.0.1) for dlv's API in the guest.
    pub dlv_port: u16,
    /// The port dlv listens on in the guest (it must listen on all the guest's
    /// interfaces, `--listen=:PORT`, for the forwarded port to reach it).
    pub dlv_port_guest: u16,
    /// The labs folder on the host, shared as /home/vagrant/labs. A relative path is
    /// taken from the Vagrantfile's folder (as Vagrant does).
    pub labs_dir: PathBuf,
    /// Where the provisioner downloads the Go tarball from (`GOLAB_GO_BASE_URL`).
    pub go_base_url: String,
    pub libvirt_driver: LibvirtDriver,
    /// The Go the provisioner installs, and its tarball's SHA-256 (lab-vm.sh's
    /// `GOLAB_GO_VERSION`, `GOLAB_GO_SHA256`): written into the Vagrantfile, so the
    /// machine is pinned by the file alone.
    pub go_version: String,
    pub go_sha256: String,
    pub dlv: DlvSource,
    /// libvirt only: boot this kernel directly (a box whose disk has no boot loader,
    /// such as the one `scripts/vagrant-box.sh` makes from golab's Debian image).
    pub boot: Option<DirectBoot>,
}

/// A kernel booted directly by the hypervisor, not by a loader on the disk.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DirectBoot {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// The kernel's command line (`root=/dev/vda console=ttyS0` for a bare file system
    /// on the first virtio disk).
    pub cmdline: String,
}

impl Default for VagrantConfig {
    fn default() -> Self {
        VagrantConfig {
            box_name: "generic/ubuntu2204".into(),
            cpus: 2,
            memory_mib: 2048,
            hostname: "golab".into(),
            ssh_port: 52022,
            dlv_port: 52345,
            dlv_port_guest: 2345,
            labs_dir: PathBuf::from("labs"),
            go_base_url: crate::download::GO_BASE.into(),
            libvirt_driver: LibvirtDriver::Kvm,
            go_version: crate::pins::course().go.version.into(),
            go_sha256: crate::pins::course().go.tarball_sha256.into(),
            dlv: DlvSource::GoInstall(crate::pins::course().dlv_tag()),
            boot: None,
        }
    }
}

impl VagrantConfig {
    /// Rejects values no provider could use, saying which field to change.
    pub fn validate(&self) -> Result<()> {
        if self.box_name.trim().is_empty() {
            bail!("the Vagrant box name is empty");
        }
        if self.hostname.trim().is_empty() {
            bail!("the VM's hostname is empty");
        }
        if self.cpus == 0 {
            bail!("the VM needs at least 1 CPU");
        }
        if self.memory_mib < 1024 {
            bail!(
                "{} MiB of memory is too little for the lab VM: give it at least 1024",
                self.memory_mib
            );
        }
        for (what, port) in [
            ("ssh", self.ssh_port),
            ("dlv", self.dlv_port),
            ("dlv (guest)", self.dlv_port_guest),
        ] {
            if port == 0 {
                bail!("the {what} port is 0: give a port number");
            }
        }
        if self.ssh_port == self.dlv_port {
            bail!(
                "the ssh and dlv host ports are both {}: they must differ",
                self.ssh_port
            );
        }
        if self.dlv_port_guest == 22 {
            bail!("dlv cannot listen on the guest's ssh port 22");
        }
        if self.go_base_url.trim().is_empty() {
            bail!("the Go download base URL is empty");
        }
        let v = self.go_version.trim_start_matches("go");
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.') {
            bail!("{:?} is not a Go version (like 1.17.1)", self.go_version);
        }
        if self.go_sha256.len() != 64 || !self.go_sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!(
                "{:?} is not a SHA-256 (64 hex digits) for go{}.linux-amd64.tar.gz",
                self.go_sha256,
                self.go_version
            );
        }
        match &self.dlv {
            DlvSource::GoInstall(v) | DlvSource::Source { version: v, .. }
                if v.trim().is_empty() =>
            {
                bail!("the dlv version is empty (or use `apt`)");
            }
            _ => {}
        }
        if let Some(b) = &self.boot {
            for (what, p) in [("kernel", &b.kernel), ("initrd", &b.initrd)] {
                if !p.is_absolute() || p.to_str().is_none() {
                    bail!(
                        "the {what} for direct boot must be an absolute UTF-8 path (libvirt reads it as is): {}",
                        p.display()
                    );
                }
            }
        }
        if self.labs_dir.to_str().is_none() {
            bail!(
                "the labs folder {} is not valid UTF-8: Vagrantfiles are UTF-8",
                self.labs_dir.display()
            );
        }
        Ok(())
    }
}

/// The memory as vagrant-qemu wants it: a QEMU size string ("3G", or "1536M").
pub fn qemu_memory(memory_mib: u32) -> String {
    if memory_mib.is_multiple_of(1024) {
        format!("{}G", memory_mib / 1024)
    } else {
        format!("{memory_mib}M")
    }
}

/// The template's variables for one rendering.
pub fn template_vars(provider: Provider, cfg: &VagrantConfig) -> Result<Map<String, Value>> {
    cfg.validate()?;
    if cfg.boot.is_some() && provider != Provider::Libvirt {
        bail!(
            "direct kernel boot (--kernel/--initrd) is for the libvirt provider only; {provider} boots the box's own loader"
        );
    }
    let mut order = vec![provider];
    order.extend(Provider::ALL.into_iter().filter(|p| *p != provider));
    let labs_dir = cfg
        .labs_dir
        .to_str()
        .context("the labs folder is not valid UTF-8")?;
    let vars = json!({
        "default_provider": provider.name(),
        "provider_order": order.iter().map(|p| p.name()).collect::<Vec<_>>(),
        "box_name": cfg.box_name,
        "cpus": cfg.cpus,
        "memory_mib": cfg.memory_mib,
        "qemu_memory": qemu_memory(cfg.memory_mib),
        "hostname": cfg.hostname,
        "ssh_port": cfg.ssh_port,
        "dlv_port": cfg.dlv_port,
        "dlv_port_guest": cfg.dlv_port_guest,
        "labs_dir": labs_dir,
        "go_base_url": cfg.go_base_url,
        "libvirt_driver": cfg.libvirt_driver.name(),
        "go_version": cfg.go_version.trim_start_matches("go"),
        "go_sha256": cfg.go_sha256.to_ascii_lowercase(),
        "dlv_source": cfg.dlv.provisioner_env().0,
        "dlv_version": cfg.dlv.provisioner_env().1.unwrap_or_default(),
        "dlv_env": cfg.dlv.provisioner_vars().into_iter().map(|(k, v)| vec![k.to_string(), v]).collect::<Vec<_>>(),
        "boot": cfg.boot.as_ref().map(|b| json!({
            "kernel": b.kernel.to_string_lossy(),
            "initrd": b.initrd.to_string_lossy(),
            "cmdline": b.cmdline,
        })),
    });
    match vars {
        Value::Object(m) => Ok(m),
        _ => unreachable!("json! of an object literal is an object"),
    }
}

/// A double-quoted Ruby string literal of `s`: `"`, `\` and `#` (interpolation) are
/// escaped, and everything outside printable ASCII becomes `\u{...}`, so the literal
/// evaluates to exactly `s` and the Vagrantfile stays ASCII.
pub fn ruby_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '#' => out.push_str("\\#"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            ' '..='~' => out.push(c),
            _ => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    out.push('"');
    out
}

fn ruby_filter(value: minijinja::Value) -> std::result::Result<String, minijinja::Error> {
    match value.as_str() {
        Some(s) => Ok(ruby_string(s)),
        None => Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!(
                "the ruby filter takes a string, not {} ({})",
                value.kind(),
                value
            ),
        )),
    }
}

/// Renders a Vagrantfile template (normally [`TEMPLATE`]) with `vars`; a variable the
/// template uses and `vars` lacks is an error naming it.
pub fn render_template(source: &str, vars: &Map<String, Value>) -> Result<String> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()?,
    );
    env.add_filter("ruby", ruby_filter);
    env.add_template("Vagrantfile.tmpl", source)
        .map_err(|e| anyhow!("Vagrantfile.tmpl does not parse: {e:#}"))?;
    let tmpl = env.get_template("Vagrantfile.tmpl")?;
    let mut missing: Vec<String> = tmpl
        .undeclared_variables(false)
        .into_iter()
        .filter(|v| !vars.contains_key(v))
        .collect();
    if !missing.is_empty() {
        missing.sort();
        bail!(
            "Vagrantfile.tmpl uses variables that were not given: {}",
            missing.join(", ")
        );
    }
    // Strict undefined behaviour still guards what the check above cannot see.
    tmpl.render(minijinja::value::Serde(vars))
        .map_err(|e| anyhow!("cannot render Vagrantfile.tmpl: {e:#}"))
}

/// The Vagrantfile for `provider` (the default provider; all provider blocks present).
pub fn render(provider: Provider, cfg: &VagrantConfig) -> Result<String> {
    render_template(TEMPLATE, &template_vars(provider, cfg)?)
}

/// Writes `dir/Vagrantfile` and `dir/provision/lab-vm.sh`, each atomically (the script
/// first, so a Vagrantfile never names a missing script), and returns the Vagrantfile's
/// path. Nothing is written when rendering fails.
pub fn write(provider: Provider, cfg: &VagrantConfig, dir: &Path) -> Result<PathBuf> {
    let text = render(provider, cfg)?;
    let script = dir.join(PROVISIONER_PATH);
    crate::files::write_atomic(&script, PROVISIONER.as_bytes())?;
    set_mode(&script, 0o755)?;
    let vagrantfile = dir.join("Vagrantfile");
    crate::files::write_atomic(&vagrantfile, text.as_bytes())?;
    set_mode(&vagrantfile, 0o644)?;
    Ok(vagrantfile)
}

/// Lab VMs driven through Vagrant: `$GOLAB_STATE/vagrant/NAME` holds the rendered
/// Vagrantfile, the provisioner and `machine.json` (provider and forwarded ports);
/// `vagrant` itself keeps the rest (`.vagrant/`).
pub struct Vagrant {
    root: PathBuf,
}

/// What `up` recorded for a Vagrant machine.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Recorded {
    pub provider: String,
    pub ssh_port: u16,
    pub dlv_port: u16,
    pub dlv_port_guest: u16,
    /// Set once `vagrant up` (with its provisioning) has succeeded: until then a
    /// later `up` provisions again, so an interrupted first `up` is resumed, not left
    /// half-provisioned.
    #[serde(default)]
    pub provisioned: bool,
}

/// What `up` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpOutcome {
    /// Made (or finished making) and provisioned.
    Created,
    /// Booted again; provisioned before.
    Resumed,
    /// It was running: nothing done.
    AlreadyRunning,
}

/// `Port`, `User`, `IdentityFile` from `vagrant ssh-config`.
pub fn parse_ssh_config(text: &str) -> Option<(String, u16, PathBuf)> {
    let get = |k: &str| {
        text.lines().find_map(|l| {
            l.trim()
                .strip_prefix(k)
                .map(|v| v.trim().trim_matches('"').to_string())
        })
    };
    Some((
        get("User ")?,
        get("Port ")?.parse().ok()?,
        PathBuf::from(get("IdentityFile ")?),
    ))
}

impl Vagrant {
    pub fn new() -> Result<Vagrant> {
        Ok(Vagrant {
            root: super::state_root()?,
        })
    }

    /// The provider `--vagrant-provider auto` picks on this host (see [`pick_provider`]).
    pub fn auto_provider() -> Result<Provider> {
        let plugins = run_vagrant(
            None,
            &["plugin", "list", "--machine-readable"],
            std::time::Duration::from_secs(120),
            false,
        )?;
        let has = |p: &str| machine_readable_has(&plugins.stdout, "plugin-name", p);
        pick_provider(
            std::env::consts::OS,
            std::env::consts::ARCH,
            crate::exec::which("VBoxManage").is_some(),
            has("vagrant-libvirt"),
            has("vagrant-qemu"),
        )
    }

    pub fn with_state_root(root: impl Into<PathBuf>) -> Vagrant {
        Vagrant { root: root.into() }
    }

    /// Vagrant must be on PATH for anything but `golab render`.
    fn require_vagrant() -> Result<()> {
        if crate::exec::which("vagrant").is_none() {
            bail!(
                "vagrant is not installed (or not on PATH): install Vagrant and the plugin of its provider (Debian: apt-get install vagrant vagrant-libvirt), or use --provider qemu, which needs only QEMU"
            );
        }
        Ok(())
    }

    pub fn dir(&self, name: &str) -> PathBuf {
        self.root.join("vagrant").join(name)
    }

    fn vagrant(
        &self,
        name: &str,
        args: &[&str],
        timeout: std::time::Duration,
    ) -> Result<crate::exec::Captured> {
        self.vagrant_in(name, args, timeout, false)
    }

    /// `vagrant ARGS` in the machine's folder; `echo` shows its lines as they come.
    fn vagrant_in(
        &self,
        name: &str,
        args: &[&str],
        timeout: std::time::Duration,
        echo: bool,
    ) -> Result<crate::exec::Captured> {
        if !self.dir(name).join("Vagrantfile").is_file() {
            bail!(
                "no Vagrant machine named {name} (in {}): `golab up --provider vagrant --name {name}` makes it",
                self.dir(name).display()
            );
        }
        run_vagrant(Some(&self.dir(name)), args, timeout, echo)
    }

    /// Adds a `.box` file to Vagrant as `golab/STEM` unless a box of that name is already
    /// there (`vagrant box remove golab/STEM` makes the next `up` take a new file), and
    /// returns the name.
    pub fn add_box_file(&self, file: &Path) -> Result<String> {
        let stem = file
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".box"))
            .filter(|s| !s.is_empty());
        let name = format!(
            "golab/{}",
            stem.with_context(|| format!("{}: a box file is named NAME.box", file.display()))?
        );
        let run = |args: &[&str], timeout: u64| {
            run_vagrant(None, args, std::time::Duration::from_secs(timeout), false)
        };
        let listed = run(&["box", "list", "--machine-readable"], 120)?;
        if box_listed(&listed.stdout, &name) {
            return Ok(name);
        }
        let path = std::fs::canonicalize(file).with_context(|| format!("{}", file.display()))?;
        let path = path
            .to_str()
            .with_context(|| format!("{} is not valid UTF-8", path.display()))?;
        eprintln!("adding {} to Vagrant as {name}", file.display());
        run(&["box", "add", "--name", &name, path], 1800)?;
        Ok(name)
    }

    /// Renders the Vagrantfile (free 127.0.0.1 ports) and runs `vagrant up`. A machine
    /// that exists keeps its Vagrantfile and ports; one that runs is left alone.
    pub fn up(
        &self,
        name: &str,
        provider: Provider,
        cfg: VagrantConfig,
    ) -> Result<(Machine, UpOutcome)> {
        let dir = self.dir(name);
        let rec_path = dir.join("machine.json");
        let mut rec: Recorded = match std::fs::read_to_string(&rec_path) {
            Ok(t) => serde_json::from_str(&t).with_context(|| format!("{}", rec_path.display()))?,
            Err(_) => {
                write(provider, &cfg, &dir)?;
                let r = Recorded {
                    provider: provider.to_string(),
                    ssh_port: cfg.ssh_port,
                    dlv_port: cfg.dlv_port,
                    dlv_port_guest: cfg.dlv_port_guest,
                    provisioned: false,
                };
                crate::files::write_atomic(
                    &rec_path,
                    serde_json::to_string_pretty(&r)?.as_bytes(),
                )?;
                r
            }
        };
        if rec.provider != provider.name() {
            bail!(
                "{name} was made with Vagrant's {} provider, not {provider}: `golab destroy --provider vagrant --name {name}` first, or keep --vagrant-provider {}",
                rec.provider,
                rec.provider
            );
        }
        let outcome = if !rec.provisioned {
            UpOutcome::Created
        } else if self.status(name)? == "running" {
            return Ok((self.machine(name)?, UpOutcome::AlreadyRunning));
        } else {
            UpOutcome::Resumed
        };
        let provider_arg = format!("--provider={}", rec.provider);
        let mut args = vec!["up", provider_arg.as_str()];
        // A first `up` that was cut off may have booted the machine without finishing its
        // provisioning, and a plain `vagrant up` would not run it again.
        if !rec.provisioned {
            args.push("--provision");
        }
        self.vagrant_in(name, &args, std::time::Duration::from_secs(3600), true)?;
        if !rec.provisioned {
            rec.provisioned = true;
            crate::files::write_atomic(&rec_path, serde_json::to_string_pretty(&rec)?.as_bytes())?;
        }
        Ok((self.machine(name)?, outcome))
    }

    /// The machine as the probes reach it, from `vagrant ssh-config` and `machine.json`.
    pub fn machine(&self, name: &str) -> Result<Machine> {
        let rec: Recorded = serde_json::from_str(
            &std::fs::read_to_string(self.dir(name).join("machine.json")).with_context(|| {
                format!("no Vagrant machine {name}: `golab up --provider vagrant` first")
            })?,
        )?;
        let out = self.vagrant(name, &["ssh-config"], std::time::Duration::from_secs(120))?;
        let (user, _port, key) = parse_ssh_config(&out.stdout)
            .with_context(|| format!("cannot read `vagrant ssh-config`: {}", out.stdout))?;
        // The Vagrantfile forwards the guest's 22 to 127.0.0.1:ssh_port.
        Ok(Machine::Ssh(super::Ssh {
            name: name.into(),
            user,
            port: rec.ssh_port,
            key,
            dlv_port: rec.dlv_port,
            guest_dlv_port: rec.dlv_port_guest,
            dlv_listen_host: "0.0.0.0".into(),
            master: None,
        }))
    }

    pub fn status(&self, name: &str) -> Result<String> {
        let out = self.vagrant(
            name,
            &["status", "--machine-readable"],
            std::time::Duration::from_secs(120),
        )?;
        Ok(out
            .stdout
            .lines()
            .find_map(|l| {
                l.split(',')
                    .nth(2)
                    .filter(|k| *k == "state")
                    .and(l.split(',').nth(3))
            })
            .unwrap_or("unknown")
            .to_string())
    }

    pub fn down(&self, name: &str) -> Result<()> {
        self.vagrant_in(name, &["halt"], std::time::Duration::from_secs(600), true)
            .map(|_| ())
    }

    pub fn destroy(&self, name: &str) -> Result<()> {
        // Vagrant records a machine's id once its provider has made it; without one there
        // is nothing to destroy, and `vagrant destroy` would fail where the provider is
        // unusable (the very case in which one wants the folder gone).
        let made = std::fs::read_dir(self.dir(name).join(".vagrant/machines/default"))
            .map(|providers| providers.flatten().any(|p| p.path().join("id").is_file()))
            .unwrap_or(false);
        if made {
            self.vagrant(
                name,
                &["destroy", "-f"],
                std::time::Duration::from_secs(600),
            )?;
        } else if !self.dir(name).join("machine.json").is_file() {
            bail!(
                "no Vagrant machine named {name} (in {})",
                self.dir(name).display()
            );
        }
        std::fs::remove_dir_all(self.dir(name))
            .with_context(|| format!("cannot remove {}", self.dir(name).display()))
    }
}

/// `vagrant ARGS` (in `dir`, a machine's folder, when given); `echo` shows its lines as
/// they come. A failure is an error with vagrant's last lines, unless they were shown.
fn run_vagrant(
    dir: Option<&Path>,
    args: &[&str],
    timeout: std::time::Duration,
    echo: bool,
) -> Result<crate::exec::Captured> {
    Vagrant::require_vagrant()?;
    let mut c = std::process::Command::new("vagrant");
    c.args(args);
    if let Some(d) = dir {
        c.current_dir(d);
    }
    let label = format!("vagrant {}", args.join(" "));
    let out = if echo {
        crate::exec::run_echoed(c, &label, timeout, "  vagrant: ")?
    } else {
        crate::exec::run(c, &label, timeout)?
    };
    if !out.ok() {
        let place = dir
            .map(|d| format!(" in {}", d.display()))
            .unwrap_or_default();
        if echo {
            bail!("{label} failed{place} (its output is above)");
        }
        bail!(
            "{label} failed{place}:\n{}",
            crate::exec::tail(&out.combined())
        );
    }
    Ok(out)
}

/// `--vagrant-provider auto`: vagrant-qemu where only emulation can run an x86_64 guest
/// (Apple Silicon), VirtualBox where it is installed, else vagrant-libvirt.
pub fn pick_provider(
    os: &str,
    arch: &str,
    virtualbox: bool,
    libvirt_plugin: bool,
    qemu_plugin: bool,
) -> Result<Provider> {
    if os == "macos" && arch != "x86_64" {
        if qemu_plugin {
            return Ok(Provider::Qemu);
        }
        bail!(
            "on Apple Silicon the lab VM needs the vagrant-qemu plugin (`vagrant plugin install vagrant-qemu`), or use --provider qemu"
        );
    }
    if virtualbox {
        return Ok(Provider::Virtualbox);
    }
    if libvirt_plugin {
        return Ok(Provider::Libvirt);
    }
    bail!(
        "no Vagrant provider found: install VirtualBox, or the vagrant-libvirt plugin (Debian: apt-get install vagrant-libvirt libvirt-daemon-system), or use --provider qemu; --vagrant-provider names one"
    )
}

/// Whether vagrant's `--machine-readable` output (`TIME,TARGET,KIND,DATA`) has a line
/// of `kind` whose data is `value` (`box-name`, `plugin-name`).
fn machine_readable_has(machine_readable: &str, kind: &str, value: &str) -> bool {
    machine_readable.lines().any(|l| {
        let f: Vec<&str> = l.split(',').collect();
        f.len() >= 4 && f[2] == kind && f[3] == value
    })
}

/// Whether `vagrant box list --machine-readable` names the box `name`.
fn box_listed(machine_readable: &str, name: &str) -> bool {
    machine_readable_has(machine_readable, "box-name", name)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vagrant_ssh_config_gives_user_port_and_key() {
        // As `vagrant ssh-config` prints it (vagrant 2.3.4).
        let t = "Host default\n  HostName 127.0.0.1\n  User vagrant\n  Port 2222\n  UserKnownHostsFile /dev/null\n  StrictHostKeyChecking no\n  IdentityFile \"/home/u/.vagrant.d/insecure_private_key\"\n  IdentitiesOnly yes\n";
        assert_eq!(
            parse_ssh_config(t),
            Some((
                "vagrant".into(),
                2222,
                PathBuf::from("/home/u/.vagrant.d/insecure_private_key")
            ))
        );
        assert_eq!(parse_ssh_config("Host default\n"), None);
    }

    #[test]
    fn a_machine_vagrant_never_made_is_destroyed_without_asking_vagrant() {
        // `up` wrote the folder, then its provider turned out unusable: no machine id.
        let d = tempfile::tempdir().unwrap();
        let v = Vagrant::with_state_root(d.path());
        write(
            Provider::Virtualbox,
            &VagrantConfig::default(),
            &v.dir("lab"),
        )
        .unwrap();
        std::fs::write(v.dir("lab").join("machine.json"), "{}").unwrap();
        std::fs::create_dir_all(v.dir("lab").join(".vagrant/machines/default/virtualbox")).unwrap();
        v.destroy("lab").unwrap();
        assert!(!v.dir("lab").exists());
        let err = v.destroy("lab").unwrap_err();
        assert!(
            format!("{err:#}").contains("no Vagrant machine named lab"),
            "{err:#}"
        );
    }

    #[test]
    fn auto_picks_the_provider_the_host_can_run() {
        assert_eq!(
            pick_provider("linux", "x86_64", true, true, false).unwrap(),
            Provider::Virtualbox
        );
        assert_eq!(
            pick_provider("linux", "x86_64", false, true, false).unwrap(),
            Provider::Libvirt
        );
        assert_eq!(
            pick_provider("macos", "x86_64", true, false, false).unwrap(),
            Provider::Virtualbox
        );
        assert_eq!(
            pick_provider("macos", "aarch64", true, false, true).unwrap(),
            Provider::Qemu
        );
        let err = pick_provider("macos", "aarch64", true, false, false).unwrap_err();
        assert!(format!("{err}").contains("vagrant-qemu"), "{err}");
        let err = pick_provider("linux", "x86_64", false, false, false).unwrap_err();
        assert!(format!("{err}").contains("--provider qemu"), "{err}");
    }

    #[test]
    fn boxes_are_found_in_vagrants_machine_readable_list() {
        // As `vagrant box list --machine-readable` prints it (vagrant 2.3.4).
        let t = "1764230000,,ui,info,golab/debian-12-golab (libvirt%!(VAGRANT_COMMA) 0)\n1764230000,,box-name,golab/debian-12-golab\n1764230000,,box-provider,libvirt\n1764230000,,box-version,0\n";
        assert!(box_listed(t, "golab/debian-12-golab"));
        assert!(!box_listed(t, "golab/debian-12"));
        assert!(!box_listed(
            "1764230000,,ui,info,There are no installed boxes!\n",
            "golab/debian-12-golab"
        ));
        // `vagrant plugin list --machine-readable`, recorded the same way.
        let t = "1795767903,,ui,info,vagrant-libvirt (0.11.2%!(VAGRANT_COMMA) system)\n1795767903,,plugin-name,vagrant-libvirt\n1795767903,vagrant-libvirt,plugin-version,0.11.2%!(VAGRANT_COMMA) system\n";
        assert!(machine_readable_has(t, "plugin-name", "vagrant-libvirt"));
        assert!(!machine_readable_has(t, "plugin-name", "vagrant-qemu"));
    }

    #[test]
    fn ruby_literals_escape_quotes_backslashes_and_interpolation() {
        assert_eq!(ruby_string(r#"a"b\c#{x}"#), r#""a\"b\\c\#{x}""#);
        assert_eq!(ruby_string("tab\there\u{7}é"), r#""tab\there\u{7}\u{e9}""#);
    }

    #[test]
    fn providers_read_and_print_as_vagrant_spells_them() {
        for p in Provider::ALL {
            assert_eq!(p.to_string().parse::<Provider>().unwrap(), p);
        }
        assert!("vmware".parse::<Provider>().is_err());
    }

    #[test]
    fn qemu_memory_is_a_size_string() {
        assert_eq!(qemu_memory(3072), "3G");
        assert_eq!(qemu_memory(1536), "1536M");
    }

    #[test]
    fn the_chosen_provider_comes_first() {
        let text = render(Provider::Qemu, &VagrantConfig::default()).unwrap();
        let pos = |p: &str| text.find(&format!("config.vm.provider \"{p}\"")).unwrap();
        assert!(pos("qemu") < pos("virtualbox") && pos("virtualbox") < pos("libvirt"));
    }
}
