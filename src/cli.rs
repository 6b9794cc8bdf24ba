//! The command line: clap definitions and dispatch only.

use clap::{Args, Parser, Subcommand, ValueEnum};
use golab::grade::commands;
use golab::machine::lifecycle;
use golab::toolchain::Choice;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "golab",
    version,
    about = "Go runtime internals labs: reproducible, scripted, gradable",
    after_help = golab::exit::Exit::help()
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Check that go, dlv, gdb, readelf and ptrace are ready; print fixes for what is not.
    Doctor(DoctorArgs),
    /// List the bundled labs.
    Labs {
        /// Print JSON (schema golab.labs/1) instead of the list.
        #[arg(long)]
        json: bool,
    },
    /// Build a lab's program, run the scripted readelf, gdb and dlv sessions, and check
    /// what they saw against the reference.
    Run(RunArgs),
    /// Print the reference's expected chain for a lab and a Go version.
    Reference(ReferenceArgs),
    /// Check a lab file against the Go in use: breakpoints that resolve to nothing in the
    /// built binary's symbol table, checks that read at stops no breakpoint makes,
    /// unknown fields; each with the file and line.
    Lint(LintArgs),
    /// Step through the scheduler model for a run-order scenario: runnext, the local
    /// run queue, the global queue and schedtick after every step.
    Explain(ExplainArgs),
    /// Give each student of a roster their own variant of a lab's program.
    Assign(AssignArgs),
    /// Grade a folder of submissions: a gradebook (CSV), JUnit XML, Gradescope results.
    Grade(GradeArgs),
    /// Check one submission the way the grader will (for a student, before handing in).
    Check(CheckArgs),
    /// Gradescope: write the autograder zip for a lab.
    Gradescope(GradescopeArgs),
    /// The lab notes' dlv session, performed for real on the build and printed as dlv
    /// prints it: step by step (Enter) on a terminal, all at once otherwise.
    Tour(TourArgs),
    /// Hand grading: export the free-text answers, import the scores into the gradebook.
    Hand(HandArgs),
    /// Write the lab VM's Vagrantfile (and its provisioner) for a Vagrant provider.
    Render(RenderArgs),
    /// Bring the lab VM up: create, provision (Go, dlv, gdb, binutils), or resume it.
    Up(UpArgs),
    /// Baked lab VM images, for the instructor: `golab image build`.
    #[command(subcommand)]
    Image(ImageCmd),
    /// Whether the lab VM exists, runs, and on which ports (exit 3 when it does not run).
    Status {
        #[command(flatten)]
        vm: VmArgs,
        /// Print JSON (schema golab.status/1) instead of the line.
        #[arg(long)]
        json: bool,
    },
    /// A shell (or COMMAND) in the lab VM (exit 3 when it does not run, else COMMAND's).
    Ssh {
        #[command(flatten)]
        vm: VmArgs,
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Power the lab VM off (its disk stays; `up` boots it again).
    Down(VmArgs),
    /// Power the lab VM off and delete it.
    Destroy(VmArgs),
    /// Print a shell completion script: `golab completions bash > /etc/bash_completion.d/golab`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print golab's man page (roff), or write one page per command into DIR.
    Man {
        /// Write golab.1 and golab-COMMAND.1 into DIR (e.g. /usr/local/share/man/man1).
        #[arg(long, short, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

#[derive(Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub tools: ToolArgs,
    /// Print JSON (schema golab.doctor/1) instead of the findings.
    #[arg(long)]
    pub json: bool,
}

/// The lab VM kinds (the VM commands have no host to act on).
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VmKind {
    /// A lab VM under QEMU (`golab up --provider qemu`).
    Qemu,
    /// A lab VM driven through Vagrant (`golab up --provider vagrant`).
    Vagrant,
}

/// Which lab VM.
#[derive(Args, Clone)]
pub struct VmArgs {
    #[arg(long, value_enum, default_value = "qemu")]
    pub provider: VmKind,
    /// The lab VM's name (several can run at once).
    #[arg(long, default_value = "lab")]
    pub name: String,
}

impl VmArgs {
    pub fn machine(&self) -> MachineArgs {
        MachineArgs {
            provider: match self.provider {
                VmKind::Qemu => VmProvider::Qemu,
                VmKind::Vagrant => VmProvider::Vagrant,
            },
            name: self.name.clone(),
        }
    }
}

/// The Vagrant providers a Vagrantfile is rendered for.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RenderProvider {
    Virtualbox,
    Libvirt,
    /// vagrant-qemu, for Apple Silicon hosts.
    Qemu,
}

