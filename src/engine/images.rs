//! Runtime images: content-hashed tags, generated Dockerfiles, builds through
//! the engine API, base-image pulls, and pruning of sandpit's own images.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateImageOptionsBuilder, ListImagesOptionsBuilder,
    RemoveImageOptionsBuilder,
};
use futures_util::StreamExt as _;

use super::runtimes::{ImageSource, Language, Runtime};
use super::{Engine, is_not_found, labels};

/// Bumped whenever the Dockerfile generator changes in a way that should
/// rebuild every runtime.
const GENERATOR_VERSION: u32 = 1;

/// Where packages installed with pip and npm live: outside the work dir, so a
/// workspace mounted over it leaves them usable.
pub const VENV_DIR: &str = "/opt/sandpit/venv";
pub const NODE_DIR: &str = "/opt/sandpit/node";
const CA_IN_IMAGE: &str = "/etc/sandpit/build-ca.crt";
const CA_IN_CONTEXT: &str = "sandpit-build-ca.crt";
const SCRIPT_DIR: &str = "/tmp/sandpit-build";

/// How many log lines a failed build quotes in its error.
const FAILURE_TAIL_LINES: usize = 25;

/// Options for building images.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// A CA bundle copied into builds so apt, pip and npm trust a
    /// TLS-intercepting proxy.
    pub ca_file: Option<PathBuf>,
    /// Build even when an image with the current tag exists.
    pub force: bool,
}

/// What a build reports while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// The image for this definition exists already; nothing is built.
    Cached {
        tag: String,
    },
    /// Pulling a missing base image.
    Pull {
        image: String,
        status: String,
    },
    /// A line of the build log.
    Log(String),
    Built {
        tag: String,
    },
}

/// Whether a runtime's image is on the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageState {
    /// The image for the current definition exists.
    Built,
    /// An image of an earlier definition exists, not the current one.
    Stale,
    Missing,
}

impl ImageState {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageState::Built => "built",
            ImageState::Stale => "stale",
            ImageState::Missing => "missing",
        }
    }
}

/// The hash of everything in a runtime that shapes its image.
pub fn content_hash(runtime: &Runtime) -> String {
    let mut canonical = String::new();
    let _ = write!(
        canonical,
        "v{GENERATOR_VERSION}\0{}\0{:?}\0",
        runtime.language, runtime.source
    );
    for list in [&runtime.system_packages, &runtime.packages, &runtime.setup] {
        let _ = write!(canonical, "{}\0", list.len());
        for item in list {
            let _ = write!(canonical, "{item}\0");
        }
    }
    for (key, value) in &runtime.env {
        let _ = write!(canonical, "{key}={value}\0");
    }
    let _ = write!(canonical, "{}", runtime.work_dir);
    format!("{:016x}", fnv1a64(canonical.as_bytes()))
        .chars()
        .take(12)
        .collect()
}

/// FNV-1a: stable across Rust releases and platforms, unlike std's hasher,
/// so tags mean the same thing on every machine.
fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(PRIME)
    })
}

/// The image a runtime's sandboxes run: its tag when sandpit builds it, or
/// the image named in the runtime.
pub fn image_ref(runtime: &Runtime) -> String {
    match &runtime.source {
        ImageSource::Build { .. } => {
            format!("sandpit/{}:{}", runtime.name, content_hash(runtime))
        }
        ImageSource::Prebuilt { image } => image.clone(),
    }
}

/// The build context: a Dockerfile plus the scripts it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildContext {
    pub dockerfile: String,
    /// (path in the context, contents)
    pub files: Vec<(String, Vec<u8>)>,
}

