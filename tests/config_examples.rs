//! Every example configuration in `conf/examples/` starts today's binary: the gateway comes
//! up on it, answers `/health` and `/ready`, and authenticates a token minted for it.
//! Listeners, data and audit directories are moved to the test's own (the harness's env);
//! every `*_env:` variable an example names (secrets a deployment provides) gets a dummy.

mod common;

use common::{http, Gateway};

fn examples() -> Vec<std::path::PathBuf> {
    let dir = common::repo().join("conf/examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        // It names certificate files of a mesh; `config::listener`'s unit tests load it, and
        // tests/listener_tls.rs runs the same settings with a CA it creates.
        .filter(|p| p.file_name().is_none_or(|n| n != "sidecar-mtls.yaml"))
        .collect();
    files.sort();
    files
}

/// Names of the environment variables an example reads secrets from (`secret_env: NAME`,
/// `client_secret_env: NAME`, ...).
fn secret_env_names(yaml: &str) -> Vec<String> {
    yaml.lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .filter_map(|l| l.split_once("_env:").map(|(_, v)| v.trim().trim_matches('"').to_string()))
        .filter(|v| !v.is_empty())
        .collect()
}

#[test]
fn every_example_config_starts_the_gateway() {
    let files = examples();
    assert!(!files.is_empty(), "conf/examples/ has no example");
    for path in files {
        let yaml = std::fs::read_to_string(&path).expect("read example");
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("example").to_string();
        let mut b = Gateway::builder(&format!("example-{name}")).config(&yaml);
        for var in secret_env_names(&yaml) {
            b = b.env(&var, "dummy-secret-for-the-test");
        }
        let mut gw = b.start();
        let health = http("GET", &gw.admin_url("/health"), &[], b"");
        assert_eq!(health.status, 200, "{}: /health; log:\n{}", path.display(), gw.log());
        let ready = http("GET", &gw.admin_url("/ready"), &[], b"");
        assert_eq!(ready.status, 200, "{}: /ready; log:\n{}", path.display(), gw.log());
        // A token minted for this configuration (its issuer and audience) is accepted; no
        // token is refused.
        let token = gw.mint("agent", "acme", "agent");
        let auth = format!("Bearer {token}");
        let catalog = http("GET", &gw.url("/tool-catalog"), &[("authorization", &auth)], b"");
        assert_eq!(
            catalog.status,
            200,
            "{}: /tool-catalog with a token: {}",
            path.display(),
            String::from_utf8_lossy(&catalog.body)
        );
        let anon = http("GET", &gw.url("/tool-catalog"), &[], b"");
        assert_eq!(anon.status, 401, "{}: /tool-catalog without a token", path.display());
        gw.stop();
    }
}

#[test]
fn secret_env_names_are_found() {
    let names = secret_env_names(
        "crm:\n  secret_env: CRM_API_KEY\n  # client_secret_env: NOT_THIS\n  client_secret_env: \"B\"\n",
    );
    assert_eq!(names, vec!["CRM_API_KEY".to_string(), "B".to_string()]);
}
