//! The security policy of a sandbox: hardened defaults, loosened only on
//! purpose — in the config file for all sandboxes, per runtime, or per
//! sandbox, each layer overriding the one before.

use std::collections::BTreeMap;
use std::fmt;

use bollard::models::{HostConfig, ResourcesUlimits};
use serde::{Deserialize, Serialize};

pub const DEFAULT_USER: &str = "1000:1000";
pub const DEFAULT_MEMORY: u64 = 1 << 30;
pub const DEFAULT_CPUS: f64 = 1.0;
pub const DEFAULT_PIDS_LIMIT: i64 = 256;
pub const DEFAULT_NETWORK: &str = "none";
pub const DEFAULT_TMP_SIZE: u64 = 64 << 20;
pub const DEFAULT_NOFILE: i64 = 1024;
/// Size limit of a workspace, in bytes.
pub const DEFAULT_DISK: u64 = 1 << 30;
/// The smallest workspace limit: an ext4 file system needs room for its
/// journal and tables before any file fits.
pub const MIN_DISK: u64 = 16 << 20;
/// Size of the sandbox's `/dev/shm`, in bytes: set explicitly so an engine
/// configured with a larger default does not loosen it.
pub const SHM_SIZE: u64 = 64 << 20;

/// A byte size written as `1g`, `512m`, `64k` or a plain number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(into = "String")]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        let lower = trimmed.to_ascii_lowercase();
        let lower = lower.strip_suffix('b').unwrap_or(&lower);
        let lower = lower.strip_suffix('i').unwrap_or(lower);
        let (digits, shift) = match lower.chars().last() {
            Some('k') => (&lower[..lower.len() - 1], 10),
            Some('m') => (&lower[..lower.len() - 1], 20),
            Some('g') => (&lower[..lower.len() - 1], 30),
            Some('t') => (&lower[..lower.len() - 1], 40),
            _ => (lower, 0),
        };
        let value: f64 = digits
            .trim()
            .parse()
            .map_err(|_| format!("`{trimmed}` is not a size such as 512m or 1g"))?;
        if !value.is_finite() || value <= 0.0 {
            return Err(format!("size `{trimmed}` must be positive"));
        }
        let bytes = value * (1u64 << shift) as f64;
        if bytes > i64::MAX as f64 {
            return Err(format!("size `{trimmed}` is too large"));
        }
        Ok(Self(bytes as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let units = [(40, "t"), (30, "g"), (20, "m"), (10, "k")];
        for (shift, unit) in units {
            let size = 1u64 << shift;
            if self.0 >= size && self.0.is_multiple_of(size) {
                return write!(f, "{}{unit}", self.0 >> shift);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl From<ByteSize> for String {
    fn from(size: ByteSize) -> String {
        size.to_string()
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(0) => Err(serde::de::Error::custom("size must be positive")),
            Raw::Number(bytes) => Ok(ByteSize(bytes)),
            Raw::Text(text) => ByteSize::parse(&text).map_err(serde::de::Error::custom),
        }
    }
}

/// A workspace size limit: a [`ByteSize`], or none at all, written `0` or
/// `"none"` (in the config file, a runtime's table or `--disk`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct DiskLimit(pub Option<ByteSize>);

impl DiskLimit {
    /// Parses `5g`, `512m`, … or `0` / `none` for no limit.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "0" | "none" => Ok(Self(None)),
            _ => ByteSize::parse(text)
                .map(|size| Self(Some(size)))
                .map_err(|err| format!("{err}, or 0 for no limit")),
        }
    }

    /// The limit in bytes; `None` when there is none.
    pub fn bytes(self) -> Option<u64> {
        self.0.map(|size| size.0)
    }
}

impl fmt::Display for DiskLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(size) => size.fmt(f),
            None => f.write_str("none"),
        }
    }
}

impl From<DiskLimit> for String {
    fn from(limit: DiskLimit) -> String {
        limit.to_string()
    }
}

