//! HTTPS upstreams: pingora's TLS (rustls) connector, for a REST provider and for an MCP
//! server at `/mcp/{server}`, and the upstream MCP client (`fastmcp discover`), verifying the
//! upstream's certificate against the CA the operator trusts (`SSL_CERT_FILE`), and
//! refusing an untrusted one.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::*;
use serde_json::{json, Value};

/// A test CA and a localhost / 127.0.0.1 server certificate it signed: (CA, cert, key).
fn certificates(dir: &std::path::Path) -> (PathBuf, PathBuf, PathBuf) {
    let p = |f: &str| dir.join(f).display().to_string();
    std::fs::write(dir.join("leaf.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
        .expect("ext");
    let steps: [Vec<String>; 3] = [
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=fastmcp-test-ca", "-keyout"]
            .iter()
            .map(|s| s.to_string())
            .chain([p("ca.key"), "-out".into(), p("ca.pem")])
            .collect(),
        ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout"]
            .iter()
            .map(|s| s.to_string())
            .chain([p("key.pem"), "-out".into(), p("leaf.csr")])
            .collect(),
        ["x509", "-req", "-days", "1", "-CAcreateserial", "-in"]
            .iter()
            .map(|s| s.to_string())
            .chain([p("leaf.csr"), "-CA".into(), p("ca.pem"), "-CAkey".into(), p("ca.key")])
            .chain(["-extfile".into(), p("leaf.ext"), "-out".into(), p("cert.pem")])
            .collect(),
    ];
    for args in steps {
        let ok = Command::new("openssl").args(&args).stdout(Stdio::null()).stderr(Stdio::null()).status();
        assert!(ok.expect("openssl").success(), "openssl {args:?}");
    }
    (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"))
}

struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tls_fake(dir: &std::path::Path, cert: &std::path::Path, key: &std::path::Path) -> (Child, u16) {
    let port = free_port();
    let mut child = Command::new(python())
        .arg(repo().join("tests/py/tls_fake.py"))
        .args(["--port", &port.to_string(), "--cert"])
        .arg(cert)
        .arg("--key")
        .arg(key)
        .stderr(Stdio::from(std::fs::File::create(dir.join("tls_fake.log")).expect("log")))
        .spawn()
        .expect("tls fake");
    wait_for_port(port, "tls fake", Some(&mut child));
    (Child(child), port)
}

fn gateway(tag: &str, port: u16, ca: Option<&std::path::Path>) -> Gateway {
    let yaml = format!(
        "providers:\n  http:\n    pipedrive_base_url: \"https://localhost:{port}/api/v1\"\n  credentials:\n    pipedrive: {{kind: static, secret: \"pd\"}}\nmcp:\n  servers:\n    secure:\n      url: \"https://localhost:{port}/mcp\"\n      discover: false\n      tool_tags: {{echo: []}}\n"
    );
    let mut b = Gateway::builder(tag).config(&yaml);
    if let Some(ca) = ca {
        b = b.env("SSL_CERT_FILE", &ca.display().to_string());
    }
    b.start()
}

#[test]
fn https_upstreams_are_verified_against_the_trusted_ca() {
    let dir = temp_dir("tls");
    let (ca, cert, key) = certificates(&dir);
    let (_fake, port) = tls_fake(&dir, &cert, &key);

    let gw = gateway("tls-trusted", port, Some(&ca));
    let sales = gw.mint("s", "acme", "sales-write");
    let auth = format!("Bearer {sales}");
    let r =
        http("POST", &gw.url("/tools/pipedrive:createDeal/invoke"), &[("authorization", &auth)], br#"{"title":"t"}"#);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["result"], json!({"path": "/api/v1/deals", "method": "POST"}));
    let admin = gw.mint("root", "acme", "mcp-admin");
    let r = mcp_post(&gw.url("/mcp/secure"), Some(&admin), &tools_call(1, "echo", json!({})), &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["result"]["content"][0]["text"], "tls ok");

    // Without trusting that CA the same upstreams fail closed: 502, nothing answered by them.
    let untrusting = gateway("tls-untrusted", port, None);
    let sales = untrusting.mint("s", "acme", "sales-write");
    let r = http(
        "POST",
        &untrusting.url("/tools/pipedrive:createDeal/invoke"),
        &[("authorization", &format!("Bearer {sales}"))],
        br#"{"title":"t"}"#,
    );
    assert_eq!(r.status, 502, "{}", String::from_utf8_lossy(&r.body));
    let admin = untrusting.mint("root", "acme", "mcp-admin");
    let r = mcp_post(&untrusting.url("/mcp/secure"), Some(&admin), &tools_call(1, "echo", json!({})), &[]);
    assert_eq!(r.status, 502);
    let _: Value = r.json();
}

/// Runs `fastmcp discover --config <config>` with only `ca` (if any) as `SSL_CERT_FILE`.
fn discover(dir: &std::path::Path, config: &std::path::Path, ca: Option<&std::path::Path>) -> (i32, Value) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fastmcp"));
    cmd.arg("discover").arg("--config").arg(config).current_dir(dir);
    cmd.env_remove("SSL_CERT_FILE").env_remove("SSL_CERT_DIR");
    if let Some(ca) = ca {
        cmd.env("SSL_CERT_FILE", ca);
    }
    let out = cmd.output().expect("run fastmcp discover");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let parsed = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout} / {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), parsed)
}

#[test]
fn the_mcp_client_verifies_https_upstreams_against_ssl_cert_file() {
    let dir = temp_dir("tls-discover");
    let (ca, cert, key) = certificates(&dir);
    let (_fake, port) = tls_fake(&dir, &cert, &key);
    let config = dir.join("config.yaml");
    let yaml = format!(
        "mcp:\n  discovery_retries: 0\n  discovery_backoff_ms: 10\n  servers:\n    secure:\n      url: \"https://localhost:{port}/mcp\"\n"
    );
    std::fs::write(&config, yaml).expect("config");

    // Trusting the private CA, the client negotiates the stateless era over TLS and lists the
    // tools (the fake checks the `Mcp-Method` / `Mcp-Name` headers of every request).
    let (code, out) = discover(&dir, &config, Some(&ca));
    let secure = &out["servers"]["secure"];
    assert_eq!(code, 0, "{out}");
    assert_eq!(secure["status"], "Up", "{out}");
    assert_eq!(secure["era"], "Stateless20260728", "{out}");
    assert_eq!(secure["tools"][0]["description"], "TLS echo", "{out}");

    // Without it (ureq's built-in roots would not know the CA either) the handshake fails.
    let (code, out) = discover(&dir, &config, None);
    let error = out["servers"]["secure"]["status"]["Down"]["error"].as_str().unwrap_or_default().to_string();
    assert_eq!(code, 1, "{out}");
    assert!(error.to_ascii_lowercase().contains("certificate") || error.contains("UnknownIssuer"), "{out}");
}
