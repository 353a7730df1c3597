//! Bearer tokens: 401 without, with a wrong or an expired token; 403 for a role an endpoint does
//! not allow; each role answered with its own share of the data; open local mode without tokens
//! and its refusal to listen beyond loopback.

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_decide_who_gets_in_and_what_they_see() {
    let (_tmp, app) = app("").await;
    let query = serde_json::json!({ "sql": "select count(*) as n from deals" }).to_string();

    // No token, a wrong one, a malformed header, an expired one: 401 with a stable code.
    for (token, code) in
        [(None, "unauthorized"), (Some("not-a-token"), "invalid_token"), (Some(EXPIRED), "token_expired")]
    {
        let (status, headers, body) = call(&app, "POST", "/api/v1/sql", token, Some(query.clone())).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(headers.get("www-authenticate").and_then(|v| v.to_str().ok()), Some("Bearer"));
        let v: Value = serde_json::from_slice(&body).expect("json error");
        assert_eq!(v["code"], code, "{token:?}: {v}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let req = axum::http::Request::builder()
        .method("GET")
        .uri("/api/v1/tables")
        .header("authorization", format!("Basic {ADMIN}"))
        .body(axum::body::Body::empty())
        .expect("request");
    let response = tower::ServiceExt::oneshot(app.clone(), req).await.expect("answers");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // The token is compared whole: a prefix or the token with a suffix is not it.
    for near in [&ADMIN[..ADMIN.len() - 1], &format!("{ADMIN}x")] {
        assert_eq!(call(&app, "GET", "/api/v1/tables", Some(near), None).await.0, StatusCode::UNAUTHORIZED);
    }
    // The data endpoint refuses before it reads the body: no token and a broken body is 401.
    assert_eq!(call(&app, "POST", "/api/v1/sql", None, Some("{".into())).await.0, StatusCode::UNAUTHORIZED);

    // Each role: the count it may see (msk 3 deals, h1 = msk + spb = 5, everyone else 7).
    for (token, expected) in [(ADMIN, "7"), (ANALYST, "7"), (MSK, "3"), (H1, "5")] {
        assert_eq!(scalar(&app, token, "select count(*) as n from deals").await, expected, "{token}");
    }

    // /metrics is for admins: 403 with a code for the others, 200 for the admin.
    for token in [ANALYST, MSK, H1] {
        let (status, _, body) = call(&app, "GET", "/metrics", Some(token), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{token}");
        let v: Value = serde_json::from_slice(&body).expect("json error");
        assert_eq!(v["code"], "forbidden");
    }
    assert_eq!(call(&app, "GET", "/metrics", Some(ADMIN), None).await.0, StatusCode::OK);
    assert_eq!(call(&app, "GET", "/metrics", None, None).await.0, StatusCode::UNAUTHORIZED);

    // Liveness, readiness and the page itself need no token.
    for path in ["/healthz", "/readyz", "/"] {
        assert_eq!(call(&app, "GET", path, None, None).await.0, StatusCode::OK, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_tokens_is_open_local_mode_and_loopback_only() {
    let (_tmp, project, wh) = project("");
    let state = dealhouse_api::AppState::new(project.clone(), wh.clone()).await.expect("state");
    assert!(state.is_open());
    let app = dealhouse_api::router(state);
    assert_eq!(scalar(&app, "anything", "select count(*) as n from deals").await, "7");
    let (status, v) = sql(&app, None, "select count(*) as n from deals").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(call(&app, "GET", "/metrics", None, None).await.0, StatusCode::OK);

    let e = dealhouse_api::serve(project, wh, "0.0.0.0:0").await.expect_err("must refuse").to_string();
    assert!(e.contains("refusing to serve on 0.0.0.0:0 without API tokens"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_file_adds_tokens_and_bad_tokens_are_config_errors() {
    let (tmp, _, _) = project("");
    std::fs::write(
        tmp.path().join("tokens.toml"),
        format!(
            "[tokens.filed]\nsha256 = \"{}\"\nrole = \"branch\"\nbranches = [\"nsk\"]\n",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"from-a-file"))
        ),
    )
    .expect("write tokens file");
    let text = std::fs::read_to_string(tmp.path().join("dealhouse.toml")).expect("project");
    std::fs::write(tmp.path().join("dealhouse.toml"), format!("{text}\n[server]\ntokens_file = \"tokens.toml\"\n"))
        .expect("write");
    let project = std::sync::Arc::new(dealhouse_warehouse::Project::load(tmp.path()).expect("loads"));
    let wh = dealhouse_warehouse::Warehouse::new(project.warehouse_url().expect("url"), Default::default());
    let app = dealhouse_api::router(dealhouse_api::AppState::new(project, wh).await.expect("state"));
    // nsk: 2 deals.
    assert_eq!(scalar(&app, "from-a-file", "select count(*) from deals").await, "2");
    assert_eq!(call(&app, "GET", "/api/v1/tables", None, None).await.0, StatusCode::UNAUTHORIZED);

    // A token scoped to an undeclared branch, or a plain token where the hash goes, is refused
    // when the file loads, naming the key.
    for (bad, key) in [
        ("[tokens.x]\nsha256 = \"00\"\nrole = \"admin\"\n", "tokens.x.sha256"),
        (
            &*format!("[tokens.x]\nsha256 = \"{}\"\nrole = \"branch\"\nbranches = [\"ekb\"]\n", "ab".repeat(32)),
            "tokens.x.branches",
        ),
        (&*format!("[tokens.x]\nsha256 = \"{}\"\nrole = \"branch\"\n", "ab".repeat(32)), "tokens.x.branches"),
        (&*format!("[tokens.x]\nsha256 = \"{}\"\nrole = \"root\"\n", "ab".repeat(32)), "tokens.x.role"),
    ] {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("dealhouse.toml"), format!("{text}\n{bad}")).expect("write");
        let e = dealhouse_warehouse::Project::load(dir.path()).expect_err("invalid token").to_string();
        assert!(e.contains(key), "{bad}: {e}");
    }
}
