//! The NoCloud seed's content: user-data and meta-data from `cloudinit/` (with the
//! provisioner and the apt mirror), and where the seed sits in the folder.

use super::*;
use anyhow::Context;
use std::net::ToSocketAddrs;

pub(super) const USER_DATA: &str = include_str!("../cloudinit/user-data.yaml.j2");
pub(super) const META_DATA: &str = include_str!("../cloudinit/meta-data.yaml.j2");
/// The lab VM's provisioner, the same one the Vagrantfile runs.
pub(super) const PROVISIONER: &str = include_str!("../../../provision/lab-vm.sh");

/// The NoCloud seed in a machine's folder (`seed::write`: FAT, label `cidata`).
pub(super) const SEED: &str = "seed.img";

/// The seed QEMU attaches: `seed.img`, or the `seed.iso` of a machine made by an older
/// golab (with genisoimage), so that it still boots.
pub(super) fn seed_path(dir: &Path) -> PathBuf {
    let img = dir.join(SEED);
    let iso = dir.join("seed.iso");
    if !img.exists() && iso.exists() {
        iso
    } else {
        img
    }
}

/// Debian's mirror as this host's apt uses it, read at run time; the guest reaches it
/// by the address this host resolves (no name server in the guest).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Mirror {
    pub(super) uri: String,
    pub(super) host: String,
    pub(super) ip: String,
}

impl Mirror {
    /// The mirror `--apt-mirror` (else `GOLAB_DEBIAN_MIRROR`) asks for, if any: `host`
    /// reads this host's apt sources, anything else is the mirror's URI.
    pub(super) fn asked(spec: Option<&str>) -> Result<Option<Mirror>> {
        let env = std::env::var("GOLAB_DEBIAN_MIRROR")
            .ok()
            .filter(|s| !s.is_empty());
        match spec.map(str::to_string).or(env) {
            None => Ok(None),
            Some(s) => Mirror::resolve(&s).map(Some),
        }
    }

    pub(super) fn resolve(spec: &str) -> Result<Mirror> {
        let uri = match spec {
            u if u != "host" => u.to_string(),
            _ => {
                let deb822 = std::fs::read_to_string("/etc/apt/sources.list.d/debian.sources")
                    .unwrap_or_default();
                let list = std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
                mirror_uri(&deb822, &list).context("--apt-mirror host: cannot find Debian's mirror in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list (give its URI instead)")?
            }
        };
        let (host, port) = uri_host_port(&uri)
            .with_context(|| format!("cannot read a host in the mirror URI {uri}"))?;
        let ip = if host.parse::<std::net::IpAddr>().is_ok() {
            String::new()
        } else {
            let addrs: Vec<_> = (host.as_str(), port)
                .to_socket_addrs()
                .with_context(|| format!("cannot resolve the mirror's host {host}"))?
                .collect();
            addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or(addrs.first())
                .map(|a| a.ip().to_string())
                .with_context(|| format!("{host} has no address"))?
        };
        Ok(Mirror { uri, host, ip })
    }
}

/// The first mirror URI of a deb822 `.sources` text, else of a one-line `sources.list`.
pub(super) fn mirror_uri(deb822: &str, list: &str) -> Option<String> {
    let from822 = deb822
        .lines()
        .find_map(|l| l.strip_prefix("URIs:"))
        .and_then(|v| v.split_whitespace().next())
        .map(str::to_string);
    from822.or_else(|| {
        list.lines()
            .map(str::trim)
            .filter(|l| l.starts_with("deb "))
            .find_map(|l| {
                l.split_whitespace()
                    .find(|w| w.contains("://"))
                    .map(str::to_string)
            })
    })
}

pub(super) fn uri_host_port(uri: &str) -> Option<(String, u16)> {
    let (scheme, rest) = uri.split_once("://")?;
    let authority = rest.split('/').next()?;
    let authority = authority.rsplit_once('@').map(|x| x.1).unwrap_or(authority);
    let default = if scheme == "https" { 443 } else { 80 };
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(']') || h.ends_with(']') => {
            Some((h.trim_matches(['[', ']']).to_string(), p.parse().ok()?))
        }
        _ => Some((authority.trim_matches(['[', ']']).to_string(), default)),
    }
    .filter(|(h, _)| !h.is_empty())
}

pub(super) struct Seed {
    pub(super) user_data: String,
    pub(super) meta_data: String,
}

pub(super) fn render_seed(
    name: &str,
    instance_id: &str,
    public_key: &str,
    mirror: Option<&Mirror>,
    opts: &UpOptions,
) -> Result<Seed> {
    let mut env = format!(
        "GOLAB_GO_VERSION={}\nGOLAB_GO_SHA256={}\n",
        super::super::shell_quote(&opts.go_version),
        super::super::shell_quote(&opts.go_sha256)
    );
    for (k, v) in opts.dlv_source.provisioner_vars() {
        env.push_str(&format!("{k}={}\n", super::super::shell_quote(&v)));
    }
    let mut jinja = minijinja::Environment::new();
    jinja.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    // A JSON string is a double-quoted YAML scalar: whatever a value holds (newlines,
    // quotes, a whole script), it stays one value.
    jinja.add_filter(
        "tojson",
        |v: minijinja::Value| -> Result<minijinja::Value, minijinja::Error> {
            serde_json::to_string(&v)
                .map(minijinja::Value::from_safe_string)
                .map_err(|e| {
                    minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string())
                })
        },
    );
    jinja.add_template("user-data", USER_DATA)?;
    jinja.add_template("meta-data", META_DATA)?;
    let ctx = minijinja::context! {
        name => name,
        hostname => format!("golab-{name}"),
        instance_id => instance_id,
        ssh_public_key => public_key,
        mirror => mirror.is_some(),
        mirror_uri => mirror.map(|m| m.uri.as_str()).unwrap_or(""),
        mirror_host => mirror.map(|m| m.host.as_str()).unwrap_or(""),
        mirror_ip => mirror.map(|m| m.ip.as_str()).unwrap_or(""),
        provision_env => env,
        provision => opts.baked.is_none(),
        provisioner => PROVISIONER,
    };
    let user_data = jinja
        .get_template("user-data")?
        .render(&ctx)
        .context("rendering cloud-init user-data")?;
    let meta_data = jinja
        .get_template("meta-data")?
        .render(&ctx)
        .context("rendering cloud-init meta-data")?;
    Ok(Seed {
        user_data,
        meta_data,
    })
}