impl RenderProvider {
    pub fn provider(self) -> golab::machine::vagrant::Provider {
        use golab::machine::vagrant::Provider;
        match self {
            RenderProvider::Virtualbox => Provider::Virtualbox,
            RenderProvider::Libvirt => Provider::Libvirt,
            RenderProvider::Qemu => Provider::Qemu,
        }
    }
}

#[derive(Args)]
pub struct RenderArgs {
    #[arg(long, value_enum)]
    pub provider: RenderProvider,
    /// The folder to write Vagrantfile and provision/lab-vm.sh into.
    #[arg(long, short, default_value = ".")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 2)]
    pub cpus: u32,
    /// Memory in MiB.
    #[arg(long, default_value_t = 2048)]
    pub memory: u32,
    /// Host port on 127.0.0.1 for the guest's ssh (default: a free one).
    #[arg(long)]
    pub ssh_port: Option<u16>,
    /// Host port on 127.0.0.1 for dlv's API in the guest (default: a free one).
    #[arg(long)]
    pub dlv_port: Option<u16>,
    #[command(flatten)]
    pub pins: PinArgs,
    #[command(flatten)]
    pub boot: BootArgs,
    #[command(flatten)]
    pub vagrant: VagrantArgs,
}

/// What the lab VM's provisioning installs.
#[derive(Args, Clone)]
pub struct PinArgs {
    /// The Go to install in the VM (default: the course's pin, from toolchains.txt).
    #[arg(long = "go", default_value = golab::pins::course().go.version)]
    pub go: String,
    /// The Go tarball's SHA-256 (required for a version golab does not pin).
    #[arg(long)]
    pub go_sha256: Option<String>,
    /// dlv: a version to `go install` (default: the course's pin), or `apt`.
    #[arg(long, default_value = pinned_dlv())]
    pub dlv: String,
    /// Build that dlv version in the guest from this source tarball (delve's tree with its
    /// vendored modules, e.g. a `git archive` of the tag plus `go mod vendor`) with
    /// -mod=vendor and no module proxy, instead of `go install`.
    #[arg(long, value_name = "URL", requires = "dlv_src_sha256")]
    pub dlv_src_url: Option<String>,
    /// The dlv source tarball's SHA-256.
    #[arg(long, value_name = "SHA256", requires = "dlv_src_url")]
    pub dlv_src_sha256: Option<String>,
}

impl PinArgs {
    pub fn pins(&self) -> lifecycle::Pins {
        lifecycle::Pins {
            go: self.go.clone(),
            go_sha256: self.go_sha256.clone(),
            dlv: self.dlv.clone(),
            dlv_src: self.dlv_src_url.clone().zip(self.dlv_src_sha256.clone()),
        }
    }
}

/// Direct kernel boot, for an image or box without a boot loader.
#[derive(Args, Clone)]
pub struct BootArgs {
    /// The kernel (qemu: default IMAGE.vmlinuz when present; vagrant: libvirt only, and
    /// libvirt's QEMU user must be able to read it and enter every folder above it).
    #[arg(long)]
    pub kernel: Option<PathBuf>,
    /// Its initrd (qemu: default IMAGE.initrd when present).
    #[arg(long)]
    pub initrd: Option<PathBuf>,
}

/// The Vagrant renderings' own settings.
#[derive(Args, Clone)]
pub struct VagrantArgs {
    /// The Vagrant box: a name, a .box file that `golab up` adds to Vagrant first, or a
    /// baked image's NAME.manifest.json (its box, kernel, initrd and pins; see `golab image
    /// build`).
    #[arg(long = "box", default_value = "generic/ubuntu2204")]
    pub box_name: String,
    /// Where the provisioner downloads go*.linux-amd64.tar.gz from (default:
    /// GOLAB_MIRROR, else Go's download page).
    #[arg(long)]
    pub go_base_url: Option<String>,
    /// libvirt: kvm, or qemu for software emulation.
    #[arg(long, default_value = "kvm")]
    pub libvirt_driver: String,
}

