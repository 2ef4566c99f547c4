//! Every built-in runtime builds on the real engine and runs a real program,
//! with a workspace folder mounted over its work dir.

mod common;

use sandpit::engine::images::{BuildEvent, image_ref};
use sandpit::engine::runtimes::{Origin, parse_runtimes};

#[tokio::test]
async fn python_minimal_runs_python_3() {
    let workspace = tempfile::tempdir().unwrap();
    let output = common::build_and_run(
        "python-minimal",
        workspace.path(),
        &[(
            "main.py",
            "import sys\nprint('%d.%d' % sys.version_info[:2])\n",
        )],
        &["python3", "main.py"],
    )
    .await;
    assert!(output.stdout.trim().starts_with("3."), "{}", output.stdout);
}

const DATASCIENCE_PROGRAM: &str = r#"
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from sklearn.linear_model import LinearRegression

frame = pd.DataFrame({"x": np.arange(20, dtype=float)})
frame["y"] = 3.0 * frame["x"] + 1.0
model = LinearRegression().fit(frame[["x"]], frame["y"])
print(f"slope={model.coef_[0]:.3f} intercept={model.intercept_:.3f}")
ax = sns.scatterplot(data=frame, x="x", y="y")
ax.figure.savefig("plot.png")
print("saved")
"#;

#[tokio::test]
async fn python_datascience_fits_a_model_and_saves_a_figure() {
    let workspace = tempfile::tempdir().unwrap();
    let output = common::build_and_run(
        "python-datascience",
        workspace.path(),
        &[("main.py", DATASCIENCE_PROGRAM)],
        &["python3", "main.py"],
    )
    .await;
    assert!(
        output.stdout.contains("slope=3.000 intercept=1.000"),
        "{}",
        output.stdout
    );
    let png = std::fs::read(workspace.path().join("plot.png")).expect("plot.png was written");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "plot.png is not a PNG"
    );
}

const WEB_PROGRAM: &str = r#"
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Column, Integer, String, create_engine, select
from sqlalchemy.orm import Session, declarative_base
from sqlalchemy.pool import StaticPool

engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)
Base = declarative_base()

class Item(Base):
    __tablename__ = "items"
    id = Column(Integer, primary_key=True)
    name = Column(String)

Base.metadata.create_all(engine)
with Session(engine) as session:
    session.add(Item(name="sandpit"))
    session.commit()

app = FastAPI()

@app.get("/items/{item_id}")
def read_item(item_id: int):
    with Session(engine) as session:
        item = session.scalars(select(Item).where(Item.id == item_id)).one()
        return {"id": item.id, "name": item.name}

response = TestClient(app).get("/items/1")
print(response.status_code, response.json())
import httpx, uvicorn
print("httpx", httpx.__version__, "uvicorn", uvicorn.__version__)
"#;

#[tokio::test]
async fn python_web_serves_a_request_from_sqlite() {
    let workspace = tempfile::tempdir().unwrap();
    let output = common::build_and_run(
        "python-web",
        workspace.path(),
        &[("main.py", WEB_PROGRAM)],
        &["python3", "main.py"],
    )
    .await;
    assert!(
        output.stdout.contains("200 {'id': 1, 'name': 'sandpit'}"),
        "{}",
        output.stdout
    );
}

#[tokio::test]
async fn node_minimal_is_node_20() {
    let workspace = tempfile::tempdir().unwrap();
    let output = common::build_and_run(
        "node-minimal",
        workspace.path(),
        &[("main.js", "console.log(process.version);\n")],
        &["node", "main.js"],
    )
    .await;
    assert!(
        output.stdout.trim().starts_with("v20."),
        "{}",
        output.stdout
    );
}

const TSCONFIG: &str = r#"{
  "compilerOptions": {
    "target": "ES2020",
    "module": "ESNext",
    "moduleResolution": "bundler",
    "jsx": "react-jsx",
    "strict": true,
    "skipLibCheck": true,
    "noEmit": true
  },
  "include": ["src"]
}
"#;

const INDEX_HTML: &str = r#"<!doctype html>
<html><body><div id="root"></div><script type="module" src="/src/main.tsx"></script></body></html>
"#;

const APP_TSX: &str = r#"type GreetingProps = { name: string; count: number };

export function Greeting({ name, count }: GreetingProps) {
  return <p>hello {name}, {count} times</p>;
}
"#;

const MAIN_TSX: &str = r#"import { createRoot } from "react-dom/client";
import { Greeting } from "./App";

const root = document.getElementById("root");
if (root) {
  createRoot(root).render(<Greeting name="sandpit" count={3} />);
}
"#;