/// Generates the Dockerfile and scripts for a runtime. Each step runs a
/// script copied into the image rather than an inline RUN line, so package
/// lists and setup commands never need Dockerfile escaping.
pub fn build_context(
    runtime: &Runtime,
    ca_bundle: Option<Vec<u8>>,
) -> anyhow::Result<BuildContext> {
    let ImageSource::Build { base_image } = &runtime.source else {
        bail!(
            "runtime `{}` uses an image as it is; there is nothing to build",
            runtime.name
        );
    };
    let with_ca = ca_bundle.is_some();
    let mut dockerfile = format!("FROM {base_image}\nUSER root\n");
    let mut files = Vec::new();
    if let Some(bundle) = ca_bundle {
        let _ = writeln!(dockerfile, "COPY {CA_IN_CONTEXT} {CA_IN_IMAGE}");
        files.push((CA_IN_CONTEXT.to_string(), bundle));
    }

    let mut add_step = |name: &str, body: String| {
        let script = format!("{}{}", script_prelude(with_ca), body);
        let _ = writeln!(
            dockerfile,
            "COPY {name} {SCRIPT_DIR}/{name}\nRUN sh {SCRIPT_DIR}/{name}"
        );
        files.push((name.to_string(), script.into_bytes()));
    };

    if !runtime.system_packages.is_empty() {
        add_step("apt.sh", apt_install(&runtime.system_packages));
    }
    let mut path_prefix = Vec::new();
    let mut extra_env = Vec::new();
    if !runtime.packages.is_empty() {
        match runtime.language {
            Language::Python => {
                add_step("pip.sh", pip_install(&runtime.packages));
                path_prefix.push(format!("{VENV_DIR}/bin"));
                extra_env.push(("VIRTUAL_ENV".to_string(), VENV_DIR.to_string()));
            }
            Language::Node => {
                add_step("npm.sh", npm_install(&runtime.packages));
                path_prefix.push(format!("{NODE_DIR}/node_modules/.bin"));
                extra_env.push(("NODE_PATH".to_string(), format!("{NODE_DIR}/node_modules")));
            }
            // Refused when the runtimes file is read.
            Language::Shell => bail!("shell runtime `{}` cannot have packages", runtime.name),
        }
    }
    for (index, command) in runtime.setup.iter().enumerate() {
        add_step(&format!("setup-{}.sh", index + 1), format!("{command}\n"));
    }

    if !path_prefix.is_empty() {
        let _ = writeln!(dockerfile, "ENV PATH={}:$PATH", path_prefix.join(":"));
    }
    let runtime_env = runtime.env.iter().map(|(k, v)| (k.clone(), v.clone()));
    for (key, value) in extra_env.into_iter().chain(runtime_env) {
        let _ = writeln!(dockerfile, "ENV {key}=\"{}\"", dockerfile_escape(&value));
    }
    let _ = writeln!(dockerfile, "WORKDIR {}", runtime.work_dir);
    Ok(BuildContext { dockerfile, files })
}

fn script_prelude(with_ca: bool) -> String {
    let mut prelude = String::from("set -eu\nexport DEBIAN_FRONTEND=noninteractive\n");
    if with_ca {
        let _ = writeln!(
            prelude,
            "export SSL_CERT_FILE={CA_IN_IMAGE} PIP_CERT={CA_IN_IMAGE} REQUESTS_CA_BUNDLE={CA_IN_IMAGE} \
             NODE_EXTRA_CA_CERTS={CA_IN_IMAGE} NPM_CONFIG_CAFILE={CA_IN_IMAGE} CURL_CA_BUNDLE={CA_IN_IMAGE}\n\
             mkdir -p /etc/apt/apt.conf.d\n\
             echo 'Acquire::https::CAInfo \"{CA_IN_IMAGE}\";' > /etc/apt/apt.conf.d/99sandpit-build-ca"
        );
    }
    prelude
}

fn apt_install(packages: &[String]) -> String {
    format!(
        "apt-get update\napt-get install -y --no-install-recommends {}\nrm -rf /var/lib/apt/lists/*\n",
        shell_words(packages)
    )
}

fn pip_install(packages: &[String]) -> String {
    // --system-site-packages keeps Debian's python3-* packages importable
    // beside the pip ones.
    format!(
        "if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then\n\
         \x20 apt-get update\n\
         \x20 apt-get install -y --no-install-recommends python3 python3-venv\n\
         \x20 rm -rf /var/lib/apt/lists/*\n\
         fi\n\
         python3 -m venv --system-site-packages {VENV_DIR}\n\
         {VENV_DIR}/bin/pip install --no-cache-dir --disable-pip-version-check --progress-bar off {}\n",
        shell_words(packages)
    )
}

fn npm_install(packages: &[String]) -> String {
    // /node_modules makes the packages resolvable from any folder, including
    // a workspace mounted over the work dir: Node and Vite walk up to /.
    format!(
        "if ! command -v npm >/dev/null 2>&1; then\n\
         \x20 apt-get update\n\
         \x20 apt-get install -y --no-install-recommends nodejs npm\n\
         \x20 rm -rf /var/lib/apt/lists/*\n\
         fi\n\
         mkdir -p {NODE_DIR}\n\
         cd {NODE_DIR}\n\
         echo '{{\"name\": \"sandpit-runtime\", \"private\": true}}' > package.json\n\
         npm install --no-audit --no-fund --no-update-notifier --loglevel=warn {}\n\
         ln -sfn {NODE_DIR}/node_modules /node_modules\n\
         rm -rf /root/.npm\n",
        shell_words(packages)
    )
}