impl BootArgs {
    pub fn boot(&self) -> lifecycle::Boot {
        lifecycle::Boot {
            kernel: self.kernel.clone(),
            initrd: self.initrd.clone(),
        }
    }
}

impl VagrantArgs {
    pub fn settings(&self) -> lifecycle::VagrantSettings {
        lifecycle::VagrantSettings {
            box_name: self.box_name.clone(),
            go_base_url: self.go_base_url.clone(),
            libvirt_driver: self.libvirt_driver.clone(),
            labs_dir: golab::lab::labs_dir,
        }
    }
}

#[derive(Args)]
pub struct AssignArgs {
    #[arg(long)]
    pub lab: String,
    /// A CSV with a `student` (or `id`) column.
    #[arg(long)]
    pub roster: PathBuf,
    /// The course's secret: the same seed gives every student the same variant again.
    #[arg(long)]
    pub seed: String,
    /// Where the handouts go: one folder per student.
    #[arg(long, short, default_value = "handouts")]
    pub out: PathBuf,
    /// The Go the course builds with: the skeleton answers.yaml says how long the
    /// reference chain is for it.
    #[arg(long = "go", default_value = golab::pins::course().go.version)]
    pub go: String,
}

#[derive(Args, Clone)]
pub struct GradingArgs {
    /// The lab (`golab check` in a handout folder reads it from .golab-handout.yaml).
    #[arg(long)]
    pub lab: Option<String>,
    /// The seed given to `golab assign` (without it, everyone has the lab's own program).
    #[arg(long, env = "GOLAB_SEED")]
    pub seed: Option<String>,
    /// Toolchains folder (scripts/fetch-toolchains.sh): go1.X GOROOTs and dlv-VERSION/dlv,
    /// to build with the Go a student used and debug it with the dlv that serves that Go
    /// (toolchains.txt).
    #[arg(long, env = "GOLAB_TOOLCHAINS")]
    pub toolchains: Option<PathBuf>,
    #[command(flatten)]
    pub tools: ToolArgs,
    /// Wall-clock limit for one submission's lab run, in seconds.
    #[arg(long, default_value_t = 180)]
    pub timeout: u64,
    /// Run students' programs without the sandbox (only for trusted code).
    #[arg(long)]
    pub no_sandbox: bool,
    /// When the sandbox cannot start here (user namespaces blocked, as in Gradescope's
    /// container), grade with the isolation that remains (an unprivileged uid, rlimits,
    /// a cgroup if writable) and say so in the results, instead of refusing.
    #[arg(long)]
    pub fallback_isolation: bool,
    /// Wall-clock and CPU seconds for the student's program run on its own (traced)
    /// before the lab runs on it.
    #[arg(long, default_value_t = 20)]
    pub program_seconds: u64,
}

#[derive(Args)]
pub struct GradeArgs {
    /// The folder of submissions: STUDENT/ folders, STUDENT.zip or STUDENT.tar.gz.
    pub dir: PathBuf,
    #[command(flatten)]
    pub grading: GradingArgs,
    /// Submissions graded at once.
    #[arg(long, short, default_value_t = 2)]
    pub jobs: usize,
    /// Regrade submissions that already have a result (a changed submission is
    /// regraded anyway).
    #[arg(long)]
    pub force: bool,
    /// Grade (again) only this student; the others' results stay and the gradebook
    /// holds everyone. Repeatable.
    #[arg(long, value_name = "STUDENT")]
    pub only: Vec<String>,
    #[command(flatten)]
    pub late: LateArgs,
    /// Where results, work folders and reports go.
    #[arg(long, short, default_value = "golab-grades")]
    pub out: PathBuf,
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Args)]
pub struct CheckArgs {
    /// The submission: a folder, or a .zip / .tar.gz.
    pub submission: PathBuf,
    #[command(flatten)]
    pub grading: GradingArgs,
    /// The student id (default: the submission's name).
    #[arg(long)]
    pub student: Option<String>,
    /// Also write Gradescope's results.json here.
    #[arg(long, value_name = "FILE")]
    pub gradescope: Option<PathBuf>,
    /// Gradescope's submission_metadata.json: the student id (the first user's `sid`,
    /// else their email's part before the @) and the submission time (`created_at`).
    #[arg(long, value_name = "FILE")]
    pub gradescope_metadata: Option<PathBuf>,
}