impl<'de> Deserialize<'de> for DiskLimit {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(0) => Ok(DiskLimit(None)),
            Raw::Number(bytes) => Ok(DiskLimit(Some(ByteSize(bytes)))),
            Raw::Text(text) => DiskLimit::parse(&text).map_err(serde::de::Error::custom),
        }
    }
}

/// A host folder mounted into a sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Volume {
    pub host: String,
    pub container: String,
    pub read_only: bool,
}

/// One layer of policy settings; unset fields leave the layer below in force.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyOverrides {
    /// `uid:gid` the sandbox's processes run as.
    pub user: Option<String>,
    pub memory: Option<ByteSize>,
    pub cpus: Option<f64>,
    pub pids_limit: Option<i64>,
    /// `none`, `bridge` or another Docker network.
    pub network: Option<String>,
    pub read_only: Option<bool>,
    pub tmp_size: Option<ByteSize>,
    pub nofile: Option<i64>,
    /// Host folder → path in the sandbox; a `:ro` suffix on the path mounts
    /// it read-only.
    pub volumes: Option<BTreeMap<String, String>>,
    /// Drop every capability (default true).
    pub drop_capabilities: Option<bool>,
    /// Forbid gaining privileges through setuid binaries (default true).
    pub no_new_privileges: Option<bool>,
    /// Run an init process that reaps orphans (default true).
    pub init: Option<bool>,
    /// Hard size limit of the workspace (default 1g; `0` for none).
    pub disk: Option<DiskLimit>,
    /// The engine's OCI runtime to start the sandbox with, e.g. `runsc` for
    /// gVisor; unset leaves the engine's default (normally `runc`).
    pub oci_runtime: Option<String>,
}

impl PolicyOverrides {
    /// Checks values a user typed, naming the offending one.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(user) = &self.user {
            parse_uid_gid(user)?;
        }
        if let Some(cpus) = self.cpus
            && !(cpus > 0.0 && cpus <= 1024.0)
        {
            return Err(format!("cpus must be above 0 and at most 1024, got {cpus}"));
        }
        if let Some(pids) = self.pids_limit
            && pids < 16
        {
            return Err(format!(
                "pids_limit must be at least 16 so a shell can run, got {pids}"
            ));
        }
        if let Some(memory) = self.memory
            && memory.0 < 16 << 20
        {
            return Err(format!("memory must be at least 16m, got {memory}"));
        }
        if let Some(DiskLimit(Some(disk))) = self.disk
            && disk.0 < MIN_DISK
        {
            return Err(format!(
                "disk must be at least {}, or 0 for no limit, got {disk}",
                ByteSize(MIN_DISK)
            ));
        }
        if let Some(nofile) = self.nofile
            && nofile < 64
        {
            return Err(format!("nofile must be at least 64, got {nofile}"));
        }
        if let Some(network) = &self.network {
            let valid = !network.is_empty()
                && network
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !valid || network == "host" {
                return Err(format!(
                    "network `{network}` is not allowed: use none, bridge or a named Docker network (host networking is never given to a sandbox)"
                ));
            }
        }
        if let Some(volumes) = &self.volumes {
            for (host, container) in volumes {
                parse_volume(host, container)?;
            }
        }
        if let Some(runtime) = &self.oci_runtime {
            let valid = !runtime.is_empty()
                && runtime.len() <= 64
                && runtime
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !valid {
                return Err(format!(
                    "oci_runtime `{}` is not a runtime name such as runc or runsc",
                    runtime.escape_debug()
                ));
            }
        }
        Ok(())
    }
}

