//! OCI runtimes: the low-level runtimes the engine can start containers with
//! (`runc` by default; gVisor's `runsc` when registered). A policy may ask for
//! one; sandpit checks the engine offers it before creating anything.

use anyhow::Context as _;
use serde::Serialize;

use super::Engine;

/// The runtime name `scripts/docker-up --gvisor` registers gVisor under.
pub const GVISOR: &str = "runsc";

/// The runtime argument that gives gVisor no network of its own. With it,
/// gVisor offers only loopback whatever network the container is attached to.
pub const NO_NETWORK_ARG: &str = "--network=none";

/// The lowest pids limit a gVisor sandbox is given: gVisor's own threads
/// count against it with the sandbox's processes (about 40 when idle,
/// measured), and at the limit the whole sandbox dies rather than `fork`
/// failing.
pub const GVISOR_MIN_PIDS: i64 = 128;

/// One OCI runtime the engine offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OciRuntime {
    /// The name containers ask for, e.g. `runc` or `runsc`.
    pub name: String,
    /// The binary the engine runs.
    pub path: String,
    /// Arguments the engine passes to every call of the binary.
    pub args: Vec<String>,
    /// Whether the engine uses it when a container asks for none.
    pub default: bool,
}

impl OciRuntime {
    /// Whether this runtime gives containers no network whatever they are
    /// attached to (gVisor registered with `--network=none`).
    pub fn network_disabled(&self) -> bool {
        self.args.iter().any(|arg| arg == NO_NETWORK_ARG)
    }
}

/// How to register a runtime the engine lacks, for error messages.
pub fn how_to_add(name: &str) -> String {
    if name == GVISOR {
        format!(
            "install gVisor and register it as `{GVISOR}` with `scripts/docker-up --gvisor` (apt-get install runsc; a `runtimes` entry in /etc/docker/daemon.json with runtimeArgs [\"{NO_NETWORK_ARG}\"]; dockerd reloads on SIGHUP)"
        )
    } else {
        "register it in the `runtimes` of /etc/docker/daemon.json and reload dockerd (SIGHUP)"
            .to_string()
    }
}

impl Engine {
    /// The OCI runtimes the engine offers, sorted by name.
    ///
    /// Errors when the engine does not answer.
    pub async fn oci_runtimes(&self) -> anyhow::Result<Vec<OciRuntime>> {
        let info = self.docker().info().await.with_context(|| {
            format!("cannot ask the engine at {} for its runtimes", self.host())
        })?;
        let default = info.default_runtime.unwrap_or_else(|| "runc".to_string());
        let mut runtimes: Vec<OciRuntime> = info
            .runtimes
            .unwrap_or_default()
            .into_iter()
            .map(|(name, runtime)| OciRuntime {
                default: name == default,
                path: runtime.path.unwrap_or_default(),
                args: runtime.runtime_args.unwrap_or_default(),
                name,
            })
            .collect();
        runtimes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(runtimes)
    }

    /// Checks that the engine offers the OCI runtime `name` and that it can
    /// give the sandbox the `network` asked for. Errors name the runtime, what
    /// the engine offers, and how to add it.
    pub async fn check_oci_runtime(
        &self,
        name: &str,
        network: &str,
        pids_limit: i64,
    ) -> anyhow::Result<()> {
        let runtimes = self.oci_runtimes().await?;
        check_offered(&runtimes, name, network, pids_limit).map_err(anyhow::Error::msg)
    }
}

/// The check behind [`Engine::check_oci_runtime`], on a list already read:
/// the runtime is offered, can give `network`, and (for gVisor) `pids_limit`
/// leaves room for gVisor's own threads.
pub fn check_offered(
    runtimes: &[OciRuntime],
    name: &str,
    network: &str,
    pids_limit: i64,
) -> Result<(), String> {
    let Some(runtime) = runtimes.iter().find(|runtime| runtime.name == name) else {
        let offered: Vec<&str> = runtimes.iter().map(|r| r.name.as_str()).collect();
        return Err(format!(
            "the engine offers no OCI runtime `{name}` (it offers: {}); {}",
            if offered.is_empty() {
                "none listed".to_string()
            } else {
                offered.join(", ")
            },
            how_to_add(name)
        ));
    };
    if runtime.network_disabled() && network != "none" {
        // gVisor started with --network=none gives the container loopback
        // only: a `bridge` sandbox would silently have no network.
        return Err(format!(
            "OCI runtime `{name}` is registered with `{NO_NETWORK_ARG}`, so network `{network}` would silently be loopback only: use network `none` with it, or the default runtime for a networked sandbox"
        ));
    }
    if name == GVISOR && pids_limit < GVISOR_MIN_PIDS {
        return Err(format!(
            "pids_limit {pids_limit} is too low under gVisor: its own threads count against the limit with the sandbox's processes, and at the limit the whole sandbox dies; use at least {GVISOR_MIN_PIDS}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime(name: &str, args: &[&str]) -> OciRuntime {
        OciRuntime {
            name: name.to_string(),
            path: format!("/usr/bin/{name}"),
            args: args.iter().map(|a| a.to_string()).collect(),
            default: name == "runc",
        }
    }

    #[test]
    fn missing_runtimes_and_networks_are_refused_with_the_way_out() {
        let offered = [runtime("runc", &[]), runtime("runsc", &[NO_NETWORK_ARG])];
        assert!(check_offered(&offered, "runsc", "none", 256).is_ok());
        assert!(check_offered(&offered, "runc", "bridge", 16).is_ok());
        let err = check_offered(&offered, "runsc", "none", 64).unwrap_err();
        assert!(
            err.contains("pids_limit 64") && err.contains("at least 128"),
            "{err}"
        );
        let err = check_offered(&offered, "runsc", "bridge", 256).unwrap_err();
        assert!(
            err.contains("network `bridge`") && err.contains(NO_NETWORK_ARG),
            "{err}"
        );
        let err = check_offered(&offered[..1], "runsc", "none", 256).unwrap_err();
        assert!(err.contains("no OCI runtime `runsc`"), "{err}");
        assert!(err.contains("it offers: runc"), "{err}");
        assert!(err.contains("scripts/docker-up --gvisor"), "{err}");
        let err = check_offered(&offered, "kata", "none", 256).unwrap_err();
        assert!(err.contains("daemon.json"), "{err}");
    }
}