/// The late policy on the command line (it replaces lab.yaml's `late:`).
#[derive(Args, Clone)]
pub struct LateArgs {
    /// The deadline, e.g. 2026-12-01T23:59:00Z (or with an offset: -07:00).
    #[arg(long)]
    pub deadline: Option<String>,
    /// Percent of the score lost per started day late.
    #[arg(long, default_value_t = 0.0)]
    pub late_penalty: f64,
    /// Later than this many days: no points.
    #[arg(long)]
    pub late_max_days: Option<f64>,
    /// A CSV of per-student deadlines: student,deadline.
    #[arg(long, value_name = "FILE")]
    pub extensions: Option<PathBuf>,
}

#[derive(Args)]
pub struct HandArgs {
    #[command(subcommand)]
    pub command: HandCmd,
}

#[derive(Subcommand)]
pub enum HandCmd {
    /// Write the free-text answers of a graded batch as CSV to fill in (points, comment).
    Export {
        /// The grading folder (golab grade -o).
        out: PathBuf,
        /// one (a single file), question (a file per question), student (a file per student).
        #[arg(long, default_value = "one")]
        split: String,
        /// Where the files go (default: OUT/hand).
        #[arg(long, short = 'd')]
        dir: Option<PathBuf>,
    },
    /// Read filled-in export files into the gradebook (OUT/hand-scores.json) and
    /// rewrite the reports.
    Import {
        out: PathBuf,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Args)]
pub struct GradescopeArgs {
    #[command(subcommand)]
    pub command: GradescopeCmd,
}

#[derive(Subcommand)]
pub enum GradescopeCmd {
    /// Whether the sandbox can start here, and what isolation remains if not (setup.sh
    /// prints it in the image's build log).
    Probe,
    /// Write the autograder zip (setup.sh, run_autograder, golab's sources) for a lab.
    Package {
        #[arg(long)]
        lab: String,
        /// The course's seed (the one given to `golab assign`): per-student variants.
        #[arg(long)]
        seed: Option<String>,
        /// A golab binary to ship (setup.sh uses it when it runs there, else builds
        /// golab from the sources in the zip). Default: this golab.
        #[arg(long, value_name = "FILE")]
        binary: Option<PathBuf>,
        /// Ship no binary: setup.sh always builds golab from the sources.
        #[arg(long)]
        no_binary: bool,
        #[arg(long, short, default_value = "autograder.zip")]
        out: PathBuf,
    },
}

#[derive(Args)]
pub struct ExplainArgs {
    /// The lab (runq-order).
    pub lab: String,
    /// How many goroutines main starts.
    #[arg(long)]
    pub n: u32,
    /// How main waits: wg or chan.
    #[arg(long, default_value = "wg")]
    pub block: String,
    /// Who calls runtime.Gosched() first: none, all, every:K.
    #[arg(long, default_value = "none")]
    pub gosched: String,
    /// The Go version whose scheduler to model.
    #[arg(long = "go", default_value = "1.19")]
    pub go: String,
    /// The state at main.main (defaults: what go1.19.8 showed in most runs: schedtick 4,
    /// runtime.runfinq's g in runnext, both queues empty).
    #[arg(long, default_value_t = 4)]
    pub schedtick: u32,
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub runnext: bool,
    #[arg(long, default_value_t = 0)]
    pub local: u32,
    #[arg(long, default_value_t = 0)]
    pub global: u32,
    /// Print JSON (schema golab.explain/2: the order, the events and every step)
    /// instead of the text.
    #[arg(long)]
    pub json: bool,
    /// Print only the notable moments (runqputslow, schedtick % 61, globrunqget,
    /// inheritTime, preemption), not every step.
    #[arg(long)]
    pub summary: bool,
}