/// The values in force for one sandbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SandboxPolicy {
    pub user: String,
    pub memory: ByteSize,
    /// Equal to `memory`, so nothing swaps beyond the limit.
    pub memory_swap: ByteSize,
    pub cpus: f64,
    pub pids_limit: i64,
    pub network: String,
    pub read_only: bool,
    pub tmp_size: ByteSize,
    pub nofile: i64,
    pub cap_drop_all: bool,
    pub no_new_privileges: bool,
    pub init: bool,
    pub volumes: Vec<Volume>,
    /// Hard size limit of the workspace. Not part of the engine's host
    /// config: a label carries it (see `Engine::create_sandbox`).
    pub disk: DiskLimit,
    /// The engine's OCI runtime; `None` is the engine's default.
    pub oci_runtime: Option<String>,
}

impl Default for SandboxPolicy {
    fn default() -> Self {
        Self {
            user: DEFAULT_USER.to_string(),
            memory: ByteSize(DEFAULT_MEMORY),
            memory_swap: ByteSize(DEFAULT_MEMORY),
            cpus: DEFAULT_CPUS,
            pids_limit: DEFAULT_PIDS_LIMIT,
            network: DEFAULT_NETWORK.to_string(),
            read_only: true,
            tmp_size: ByteSize(DEFAULT_TMP_SIZE),
            nofile: DEFAULT_NOFILE,
            cap_drop_all: true,
            no_new_privileges: true,
            init: true,
            volumes: Vec::new(),
            disk: DiskLimit(Some(ByteSize(DEFAULT_DISK))),
            oci_runtime: None,
        }
    }
}