#[tokio::test]
async fn node_react_type_checks_and_builds_with_vite() {
    let workspace = tempfile::tempdir().unwrap();
    common::build_and_run(
        "node-react",
        workspace.path(),
        &[
            ("tsconfig.json", TSCONFIG),
            ("index.html", INDEX_HTML),
            ("src/App.tsx", APP_TSX),
            ("src/main.tsx", MAIN_TSX),
        ],
        &[
            "sh",
            "-c",
            "tsc --noEmit -p . && vite build --logLevel warn",
        ],
    )
    .await;
    let dist = workspace.path().join("dist");
    let index =
        std::fs::read_to_string(dist.join("index.html")).expect("vite wrote dist/index.html");
    assert!(index.contains("<script"), "{index}");
    let bundle = std::fs::read_dir(dist.join("assets"))
        .expect("vite wrote dist/assets")
        .filter_map(Result::ok)
        .find(|entry| entry.file_name().to_string_lossy().ends_with(".js"))
        .expect("a JS bundle");
    let bundle = std::fs::read_to_string(bundle.path()).unwrap();
    assert!(bundle.contains("times"), "the component is in the bundle");

    // A type error is caught by tsc.
    std::fs::write(
        workspace.path().join("src/main.tsx"),
        MAIN_TSX.replace("count={3}", "count=\"three\""),
    )
    .unwrap();
    let engine = common::engine().await;
    let runtime = common::builtin("node-react");
    let output = common::run_once(
        &engine,
        &image_ref(&runtime),
        workspace.path(),
        &runtime.work_dir,
        &["tsc", "--noEmit", "-p", "."],
    )
    .await;
    assert_ne!(output.exit_code, 0, "tsc accepted a string for a number");
    assert!(output.stdout.contains("TS2322"), "{}", output.stdout);
}

fn probe_runtime(name: &str, setup: &str) -> sandpit::engine::runtimes::Runtime {
    let text = format!(
        "[[runtime]]\nname = \"{name}\"\nlanguage = \"shell\"\nbase_image = \"debian:trixie-slim\"\nsetup = [\"{setup}\"]\n"
    );
    parse_runtimes(&text, "probe.toml", Origin::Builtin)
        .unwrap()
        .remove(0)
}

#[tokio::test]
async fn unchanged_runtime_is_cached_and_a_changed_one_rebuilds() {
    let engine = common::engine().await;
    let name = format!("test-cache-probe-{}", std::process::id());
    let first = probe_runtime(&name, "echo one > /probe");

    let (tag, events) = common::build(&engine, &first).await;
    assert!(
        events.iter().any(|e| matches!(e, BuildEvent::Built { .. })),
        "first build builds: {events:?}"
    );
    let image_id = engine.docker().inspect_image(&tag).await.unwrap().id;

    let (again, events) = common::build(&engine, &first).await;
    assert_eq!(tag, again);
    assert_eq!(events, vec![BuildEvent::Cached { tag: tag.clone() }]);
    assert_eq!(
        engine.docker().inspect_image(&tag).await.unwrap().id,
        image_id
    );
    assert_eq!(
        engine.image_state(&first).await.unwrap(),
        sandpit::engine::images::ImageState::Built
    );

    let changed = probe_runtime(&name, "echo two > /probe");
    let changed_tag = image_ref(&changed);
    assert_ne!(tag, changed_tag);
    assert_eq!(
        engine.image_state(&changed).await.unwrap(),
        sandpit::engine::images::ImageState::Stale,
        "an older image of the runtime exists"
    );
    let (built, events) = common::build(&engine, &changed).await;
    assert_eq!(built, changed_tag);
    assert!(events.iter().any(|e| matches!(e, BuildEvent::Log(_))));

    let workspace = tempfile::tempdir().unwrap();
    let output = common::run_once(
        &engine,
        &built,
        workspace.path(),
        "/workspace",
        &["cat", "/probe"],
    )
    .await;
    assert_eq!(output.stdout.trim(), "two");

    // Pruning keeps what current runtimes use and removes the outdated probe.
    let mut current: Vec<String> = sandpit::engine::runtimes::RuntimeSet::builtin()
        .unwrap()
        .iter()
        .map(image_ref)
        .collect();
    current.push(changed_tag.clone());
    let removed = engine.prune_images(&current).await.unwrap();
    assert!(removed.contains(&tag), "{removed:?}");
    assert!(!engine.image_exists(&tag).await.unwrap());
    assert!(engine.image_exists(&changed_tag).await.unwrap());
    engine
        .docker()
        .remove_image(
            &changed_tag,
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn missing_base_image_without_registry_names_the_fix() {
    let engine = common::engine().await;
    // A Debian base can be made offline; any other must be loaded.
    for (base, fix) in [
        (
            "debian:sandpit-no-such-suite",
            "scripts/offline-base-image debian:sandpit-no-such-suite",
        ),
        ("sandpit-test/no-such-base:1", "docker load"),
    ] {
        let text = format!(
            "[[runtime]]\nname = \"test-missing-base\"\nlanguage = \"shell\"\nbase_image = \"{base}\"\n"
        );
        let runtime = parse_runtimes(&text, "t.toml", Origin::Builtin)
            .unwrap()
            .remove(0);
        let err = engine
            .build_runtime(&runtime, &common::build_options(), &mut |_| {})
            .await
            .expect_err("no registry here, so the base cannot be pulled");
        let text = format!("{err:#}");
        assert!(text.contains(&format!("image `{base}`")), "{text}");
        assert!(text.contains(fix), "{text}");
        assert!(
            !engine.image_exists(&image_ref(&runtime)).await.unwrap(),
            "nothing half-built"
        );
    }
}