impl ExplainArgs {
    pub fn request(&self) -> golab::lookup::ExplainRequest {
        golab::lookup::ExplainRequest {
            lab: self.lab.clone(),
            go: self.go.clone(),
            n: self.n,
            block: self.block.clone(),
            gosched: self.gosched.clone(),
            schedtick: self.schedtick,
            runnext: self.runnext,
            local: self.local,
            global: self.global,
        }
    }
}

#[derive(Args, Clone)]
pub struct ToolArgs {
    /// A Go from golab's toolchains folder (`scripts/fetch-toolchains.sh`; `$GOLAB_TOOLCHAINS`,
    /// else ~/.cache/golab/toolchains): `pinned` for the course's Go 1.17.1, or a release
    /// such as `1.22`; debugged with the dlv that serves it (toolchains.txt) unless --dlv.
    #[arg(
        long,
        env = "GOLAB_GO",
        conflicts_with = "goroot",
        value_name = "pinned|1.X"
    )]
    pub go: Option<String>,
    /// GOROOT of the Go to use (else `go` on PATH).
    #[arg(long, env = "GOLAB_GOROOT")]
    pub goroot: Option<PathBuf>,
    /// The dlv binary to use (else `dlv` on PATH).
    #[arg(long, env = "GOLAB_DLV")]
    pub dlv: Option<PathBuf>,
    /// The gdb binary to use (else `gdb` on PATH).
    #[arg(long, env = "GOLAB_GDB")]
    pub gdb: Option<PathBuf>,
}

