//! The runner's volume: a named volume holding the runner binary, mounted
//! read-only into every sandbox at [`MOUNT_POINT`].
//!
//! It is filled through the engine's archive API, by uploading into a helper
//! container that mounts the volume and is created but never started. No
//! host path is involved, so this works against a remote engine
//! (`DOCKER_HOST`), and no registry or writable root is needed in the
//! sandbox. The volume is named by the binary's content hash: a new sandpit
//! makes a new volume, and sandboxes made by an older one keep theirs.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use bollard::models::{
    ContainerCreateBody, HostConfig, Mount, MountType, MountVolumeOptions, VolumeCreateRequest,
};
use bollard::query_parameters::{
    ContainerArchiveInfoOptionsBuilder, CreateContainerOptionsBuilder,
    ListContainersOptionsBuilder, ListVolumesOptionsBuilder, RemoveContainerOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use sha2::Digest as _;

use crate::engine::{Engine, is_not_found, labels};

/// Where the volume is mounted in a sandbox.
pub const MOUNT_POINT: &str = "/.sandpit-runner";
/// The binary's file name inside the volume.
pub const BINARY_NAME: &str = "sandpit-runner";
/// The binary's path inside a sandbox.
pub const BINARY_PATH: &str = "/.sandpit-runner/sandpit-runner";
/// Every runner volume's name starts with this, then 16 hex digits of the
/// binary's SHA-256.
pub const VOLUME_PREFIX: &str = "sandpit-runner-";
/// The `sandpit.kind` label of runner volumes and of their helper containers.
pub const KIND_VOLUME: &str = "runner-volume";
pub const KIND_HELPER: &str = "runner-helper";
const KIND_LABEL: &str = "sandpit.kind";

/// Where the helper container mounts the volume.
const HELPER_MOUNT: &str = "/v";
/// Attempts at filling the volume when another process fills it too.
const FILL_ATTEMPTS: u32 = 5;

/// The volume name for `binary`: [`VOLUME_PREFIX`] and the first 16 hex
/// digits of its SHA-256.
pub fn volume_name(binary: &[u8]) -> String {
    let digest = sha2::Sha256::digest(binary);
    let hex: String = digest
        .iter()
        .take(8)
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("{VOLUME_PREFIX}{hex}")
}

/// The mount a sandbox gets for volume `name`: read-only at [`MOUNT_POINT`],
/// never filled from the image.
pub fn sandbox_mount(name: &str) -> Mount {
    Mount {
        target: Some(MOUNT_POINT.to_string()),
        source: Some(name.to_string()),
        typ: Some(MountType::VOLUME),
        read_only: Some(true),
        volume_options: Some(MountVolumeOptions {
            no_copy: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Whether a container's mounts (from its inspection) include the runner's.
pub fn has_runner_mount(mounts: &[bollard::models::MountPoint]) -> bool {
    mounts.iter().any(|mount| {
        mount.destination.as_deref() == Some(MOUNT_POINT)
            && mount
                .name
                .as_deref()
                .is_some_and(|name| name.starts_with(VOLUME_PREFIX))
    })
}

/// Volumes this process knows to be complete, by engine address and name:
/// each is checked once per process.
fn filled() -> &'static Mutex<HashSet<(String, String)>> {
    static FILLED: OnceLock<Mutex<HashSet<(String, String)>>> = OnceLock::new();
    FILLED.get_or_init(Default::default)
}

impl Engine {
    /// The runner volume for `binary`, created and filled when missing;
    /// returns its name. `image` is any image present on the engine (the
    /// sandbox's own): the helper container is made from it but never
    /// started, so nothing of the image runs.
    ///
    /// Safe to call from many processes at once: volume creation is
    /// idempotent on the engine, every filler uploads the same bytes, and a
    /// process that finds the file complete uploads nothing. Errors: the
    /// engine refuses to create the volume or the helper, or the upload
    /// fails, or the file is still not complete after a few attempts.
    pub async fn ensure_runner_volume(&self, binary: &[u8], image: &str) -> anyhow::Result<String> {
        let name = volume_name(binary);
        let key = (self.host().to_string(), name.clone());
        if filled().lock().is_ok_and(|set| set.contains(&key)) {
            return Ok(name);
        }
        let hash = name.trim_start_matches(VOLUME_PREFIX).to_string();
        self.docker()
            .create_volume(VolumeCreateRequest {
                name: Some(name.clone()),
                labels: Some(HashMap::from([
                    (labels::MANAGED.to_string(), "true".to_string()),
                    (KIND_LABEL.to_string(), KIND_VOLUME.to_string()),
                    (labels::HASH.to_string(), hash.clone()),
                ])),
                ..Default::default()
            })
            .await
            .with_context(|| format!("cannot create the runner volume {name}"))?;
        let helper = self.create_fill_helper(&name, &hash, image).await?;
        let result = self.fill_through(&helper, &name, binary).await;
        // The helper never ran; it goes whatever the upload did.
        if let Err(err) = self
            .docker()
            .remove_container(
                &helper,
                Some(RemoveContainerOptionsBuilder::new().force(true).build()),
            )
            .await
            && !is_not_found(&err)
        {
            tracing::warn!("cannot remove the runner volume's helper {helper}: {err}");
        }
        result?;
        if let Ok(mut set) = filled().lock() {
            set.insert(key);
        }
        Ok(name)
    }

    async fn create_fill_helper(
        &self,
        volume: &str,
        hash: &str,
        image: &str,
    ) -> anyhow::Result<String> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let helper = format!(
            "sandpit-runner-fill-{hash}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            // Never started: the command only has to exist for the engine
            // to accept the container.
            entrypoint: Some(vec!["/.sandpit-never-started".to_string()]),
            cmd: Some(Vec::new()),
            network_disabled: Some(true),
            labels: Some(HashMap::from([
                (labels::MANAGED.to_string(), "true".to_string()),
                (KIND_LABEL.to_string(), KIND_HELPER.to_string()),
                (labels::HASH.to_string(), hash.to_string()),
            ])),
            host_config: Some(HostConfig {
                network_mode: Some("none".to_string()),
                mounts: Some(vec![Mount {
                    target: Some(HELPER_MOUNT.to_string()),
                    source: Some(volume.to_string()),
                    typ: Some(MountType::VOLUME),
                    read_only: Some(false),
                    volume_options: Some(MountVolumeOptions {
                        no_copy: Some(true),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.docker()
            .create_container(
                Some(CreateContainerOptionsBuilder::new().name(&helper).build()),
                body,
            )
            .await
            .with_context(|| {
                format!("cannot create the helper container that fills the runner volume {volume} (image {image})")
            })?;
        Ok(helper)
    }

    /// Uploads the binary into the volume through `helper` unless it is
    /// there whole already, and checks it arrived whole.
    async fn fill_through(&self, helper: &str, volume: &str, binary: &[u8]) -> anyhow::Result<()> {
        let path = format!("{HELPER_MOUNT}/{BINARY_NAME}");
        let archive = binary_tar(binary)?;
        let mut pause = Duration::from_millis(20);
        for attempt in 0..FILL_ATTEMPTS {
            if self.file_size(helper, &path).await == Some(binary.len() as u64) {
                return Ok(());
            }
            if attempt > 0 {
                // Another process may be uploading right now: its file
                // grows to the full size shortly.
                tokio::time::sleep(pause).await;
                pause *= 4;
                if self.file_size(helper, &path).await == Some(binary.len() as u64) {
                    return Ok(());
                }
            }
            self.docker()
                .upload_to_container(
                    helper,
                    Some(
                        UploadToContainerOptionsBuilder::new()
                            .path(HELPER_MOUNT)
                            .build(),
                    ),
                    bollard::body_full(archive.clone().into()),
                )
                .await
                .with_context(|| format!("cannot upload the runner into the volume {volume}"))?;
        }
        if self.file_size(helper, &path).await == Some(binary.len() as u64) {
            return Ok(());
        }
        anyhow::bail!(
            "the runner binary in the volume {volume} is still incomplete after {FILL_ATTEMPTS} uploads"
        )
    }

    /// The size of a file in a container, from the engine's path stat;
    /// `None` when it is missing or cannot be read.
    async fn file_size(&self, container: &str, path: &str) -> Option<u64> {
        let stat = self
            .docker()
            .get_container_archive_info(
                container,
                Some(ContainerArchiveInfoOptionsBuilder::new().path(path).build()),
            )
            .await
            .ok()?;
        u64::try_from(stat.size).ok()
    }

    /// Removes runner volumes other than `keep` that no container uses, and
    /// helper containers left by a filler that died. Returns the names
    /// removed. A volume in use (the engine answers 409) is left alone.
    pub async fn prune_runner_volumes(&self, keep: &str) -> anyhow::Result<Vec<String>> {
        let mut removed = Vec::new();
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{KIND_LABEL}={KIND_HELPER}")],
        )]);
        let helpers = self
            .docker()
            .list_containers(Some(
                ListContainersOptionsBuilder::new()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .context("cannot list the runner volume's helper containers")?;
        for helper in helpers {
            // A helper is never started; one that is "created" for long is a
            // leftover. One being used right now is at most seconds old.
            let age = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
                - helper.created.unwrap_or(0);
            if age < 300 {
                continue;
            }
            if let Some(id) = helper.id
                && self
                    .docker()
                    .remove_container(
                        &id,
                        Some(RemoveContainerOptionsBuilder::new().force(true).build()),
                    )
                    .await
                    .is_ok()
            {
                removed.push(
                    helper
                        .names
                        .and_then(|names| names.first().cloned())
                        .unwrap_or(id)
                        .trim_start_matches('/')
                        .to_string(),
                );
            }
        }
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{KIND_LABEL}={KIND_VOLUME}")],
        )]);
        let volumes = self
            .docker()
            .list_volumes(Some(
                ListVolumesOptionsBuilder::new().filters(&filters).build(),
            ))
            .await
            .context("cannot list runner volumes")?;
        for volume in volumes.volumes.unwrap_or_default() {
            if volume.name == keep || !volume.name.starts_with(VOLUME_PREFIX) {
                continue;
            }
            match self
                .docker()
                .remove_volume(
                    &volume.name,
                    None::<bollard::query_parameters::RemoveVolumeOptions>,
                )
                .await
            {
                Ok(()) => removed.push(volume.name),
                Err(err) => tracing::info!("not pruning {}: {err}", volume.name),
            }
        }
        Ok(removed)
    }
}

/// A tar archive of one file, the binary, mode 0555, owned by root.
fn binary_tar(binary: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut archive = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(binary.len() as u64);
    header.set_mode(0o555);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_cksum();
    archive
        .append_data(&mut header, BINARY_NAME, binary)
        .context("cannot pack the runner binary")?;
    archive
        .into_inner()
        .context("cannot finish the runner archive")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_content() {
        let a = volume_name(b"one");
        assert!(a.starts_with(VOLUME_PREFIX));
        assert_eq!(a.len(), VOLUME_PREFIX.len() + 16);
        assert_eq!(a, volume_name(b"one"));
        assert_ne!(a, volume_name(b"two"));
    }

    #[test]
    fn the_archive_holds_one_executable_file() {
        let archive = binary_tar(b"\x7fELF...").unwrap();
        let mut reader = tar::Archive::new(archive.as_slice());
        let entries: Vec<_> = reader
            .entries()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                (
                    entry.path().unwrap().display().to_string(),
                    entry.header().mode().unwrap(),
                    entry.header().size().unwrap(),
                )
            })
            .collect();
        assert_eq!(entries, [(BINARY_NAME.to_string(), 0o555, 7)]);
    }

    #[test]
    fn only_a_runner_volume_at_the_mount_point_counts() {
        let mount = |name: &str, destination: &str| bollard::models::MountPoint {
            name: Some(name.to_string()),
            destination: Some(destination.to_string()),
            ..Default::default()
        };
        assert!(has_runner_mount(&[mount(
            "sandpit-runner-0123",
            MOUNT_POINT
        )]));
        assert!(!has_runner_mount(&[mount("other", MOUNT_POINT)]));
        assert!(!has_runner_mount(&[mount(
            "sandpit-runner-0123",
            "/elsewhere"
        )]));
        assert!(!has_runner_mount(&[]));
    }
}