/// Single-quotes each word for sh.
fn shell_words(words: &[String]) -> String {
    words
        .iter()
        .map(|word| shell_quote(word))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

fn dockerfile_escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('$', r"\$")
}

fn context_tar(context: &BuildContext) -> anyhow::Result<Vec<u8>> {
    let mut archive = tar::Builder::new(Vec::new());
    let mut append = |path: &str, data: &[u8]| -> anyhow::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        archive
            .append_data(&mut header, path, data)
            .with_context(|| format!("cannot add {path} to the build context"))
    };
    append("Dockerfile", context.dockerfile.as_bytes())?;
    for (path, data) in &context.files {
        append(path, data)?;
    }
    archive
        .into_inner()
        .context("cannot finish the build context archive")
}

impl Engine {
    pub async fn image_exists(&self, image: &str) -> anyhow::Result<bool> {
        match self.docker().inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(err) if is_not_found(&err) => Ok(false),
            Err(err) => Err(err).with_context(|| format!("cannot inspect image {image}")),
        }
    }

    /// Images sandpit built, newest first.
    pub async fn sandpit_images(&self) -> anyhow::Result<Vec<bollard::models::ImageSummary>> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{}=true", labels::MANAGED)],
        )]);
        let mut images = self
            .docker()
            .list_images(Some(
                ListImagesOptionsBuilder::new().filters(&filters).build(),
            ))
            .await
            .context("cannot list sandpit's images")?;
        images.sort_by_key(|image| std::cmp::Reverse(image.created));
        Ok(images)
    }

    /// The state of a runtime's image.
    pub async fn image_state(&self, runtime: &Runtime) -> anyhow::Result<ImageState> {
        let reference = image_ref(runtime);
        if self.image_exists(&reference).await? {
            return Ok(ImageState::Built);
        }
        if matches!(runtime.source, ImageSource::Prebuilt { .. }) {
            return Ok(ImageState::Missing);
        }
        let stale = self.sandpit_images().await?.iter().any(|image| {
            image.labels.get(labels::RUNTIME).map(String::as_str) == Some(runtime.name.as_str())
        });
        Ok(if stale {
            ImageState::Stale
        } else {
            ImageState::Missing
        })
    }

    /// Makes sure `image` is on the engine, pulling it when missing.
    pub async fn ensure_image(
        &self,
        image: &str,
        on_event: &mut (dyn FnMut(BuildEvent) + Send),
    ) -> anyhow::Result<()> {
        if self.image_exists(image).await? {
            return Ok(());
        }
        let (repository, tag) = split_reference(image);
        let options = CreateImageOptionsBuilder::new()
            .from_image(repository)
            .tag(tag)
            .build();
        let mut pull = self.docker().create_image(Some(options), None, None);
        while let Some(progress) = pull.next().await {
            match progress {
                Ok(info) => {
                    let mut status = info.status.unwrap_or_default();
                    if let Some(id) = info.id {
                        status = format!("{id}: {status}");
                    }
                    if let Some(detail) = info.progress_detail
                        && let (Some(current), Some(total)) = (detail.current, detail.total)
                        && total > 0
                    {
                        let _ = write!(status, " {}%", current * 100 / total);
                    }
                    on_event(BuildEvent::Pull {
                        image: image.to_string(),
                        status,
                    });
                }
                Err(err) => {
                    // The offline recipe makes Debian images only.
                    let fix = if image == "debian:trixie-slim" {
                        "create it from Debian's packages with `scripts/offline-base-image` \
                         (debootstrap, then docker import), or `docker load` it from a saved archive"
                            .to_string()
                    } else if image.starts_with("debian:") {
                        format!(
                            "create it from Debian's packages with `SANDPIT_BASE_SUITE=<suite> scripts/offline-base-image {image}`, \
                             or `docker load` it from a saved archive"
                        )
                    } else {
                        "`docker load` it from an archive saved where a registry answers (`docker save`)"
                            .to_string()
                    };
                    bail!(
                        "image `{image}` is not on the engine and could not be pulled: {err}.\n\
                         Without a registry, {fix}"
                    )
                }
            }
        }
        Ok(())
    }

    /// Builds a runtime's image unless the current one exists. Returns its tag.
    pub async fn build_runtime(
        &self,
        runtime: &Runtime,
        options: &BuildOptions,
        on_event: &mut (dyn FnMut(BuildEvent) + Send),
    ) -> anyhow::Result<String> {
        let tag = image_ref(runtime);
        let base_image = match &runtime.source {
            ImageSource::Prebuilt { image } => {
                self.ensure_image(image, on_event).await?;
                on_event(BuildEvent::Cached { tag: tag.clone() });
                return Ok(tag);
            }
            ImageSource::Build { base_image } => base_image,
        };
        if !options.force && self.image_exists(&tag).await? {
            on_event(BuildEvent::Cached { tag: tag.clone() });
            return Ok(tag);
        }
        self.ensure_image(base_image, on_event)
            .await
            .with_context(|| format!("runtime `{}` builds on `{base_image}`", runtime.name))?;

        let ca_bundle = match &options.ca_file {
            Some(path) => Some(read_ca_bundle(path)?),
            None => None,
        };
        let context = build_context(runtime, ca_bundle)?;
        let archive = context_tar(&context)?;
        let image_labels = HashMap::from([
            (labels::MANAGED.to_string(), "true".to_string()),
            (labels::RUNTIME.to_string(), runtime.name.clone()),
            (labels::HASH.to_string(), content_hash(runtime)),
        ]);
        let build_options = BuildImageOptionsBuilder::new()
            .dockerfile("Dockerfile")
            .t(&tag)
            .labels(&image_labels)
            // Builds reach package registries; sandboxes never get this.
            .networkmode("host")
            .rm(true)
            .forcerm(true)
            .nocache(options.force)
            .build();

        let mut tail: VecDeque<String> = VecDeque::with_capacity(FAILURE_TAIL_LINES);
        let mut stream = self.docker().build_image(
            build_options,
            None,
            Some(bollard::body_full(archive.into())),
        );
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    let text = info.stream.or(info.status).unwrap_or_default();
                    for line in text.lines().filter(|line| !line.trim().is_empty()) {
                        if tail.len() == FAILURE_TAIL_LINES {
                            tail.pop_front();
                        }
                        tail.push_back(line.to_string());
                        on_event(BuildEvent::Log(line.to_string()));
                    }
                }
                Err(err) => {
                    let log: Vec<String> = tail.into_iter().collect();
                    bail!(
                        "build of runtime `{}` failed: {err}\nlast lines of the build log:\n{}",
                        runtime.name,
                        log.join("\n")
                    );
                }
            }
        }
        if !self.image_exists(&tag).await? {
            bail!(
                "build of runtime `{}` ended without producing {tag}",
                runtime.name
            );
        }
        on_event(BuildEvent::Built { tag: tag.clone() });
        Ok(tag)
    }

    /// Removes sandpit images that no current runtime uses. Returns the tags
    /// (or ids) removed. Images still used by a container are left alone.
    pub async fn prune_images(&self, current_tags: &[String]) -> anyhow::Result<Vec<String>> {
        let mut removed = Vec::new();
        for image in self.sandpit_images().await? {
            if image.repo_tags.iter().any(|tag| current_tags.contains(tag)) {
                continue;
            }
            let name = image.repo_tags.first().cloned().unwrap_or(image.id.clone());
            match self
                .docker()
                .remove_image(
                    &image.id,
                    Some(RemoveImageOptionsBuilder::new().build()),
                    None,
                )
                .await
            {
                Ok(_) => removed.push(name),
                Err(err) => tracing::warn!("not pruning {name}: {err}"),
            }
        }
        Ok(removed)
    }
}