impl SandboxPolicy {
    /// The defaults with each layer applied in order.
    pub fn resolve<'a>(
        layers: impl IntoIterator<Item = &'a PolicyOverrides>,
    ) -> Result<Self, String> {
        let mut policy = Self::default();
        for layer in layers {
            layer.validate()?;
            policy.apply(layer)?;
        }
        Ok(policy)
    }

    fn apply(&mut self, layer: &PolicyOverrides) -> Result<(), String> {
        if let Some(user) = &layer.user {
            self.user = user.clone();
        }
        if let Some(memory) = layer.memory {
            self.memory = memory;
            self.memory_swap = memory;
        }
        if let Some(cpus) = layer.cpus {
            self.cpus = cpus;
        }
        if let Some(pids) = layer.pids_limit {
            self.pids_limit = pids;
        }
        if let Some(network) = &layer.network {
            self.network = network.clone();
        }
        if let Some(read_only) = layer.read_only {
            self.read_only = read_only;
        }
        if let Some(tmp_size) = layer.tmp_size {
            self.tmp_size = tmp_size;
        }
        if let Some(nofile) = layer.nofile {
            self.nofile = nofile;
        }
        if let Some(drop) = layer.drop_capabilities {
            self.cap_drop_all = drop;
        }
        if let Some(no_new_privileges) = layer.no_new_privileges {
            self.no_new_privileges = no_new_privileges;
        }
        if let Some(init) = layer.init {
            self.init = init;
        }
        if let Some(disk) = layer.disk {
            self.disk = disk;
        }
        if let Some(runtime) = &layer.oci_runtime {
            self.oci_runtime = Some(runtime.clone());
        }
        if let Some(volumes) = &layer.volumes {
            for (host, container) in volumes {
                let volume = parse_volume(host, container)?;
                self.volumes.retain(|v| v.container != volume.container);
                self.volumes.push(volume);
            }
        }
        Ok(())
    }

    /// The uid and gid processes run as.
    pub fn uid_gid(&self) -> (u32, u32) {
        parse_uid_gid(&self.user).unwrap_or((1000, 1000))
    }

    /// The Docker host config that enforces this policy, with the workspace
    /// bind-mounted at `work_dir`.
    pub fn host_config(&self, workspace: &str, work_dir: &str) -> HostConfig {
        let mut binds = vec![format!("{workspace}:{work_dir}:rw")];
        binds.extend(self.volumes.iter().map(|v| {
            format!(
                "{}:{}:{}",
                v.host,
                v.container,
                if v.read_only { "ro" } else { "rw" }
            )
        }));
        let (uid, gid) = self.uid_gid();
        HostConfig {
            binds: Some(binds),
            network_mode: Some(self.network.clone()),
            readonly_rootfs: Some(self.read_only),
            tmpfs: Some(
                [(
                    "/tmp".to_string(),
                    format!(
                        "rw,nosuid,nodev,size={},mode=1777,uid={uid},gid={gid}",
                        self.tmp_size.0
                    ),
                )]
                .into(),
            ),
            memory: Some(self.memory.0 as i64),
            memory_swap: Some(self.memory_swap.0 as i64),
            nano_cpus: Some((self.cpus * 1e9) as i64),
            pids_limit: Some(self.pids_limit),
            cap_drop: self.cap_drop_all.then(|| vec!["ALL".to_string()]),
            security_opt: self
                .no_new_privileges
                .then(|| vec!["no-new-privileges:true".to_string()]),
            init: Some(self.init),
            shm_size: Some(SHM_SIZE as i64),
            runtime: self.oci_runtime.clone(),
            ulimits: Some(vec![ResourcesUlimits {
                name: Some("nofile".to_string()),
                soft: Some(self.nofile),
                hard: Some(self.nofile),
            }]),
            ..Default::default()
        }
    }

    /// Reads the policy back from a container's host config, so `inspect`
    /// shows what the engine enforces rather than what was asked for. The
    /// disk limit is not in the host config: it comes from the sandbox's
    /// label, `disk`.
    pub fn from_host_config(
        user: &str,
        host: &HostConfig,
        work_dir: &str,
        disk: DiskLimit,
    ) -> Self {
        let mut policy = Self {
            user: if user.is_empty() {
                "0:0 (root)".to_string()
            } else {
                user.to_string()
            },
            memory: ByteSize(host.memory.unwrap_or(0).max(0) as u64),
            memory_swap: ByteSize(host.memory_swap.unwrap_or(0).max(0) as u64),
            cpus: host.nano_cpus.unwrap_or(0) as f64 / 1e9,
            pids_limit: host.pids_limit.unwrap_or(0),
            network: host.network_mode.clone().unwrap_or_default(),
            read_only: host.readonly_rootfs.unwrap_or(false),
            tmp_size: ByteSize(
                host.tmpfs
                    .as_ref()
                    .and_then(|tmpfs| tmpfs.get("/tmp"))
                    .and_then(|options| {
                        options
                            .split(',')
                            .find_map(|option| option.strip_prefix("size="))
                            .and_then(|size| size.parse().ok())
                    })
                    .unwrap_or(0),
            ),
            nofile: host
                .ulimits
                .iter()
                .flatten()
                .find(|u| u.name.as_deref() == Some("nofile"))
                .and_then(|u| u.hard)
                .unwrap_or(0),
            cap_drop_all: host
                .cap_drop
                .iter()
                .flatten()
                .any(|cap| cap.eq_ignore_ascii_case("ALL")),
            no_new_privileges: host
                .security_opt
                .iter()
                .flatten()
                .any(|opt| opt.starts_with("no-new-privileges")),
            init: host.init.unwrap_or(false),
            volumes: Vec::new(),
            disk,
            oci_runtime: host.runtime.clone(),
        };
        for bind in host.binds.iter().flatten() {
            let mut parts = bind.split(':');
            let (Some(host_path), Some(container)) = (parts.next(), parts.next()) else {
                continue;
            };
            if container == work_dir {
                continue;
            }
            policy.volumes.push(Volume {
                host: host_path.to_string(),
                container: container.to_string(),
                read_only: parts.next() == Some("ro"),
            });
        }
        policy
    }
}

fn parse_uid_gid(user: &str) -> Result<(u32, u32), String> {
    let invalid = || format!("user `{user}` must be numeric `uid:gid`, e.g. 1000:1000");
    let (uid, gid) = user.split_once(':').ok_or_else(invalid)?;
    Ok((
        uid.parse().map_err(|_| invalid())?,
        gid.parse().map_err(|_| invalid())?,
    ))
}

