//! `max_sessions` is enforced. In its own test binary, so no other test
//! creates sessions while it counts.

mod common;

use sandpit::engine::policy::PolicyOverrides;

#[tokio::test]
async fn creating_past_max_sessions_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let engine = common::engine().await;
    let existing = engine.list_sandboxes().await.unwrap().len();
    let (first, second) = (
        common::test_user("max-first"),
        common::test_user("max-second"),
    );
    let _cleanup = common::Cleanup(vec![first.container_name(), second.container_name()]);
    let manager = common::manager(root.path(), |config| {
        config.max_sessions = Some(existing + 1)
    })
    .await;
    manager
        .get_or_create(&first, None, &PolicyOverrides::default(), &mut |_| {})
        .await
        .expect("one more session fits");
    let err = manager
        .get_or_create(&second, None, &PolicyOverrides::default(), &mut |_| {})
        .await
        .expect_err("past max_sessions");
    assert!(err.to_string().contains("max_sessions"), "{err}");
    assert!(
        engine.find_sandbox(&second).await.unwrap().is_none(),
        "nothing created"
    );
    assert!(!root.path().join(second.as_str()).exists());
    // An existing session is still handed out.
    manager
        .get_or_create(&first, None, &PolicyOverrides::default(), &mut |_| {})
        .await
        .expect("the existing session");
    manager.destroy(&first, true).await.unwrap();
}