fn read_ca_bundle(path: &Path) -> anyhow::Result<Vec<u8>> {
    let bundle = std::fs::read(path)
        .with_context(|| format!("cannot read the build CA bundle {}", path.display()))?;
    if !String::from_utf8_lossy(&bundle).contains("-----BEGIN CERTIFICATE-----") {
        bail!(
            "the build CA bundle {} holds no PEM certificate",
            path.display()
        );
    }
    Ok(bundle)
}

/// Splits `repo[:tag]` (a registry port is not a tag) into repository and tag.
fn split_reference(image: &str) -> (&str, &str) {
    if image.contains('@') {
        return (image, "");
    }
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (image, "latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::runtimes::{Origin, RuntimeSet, parse_runtimes};

    fn runtime(extra: &str) -> Runtime {
        let text = format!(
            "[[runtime]]\nname = \"t\"\nlanguage = \"python\"\nbase_image = \"debian:trixie-slim\"\n{extra}"
        );
        parse_runtimes(&text, "t.toml", Origin::Builtin)
            .unwrap()
            .remove(0)
    }

    #[test]
    fn tag_is_stable_and_follows_content() {
        let plain = runtime("");
        assert_eq!(image_ref(&plain), image_ref(&plain.clone()));
        assert!(image_ref(&plain).starts_with("sandpit/t:"));
        let with_packages = runtime("packages = [\"httpx\"]");
        assert_ne!(content_hash(&plain), content_hash(&with_packages));
        let other_packages = runtime("packages = [\"httpx\", \"rich\"]");
        assert_ne!(content_hash(&with_packages), content_hash(&other_packages));
        // Fields that do not shape the image do not change the tag.
        let described = runtime("description = \"x\"\nstarter = \"print(1)\"");
        assert_eq!(content_hash(&plain), content_hash(&described));
    }

    #[test]
    fn list_boundaries_are_part_of_the_hash() {
        let joined = runtime("system_packages = [\"ab\"]");
        let split = runtime("system_packages = [\"a\", \"b\"]");
        assert_ne!(content_hash(&joined), content_hash(&split));
    }

    #[test]
    fn dockerfile_for_python_packages_uses_a_venv_outside_the_workspace() {
        let context = build_context(
            &runtime("system_packages = [\"python3\"]\npackages = [\"httpx==0.28\"]\nenv = { A = \"x$y\\\"z\" }"),
            None,
        )
        .unwrap();
        assert!(context.dockerfile.starts_with("FROM debian:trixie-slim\n"));
        assert!(
            context
                .dockerfile
                .contains("RUN sh /tmp/sandpit-build/apt.sh")
        );
        assert!(
            context
                .dockerfile
                .contains("ENV PATH=/opt/sandpit/venv/bin:$PATH")
        );
        assert!(context.dockerfile.contains("ENV A=\"x\\$y\\\"z\""));
        assert!(context.dockerfile.ends_with("WORKDIR /workspace\n"));
        let pip = &context
            .files
            .iter()
            .find(|(name, _)| name == "pip.sh")
            .unwrap()
            .1;
        let pip = String::from_utf8_lossy(pip);
        assert!(pip.contains("--system-site-packages /opt/sandpit/venv"));
        assert!(pip.contains("'httpx==0.28'"));
    }

    #[test]
    fn ca_bundle_is_copied_and_exported_to_every_step() {
        let context = build_context(
            &runtime("system_packages = [\"python3\"]\nsetup = [\"true\"]"),
            Some(b"-----BEGIN CERTIFICATE-----\n".to_vec()),
        )
        .unwrap();
        assert!(
            context
                .dockerfile
                .contains("COPY sandpit-build-ca.crt /etc/sandpit/build-ca.crt")
        );
        for (name, script) in context
            .files
            .iter()
            .filter(|(name, _)| name.ends_with(".sh"))
        {
            let script = String::from_utf8_lossy(script);
            assert!(
                script.contains("PIP_CERT=/etc/sandpit/build-ca.crt"),
                "{name}"
            );
            assert!(
                script.contains("NPM_CONFIG_CAFILE=/etc/sandpit/build-ca.crt"),
                "{name}"
            );
        }
    }

    #[test]
    fn builtins_generate_contexts() {
        for runtime in RuntimeSet::builtin().unwrap().iter() {
            let context = build_context(runtime, None).unwrap();
            assert!(context.dockerfile.contains("apt.sh"), "{}", runtime.name);
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("a'b"), r"'a'\''b'");
        assert_eq!(
            split_reference("debian:trixie-slim"),
            ("debian", "trixie-slim")
        );
        assert_eq!(
            split_reference("localhost:5000/x"),
            ("localhost:5000/x", "latest")
        );
        assert_eq!(split_reference("alpine"), ("alpine", "latest"));
    }

    #[test]
    fn context_archive_holds_every_file() {
        let context = build_context(&runtime("system_packages = [\"python3\"]"), None).unwrap();
        let archive = context_tar(&context).unwrap();
        let mut reader = tar::Archive::new(archive.as_slice());
        let names: Vec<String> = reader
            .entries()
            .unwrap()
            .map(|entry| entry.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, vec!["Dockerfile", "apt.sh"]);
    }
}
