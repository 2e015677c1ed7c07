//! HTTPS upstreams: pingora's TLS (rustls) connector, for a REST provider and for an MCP
//! server at `/mcp/{server}`, verifying the upstream's certificate against the CA the
//! operator trusts (`SSL_CERT_FILE`), and refusing an untrusted one.

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