impl ToolArgs {
    /// The tools asked for; `--go` becomes that Go's GOROOT and its serving dlv.
    pub fn choice(&self) -> anyhow::Result<Choice> {
        Choice::asked(
            self.goroot.clone(),
            self.dlv.clone(),
            self.gdb.clone(),
            self.go.as_deref(),
        )
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VmProvider {
    /// The machine golab runs on.
    Host,
    /// A lab VM under QEMU (`golab up --provider qemu`), reached over ssh.
    Qemu,
    /// A lab VM driven through Vagrant (`golab up --provider vagrant`), reached over ssh.
    Vagrant,
}

/// Which lab machine.
#[derive(Args, Clone)]
pub struct MachineArgs {
    #[arg(long, value_enum, default_value = "host")]
    pub provider: VmProvider,
    /// The lab VM's name (several can run at once).
    #[arg(long, default_value = "lab")]
    pub name: String,
}

#[derive(Subcommand)]
pub enum ImageCmd {
    /// Provision a lab VM once with the pins (the qemu provider), power it off and write
    /// a standalone qcow2, its kernel and initrd, NAME.manifest.json (pins, tools as found
    /// inside, the SHA-256 of every file) and NAME.manifest.json.sha256. `golab up --image
    /// NAME.manifest.json` (a file or a URL) boots it without provisioning.
    Build(ImageBuildArgs),
}

#[derive(Args)]
pub struct ImageBuildArgs {
    /// Where the image set goes (default: $GOLAB_STATE/images, where `golab up` looks
    /// for a baked image with its pins before provisioning from nothing).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// The image set's file name stem (default: golab-goVERSION-dlvVERSION).
    #[arg(long = "image-name")]
    pub image_name: Option<String>,
    /// Leave out the Vagrant boxes: NAME.libvirt.box (vagrant-libvirt, booting the image's
    /// kernel), NAME.virtualbox.box (a BIOS disk with GRUB, VMDK and OVF) and
    /// NAME.qemu.box (vagrant-qemu: the same disk, qcow2), made with qemu-img, e2fsprogs'
    /// debugfs and grub-mkimage (grub-pc-bin).
    #[arg(long)]
    pub no_box: bool,
    /// `golab up`'s options for the machine that is provisioned and baked.
    #[command(flatten)]
    pub up: UpArgs,
}

#[derive(Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub machine: MachineArgs,
    /// The base image (qcow2 or raw), or a baked image's NAME.manifest.json (a file or a
    /// URL; see `golab image build`). Default: a baked image with these pins in
    /// $GOLAB_STATE/images, else Ubuntu 22.04's amd64 cloud image, fetched into the
    /// download cache and checked by SHA-256.
    #[arg(long)]
    pub image: Option<String>,
    /// The manifest's SHA-256 (NAME.manifest.json.sha256), needed for a URL.
    #[arg(long)]
    pub image_sha256: Option<String>,
    #[command(flatten)]
    pub boot: BootArgs,
    #[arg(long, default_value_t = 2)]
    pub cpus: u32,
    /// Memory in MiB.
    #[arg(long, default_value_t = 2048)]
    pub memory: u32,
    #[command(flatten)]
    pub pins: PinArgs,
    /// qemu: a local go*.linux-amd64.tar.gz instead of downloading the pinned one.
    #[arg(long)]
    pub go_tarball: Option<PathBuf>,
    /// auto (KVM on Linux, HVF on Intel macOS, if a probe boot works; else software
    /// emulation), kvm, hvf, tcg.
    #[arg(long, default_value = "auto")]
    pub accel: String,
    /// qemu: point the guest's apt at a Debian mirror: `host` (the one this host's apt
    /// uses) or its URI. Default: the guest's apt stays as its image has it.
    #[arg(long, value_name = "host|URI", env = "GOLAB_DEBIAN_MIRROR")]
    pub apt_mirror: Option<String>,
    /// With --provider vagrant: Vagrant's provider (virtualbox, libvirt, qemu), or auto:
    /// vagrant-qemu on Apple Silicon, VirtualBox where VBoxManage is installed, else
    /// libvirt where the vagrant-libvirt plugin is.
    #[arg(long, default_value = "auto")]
    pub vagrant_provider: String,
    #[command(flatten)]
    pub vagrant: VagrantArgs,
    /// qemu: provision this machine itself instead of keeping the provisioned state as a
    /// local base. By default a first `up` that has to provision bakes the result into
    /// $GOLAB_STATE/images (as `golab image build` does) and boots the machine from it, so
    /// a later `up` with the same pins and base image never provisions again.
    #[arg(long)]
    pub no_keep_base: bool,
}

impl VmProvider {
    pub fn provider(self) -> lifecycle::Provider {
        match self {
            VmProvider::Host => lifecycle::Provider::Host,
            VmProvider::Qemu => lifecycle::Provider::Qemu,
            VmProvider::Vagrant => lifecycle::Provider::Vagrant,
        }
    }
}

impl MachineArgs {
    pub fn which(&self) -> lifecycle::Which {
        lifecycle::Which {
            provider: self.provider.provider(),
            name: self.name.clone(),
        }
    }
}

impl ImageBuildArgs {
    pub fn request(&self) -> lifecycle::ImageBuildRequest {
        lifecycle::ImageBuildRequest {
            out: self.out.clone(),
            image_name: self.image_name.clone(),
            no_box: self.no_box,
            up: self.up.request(),
        }
    }
}

impl UpArgs {
    pub fn request(&self) -> lifecycle::UpRequest {
        lifecycle::UpRequest {
            machine: self.machine.which(),
            image: self.image.clone(),
            image_sha256: self.image_sha256.clone(),
            boot: self.boot.boot(),
            cpus: self.cpus,
            memory: self.memory,
            pins: self.pins.pins(),
            go_tarball: self.go_tarball.clone(),
            accel: self.accel.clone(),
            apt_mirror: self.apt_mirror.clone(),
            vagrant_provider: self.vagrant_provider.clone(),
            vagrant: self.vagrant.settings(),
            no_keep_base: self.no_keep_base,
        }
    }
}

impl GradingArgs {
    pub fn setup(&self) -> golab::grade::setup::Setup {
        golab::grade::setup::Setup {
            lab: self.lab.clone(),
            seed: self.seed.clone(),
            toolchains: self.toolchains.clone(),
            dlv: self.tools.dlv.clone(),
            timeout: std::time::Duration::from_secs(self.timeout),
            program_time: std::time::Duration::from_secs(self.program_seconds),
            no_sandbox: self.no_sandbox,
            fallback_isolation: self.fallback_isolation,
        }
    }
}

impl AssignArgs {
    pub fn request(&self) -> commands::Assign {
        commands::Assign {
            lab: self.lab.clone(),
            roster: self.roster.clone(),
            seed: self.seed.clone(),
            out: self.out.clone(),
            go: self.go.clone(),
        }
    }
}

impl GradeArgs {
    pub fn request(&self) -> commands::Grade {
        commands::Grade {
            dir: self.dir.clone(),
            setup: self.grading.setup(),
            jobs: self.jobs,
            force: self.force,
            only: self.only.clone(),
            late: commands::Late {
                deadline: self.late.deadline.clone(),
                penalty_per_day: self.late.late_penalty,
                max_days: self.late.late_max_days,
                extensions: self.late.extensions.clone(),
            },
            out: self.out.clone(),
            quiet: self.quiet,
        }
    }
}

impl CheckArgs {
    pub fn request(&self) -> commands::Check {
        commands::Check {
            submission: self.submission.clone(),
            setup: self.grading.setup(),
            student: self.student.clone(),
            gradescope_metadata: self.gradescope_metadata.clone(),
        }
    }
}

impl HandArgs {
    pub fn request(&self) -> commands::Hand {
        match &self.command {
            HandCmd::Export { out, split, dir } => commands::Hand::Export {
                out: out.clone(),
                split: split.clone(),
                dir: dir.clone(),
            },
            HandCmd::Import { out, files } => commands::Hand::Import {
                out: out.clone(),
                files: files.clone(),
            },
        }
    }
}

#[derive(Args)]
pub struct RunArgs {
    /// A bundled lab's name (see `golab labs`) or the path of a lab folder.
    pub lab: String,
    #[command(flatten)]
    pub machine: MachineArgs,
    #[command(flatten)]
    pub tools: ToolArgs,
    /// Print the Observation and the Verdict as JSON (schema golab.run/1) instead of the
    /// report.
    #[arg(long)]
    pub json: bool,
    /// Write that JSON to FILE, and print the report as usual.
    #[arg(long, value_name = "FILE")]
    pub json_file: Option<PathBuf>,
    /// Keep the sessions in DIR: the dlv JSON-RPC exchange, a dlv-style log, the gdb/MI log, readelf's output.
    #[arg(long, value_name = "DIR")]
    pub transcript: Option<PathBuf>,
    /// Build in DIR and keep it (default: a temporary folder, removed afterwards).
    #[arg(long, value_name = "DIR")]
    pub work: Option<PathBuf>,
    /// Show the GOOD lines of passing checks too.
    #[arg(long, short)]
    pub verbose: bool,
    /// No progress lines.
    #[arg(long, short)]
    pub quiet: bool,
    /// Run only this scenario (labs with scenarios, e.g. runq-order).
    #[arg(long)]
    pub scenario: Option<String>,
    /// Run each scenario this many times (to measure how often the model is right).
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// Also write a self-contained HTML report (inline CSS and SVG, nothing fetched).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Use this binary, already built from the lab's program with the same Go and
    /// gcflags, instead of building (the grader builds identical programs once).
    #[arg(long, value_name = "FILE")]
    pub binary: Option<PathBuf>,
}

#[derive(Args)]
pub struct LintArgs {
    /// A bundled lab's name or the path of a lab folder.
    pub lab: String,
    #[command(flatten)]
    pub tools: ToolArgs,
}

#[derive(Args)]
pub struct ReferenceArgs {
    /// The lab whose chain to print.
    pub lab: String,
    /// The Go version, e.g. 1.17 or go1.17.1.
    #[arg(long = "go", value_name = "VERSION")]
    pub go: String,
    /// Print JSON (schema golab.reference/2) instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct TourArgs {
    /// The tour: startup-trace.
    pub lab: String,
    #[command(flatten)]
    pub tools: ToolArgs,
    /// Print every step at once (the default when stdin is not a terminal).
    #[arg(long)]
    pub all: bool,
    /// Also write the tour as a self-contained HTML page.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// The program to build (a folder with main.go and go.mod; default: the lab's own).
    #[arg(long, value_name = "DIR")]
    pub program: Option<PathBuf>,
    /// Print the tour's data (sections, commands, checks; schema golab.tour/1) as JSON
    /// instead of the text.
    #[arg(long)]
    pub json: bool,
    /// Also write the tour's data as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json_file: Option<PathBuf>,
}

/// The course's dlv as `go install` takes it (`v1.9.1`), for a default value.
fn pinned_dlv() -> &'static str {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| golab::pins::course().dlv_tag())
}
