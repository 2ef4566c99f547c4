//! The engine layer: everything that talks to Docker. It knows nothing of the
//! dashboard or the CLI; they drive it and receive its events.

pub mod events;
pub mod exec;
pub mod files;
pub mod images;
pub mod names;
pub mod oci;
pub mod policy;
pub mod quota;
pub mod runner;
pub mod runtimes;
pub mod sandbox;
pub mod stats;
pub(crate) mod workspace;

use anyhow::Context as _;
use bollard::Docker;

/// Labels that mark what sandpit owns on the engine.
pub mod labels {
    pub const MANAGED: &str = "sandpit.managed";
    pub const RUNTIME: &str = "sandpit.runtime";
    pub const HASH: &str = "sandpit.hash";
}

/// A connection to a Docker engine, with the API version negotiated down to
/// what the engine speaks (bollard defaults to a newer one than Docker 20.10).
#[derive(Clone)]
pub struct Engine {
    docker: Docker,
    host: String,
}

/// What `sandpit doctor` reports about the engine.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EngineInfo {
    pub host: String,
    pub engine_version: String,
    pub api_version: String,
    pub negotiated_api_version: String,
    pub os: String,
    pub arch: String,
}

impl Engine {
    /// Connects to `DOCKER_HOST`, or the local socket when it is unset.
    pub async fn connect() -> anyhow::Result<Self> {
        let host = engine_host();
        let unreachable = |err: bollard::errors::Error| {
            anyhow::anyhow!(
                "the Docker engine at {host} does not answer: {err}. Is dockerd running? \
                 (scripts/docker-up installs and starts one; DOCKER_HOST selects another engine)"
            )
        };
        let docker = Docker::connect_with_defaults()
            .map_err(unreachable)?
            .negotiate_version()
            .await
            .map_err(unreachable)?;
        Ok(Self { docker, host })
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub async fn info(&self) -> anyhow::Result<EngineInfo> {
        let version =
            self.docker.version().await.with_context(|| {
                format!("cannot read the version of the engine at {}", self.host)
            })?;
        Ok(EngineInfo {
            host: self.host.clone(),
            engine_version: version.version.unwrap_or_default(),
            api_version: version.api_version.unwrap_or_default(),
            negotiated_api_version: self.docker.client_version().to_string(),
            os: version.os.unwrap_or_default(),
            arch: version.arch.unwrap_or_default(),
        })
    }
}

/// The engine address in force, for messages.
pub fn engine_host() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string())
}

/// True when the engine answered 404 for the thing asked about.
pub fn is_not_found(err: &bollard::errors::Error) -> bool {
    matches!(
        err,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}