fn parse_volume(host: &str, container: &str) -> Result<Volume, String> {
    let (container, read_only) = match container.strip_suffix(":ro") {
        Some(path) => (path, true),
        None => (container.strip_suffix(":rw").unwrap_or(container), false),
    };
    for (what, path) in [("host path", host), ("sandbox path", container)] {
        let plain = path.starts_with('/')
            && path != "/"
            && !path.contains(':')
            && !path.split('/').any(|part| part == "..")
            && !path.chars().any(char::is_control);
        if !plain {
            return Err(format!(
                "volume {what} `{}` must be an absolute path other than /, without `..` or `:`",
                path.escape_debug()
            ));
        }
    }
    Ok(Volume {
        host: host.to_string(),
        container: container.to_string(),
        read_only,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        assert_eq!(ByteSize::parse("1g").unwrap().0, 1 << 30);
        assert_eq!(ByteSize::parse("512m").unwrap().0, 512 << 20);
        assert_eq!(ByteSize::parse("512MiB").unwrap().0, 512 << 20);
        assert_eq!(ByteSize::parse("0.5g").unwrap().0, 512 << 20);
        assert_eq!(ByteSize::parse("4096").unwrap().0, 4096);
        for bad in ["", "g", "-1g", "0", "1x", "lots"] {
            assert!(ByteSize::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(ByteSize(1 << 30).to_string(), "1g");
        assert_eq!(ByteSize(1536 << 20).to_string(), "1536m");
        assert_eq!(ByteSize(1000).to_string(), "1000");
    }

    #[test]
    fn defaults_are_hardened() {
        let policy = SandboxPolicy::default();
        let host = policy.host_config("/ws/alice", "/workspace");
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_string()]));
        assert_eq!(
            host.security_opt,
            Some(vec!["no-new-privileges:true".to_string()])
        );
        assert_eq!(host.init, Some(true));
        assert_eq!(host.pids_limit, Some(256));
        assert_eq!(host.memory, Some(1 << 30));
        assert_eq!(host.memory_swap, host.memory);
        assert_eq!(host.nano_cpus, Some(1_000_000_000));
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert_eq!(
            host.binds,
            Some(vec!["/ws/alice:/workspace:rw".to_string()])
        );
        assert!(host.tmpfs.unwrap()["/tmp"].contains("size=67108864"));
        assert_eq!(policy.uid_gid(), (1000, 1000));
        assert_eq!(host.privileged, None);
        assert_eq!(host.runtime, None, "the engine's default runtime");
        assert_eq!(host.shm_size, Some(64 << 20));
    }

    #[test]
    fn layers_override_in_order_and_round_trip() {
        let config = PolicyOverrides {
            memory: Some(ByteSize(512 << 20)),
            ..Default::default()
        };
        let runtime = PolicyOverrides {
            cpus: Some(0.5),
            ..Default::default()
        };
        let sandbox = PolicyOverrides {
            network: Some("bridge".to_string()),
            read_only: Some(false),
            drop_capabilities: Some(false),
            init: Some(false),
            oci_runtime: Some("runsc".to_string()),
            volumes: Some([("/host/data".to_string(), "/workspace/data:ro".to_string())].into()),
            ..Default::default()
        };
        let policy = SandboxPolicy::resolve([&config, &runtime, &sandbox]).unwrap();
        assert_eq!(policy.memory.0, 512 << 20);
        assert_eq!(policy.memory_swap.0, 512 << 20);
        assert_eq!(policy.cpus, 0.5);
        assert_eq!(policy.network, "bridge");
        assert!(!policy.read_only);
        assert!(!policy.cap_drop_all && !policy.init && policy.no_new_privileges);
        assert_eq!(policy.pids_limit, DEFAULT_PIDS_LIMIT);
        assert_eq!(policy.oci_runtime.as_deref(), Some("runsc"));
        let host = policy.host_config("/ws/bob", "/workspace");
        let back = SandboxPolicy::from_host_config(&policy.user, &host, "/workspace", policy.disk);
        assert_eq!(back, policy);
    }

    #[test]
    fn disk_limits_parse_and_layer_in_order() {
        assert_eq!(DiskLimit::parse("5g").unwrap().bytes(), Some(5 << 30));
        assert_eq!(DiskLimit::parse("0").unwrap().bytes(), None);
        assert_eq!(DiskLimit::parse("none").unwrap().bytes(), None);
        assert!(
            DiskLimit::parse("-1g")
                .unwrap_err()
                .contains("0 for no limit")
        );
        assert_eq!(
            SandboxPolicy::default().disk.bytes(),
            Some(DEFAULT_DISK),
            "1 GiB unless set"
        );

        // config [sandbox], then the runtime's table, then the sandbox's flag.
        #[derive(Deserialize)]
        struct Layer {
            sandbox: PolicyOverrides,
        }
        let layer = |text: &str| toml::from_str::<Layer>(text).unwrap().sandbox;
        let config = layer("[sandbox]\ndisk = \"2g\"\n");
        let runtime = layer("[sandbox]\ndisk = \"512m\"\n");
        let none = layer("[sandbox]\ndisk = 0\n");
        let flag = PolicyOverrides {
            disk: Some(DiskLimit::parse("5g").unwrap()),
            ..Default::default()
        };
        let unset = PolicyOverrides::default();
        let resolve = |layers: [&PolicyOverrides; 3]| SandboxPolicy::resolve(layers).unwrap().disk;
        assert_eq!(resolve([&config, &unset, &unset]).bytes(), Some(2 << 30));
        assert_eq!(
            resolve([&config, &runtime, &unset]).bytes(),
            Some(512 << 20)
        );
        assert_eq!(resolve([&config, &runtime, &flag]).bytes(), Some(5 << 30));
        assert_eq!(resolve([&config, &none, &unset]).bytes(), None);
        assert_eq!(resolve([&none, &unset, &flag]).bytes(), Some(5 << 30));
        assert_eq!(
            resolve([&unset, &unset, &unset]).bytes(),
            Some(DEFAULT_DISK)
        );

        let tiny = layer("[sandbox]\ndisk = \"1m\"\n");
        let err = SandboxPolicy::resolve([&tiny]).unwrap_err();
        assert!(err.contains("disk must be at least 16m"), "{err}");
        assert!(toml::from_str::<Layer>("[sandbox]\ndisk = \"lots\"\n").is_err());
    }

    #[test]
    fn bad_overrides_are_named() {
        let cases = [
            (
                PolicyOverrides {
                    user: Some("root".into()),
                    ..Default::default()
                },
                "user `root`",
            ),
            (
                PolicyOverrides {
                    cpus: Some(0.0),
                    ..Default::default()
                },
                "cpus",
            ),
            (
                PolicyOverrides {
                    network: Some("host".into()),
                    ..Default::default()
                },
                "network `host`",
            ),
            (
                PolicyOverrides {
                    pids_limit: Some(1),
                    ..Default::default()
                },
                "pids_limit",
            ),
            (
                PolicyOverrides {
                    volumes: Some([("relative".to_string(), "/data".to_string())].into()),
                    ..Default::default()
                },
                "volume host path `relative`",
            ),
            (
                PolicyOverrides {
                    volumes: Some([("/data".to_string(), "/a/../etc".to_string())].into()),
                    ..Default::default()
                },
                "volume sandbox path",
            ),
            (
                PolicyOverrides {
                    oci_runtime: Some("run sc".into()),
                    ..Default::default()
                },
                "oci_runtime `run sc`",
            ),
        ];
        for (overrides, expected) in cases {
            let err = SandboxPolicy::resolve([&overrides]).unwrap_err();
            assert!(err.contains(expected), "{err} lacks {expected}");
        }
    }
}
