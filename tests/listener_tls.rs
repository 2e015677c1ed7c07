//! TLS and mTLS on the gateway's own listeners (issue 14), against the real binary and a
//! private CA each test creates with the openssl CLI:
//!
//! - mTLS (`REQUIRE_MTLS=true`): no client certificate, or one from another CA, is refused in
//!   the handshake; a valid certificate whose SAN is not the JWT's subject, under the sidecar
//!   rule (`params.peer_must_match_subject`), gets 403; the matching pair gets 200.
//! - a rotated certificate on disk is served to new connections without a restart, while a
//!   connection opened before keeps working; TLS and mTLS on the admin listener.
//! - `public_url` behind a TLS terminator: the official Python SDK's OAuth client, given the
//!   401, fetches the metadata at the public URL and accepts its `resource`; `X-Forwarded-*`
//!   counts only from `trusted_proxies`.

mod common;

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{json, Value};

fn openssl(args: &[&str]) {
    let ok = Command::new("openssl").args(args).stdout(Stdio::null()).stderr(Stdio::null()).status();
    assert!(ok.expect("openssl").success(), "openssl {args:?}");
}

/// A CA (`{name}.pem`, `{name}.key`) in `dir`.
fn ca(dir: &Path, name: &str) -> PathBuf {
    let (pem, key) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
    let subj = format!("/CN={name}");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "1",
        "-subj",
        &subj,
        "-keyout",
        s(&key),
        "-out",
        s(&pem),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    pem
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A leaf `{name}.pem` / `{name}.key` signed by CA `ca_name`, with `san` and `usage`
/// (`serverAuth` or `clientAuth`).
fn leaf(dir: &Path, ca_name: &str, name: &str, san: &str, usage: &str) -> (PathBuf, PathBuf) {
    let (pem, key, csr, ext) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.csr")),
        dir.join(format!("{name}.ext")),
    );
    std::fs::write(&ext, format!("subjectAltName={san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage={usage}\n"))
        .expect("ext");
    let subj = format!("/CN={name}");
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        &subj,
        "-keyout",
        s(&key),
        "-out",
        s(&csr),
    ]);
    let (ca_pem, ca_key) = (dir.join(format!("{ca_name}.pem")), dir.join(format!("{ca_name}.key")));
    openssl(&[
        "x509",
        "-req",
        "-days",
        "1",
        "-in",
        s(&csr),
        "-CA",
        s(&ca_pem),
        "-CAkey",
        s(&ca_key),
        "-CAcreateserial",
        "-extfile",
        s(&ext),
        "-out",
        s(&pem),
    ]);
    (pem, key)
}

fn server_leaf(dir: &Path, ca_name: &str, name: &str) -> (PathBuf, PathBuf) {
    leaf(dir, ca_name, name, "DNS:localhost,IP:127.0.0.1", "serverAuth")
}

fn certs(path: &Path) -> Vec<CertificateDer<'static>> {
    let pem = std::fs::read(path).expect("read pem");
    rustls_pemfile::certs(&mut pem.as_slice()).collect::<Result<_, _>>().expect("pem certs")
}

fn key(path: &Path) -> PrivateKeyDer<'static> {
    let pem = std::fs::read(path).expect("read key");
    rustls_pemfile::private_key(&mut pem.as_slice()).expect("pem key").expect("a key")
}

/// A TLS client trusting `ca`, presenting `client` (cert, key) if given.
fn client_config(ca: &Path, client: Option<(&Path, &Path)>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(ca) {
        roots.add(c).expect("root");
    }
    let b = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    Arc::new(match client {
        None => b.with_no_client_auth(),
        Some((cert, k)) => b.with_client_auth_cert(certs(cert), key(k)).expect("client cert"),
    })
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn connect(port: u16, cfg: Arc<rustls::ClientConfig>) -> Tls {
    let conn = rustls::ClientConnection::new(cfg, ServerName::try_from("localhost").expect("name")).expect("client");
    let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(30))).ok();
    rustls::StreamOwned::new(conn, tcp)
}

fn request_bytes(method: &str, path: &str, port: u16, headers: &[(&str, &str)], body: &[u8], close: bool) -> Vec<u8> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nhost: localhost:{port}\r\ncontent-length: {}\r\n", body.len());
    if close {
        req.push_str("connection: close\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut out = req.into_bytes();
    out.extend_from_slice(body);
    out
}

/// One HTTPS request on a new connection: the response, or the TLS/IO error that ended it
/// (a refused client certificate surfaces as an alert on the client's first read in TLS 1.3).
fn https(
    port: u16,
    cfg: Arc<rustls::ClientConfig>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Resp, String> {
    let mut tls = connect(port, cfg);
    tls.write_all(&request_bytes(method, path, port, headers, body, true)).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    tls.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    if raw.is_empty() {
        return Err("connection closed without a response".into());
    }
    Ok(read_response(&mut raw.as_slice()))
}

/// The leaf certificate the server presents to a new connection.
fn served_leaf(port: u16, cfg: Arc<rustls::ClientConfig>) -> CertificateDer<'static> {
    let mut tls = connect(port, cfg);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).expect("handshake");
    }
    tls.conn.peer_certificates().expect("server certificate")[0].clone().into_owned()
}

fn body(r: &Resp) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

const AGENT: &str = "spiffe://acme.example/agent-1";

/// The shipped policies with the sidecar rule switched on.
fn sidecar_policies(dir: &Path) -> PathBuf {
    let shipped = std::fs::read_to_string(repo().join("policies/policies.yml")).expect("policies");
    let on = shipped.replace("peer_must_match_subject: false", "peer_must_match_subject: true");
    assert_ne!(on, shipped, "the shipped policies carry the sidecar switch");
    let path = dir.join("policies.yml");
    std::fs::write(&path, on).expect("write policies");
    path
}

#[test]
fn mtls_refuses_missing_and_foreign_certificates_and_the_sidecar_rule_binds_the_san_to_the_jwt() {
    let dir = temp_dir("mtls");
    let ca_pem = ca(&dir, "ca");
    ca(&dir, "other-ca");
    let (srv_cert, srv_key) = server_leaf(&dir, "ca", "server");
    let (agent_cert, agent_key) =
        leaf(&dir, "ca", "agent-1", &format!("URI:{AGENT},DNS:agent-1.acme.svc"), "clientAuth");
    let (foreign_cert, foreign_key) = leaf(&dir, "other-ca", "intruder", &format!("URI:{AGENT}"), "clientAuth");
    let upstream = json_ok_upstream();
    let crm = fake_upstream(|_head, _body, s| {
        let b = r#"{"success":true,"data":{"id":7}}"#;
        let _ =
            write!(s, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{b}", b.len());
    });
    let policies = sidecar_policies(&dir);
    let yaml = format!(
        "providers:\n  http:\n    pipedrive_base_url: \"http://127.0.0.1:{crm}/api/v1\"\n  credentials:\n    pipedrive: {{kind: static, secret: \"pd\"}}\nmcp:\n  servers:\n    up:\n      url: \"http://127.0.0.1:{upstream}/mcp\"\n      discover: false\n      tool_tags: {{echo: []}}\n"
    );
    let gw = Gateway::builder("mtls")
        .config(&yaml)
        .env("REQUIRE_MTLS", "true")
        .env("FASTMCP__TLS__CERT_FILE", s(&srv_cert))
        .env("FASTMCP__TLS__KEY_FILE", s(&srv_key))
        .env("FASTMCP__TLS__CLIENT_CA_FILE", s(&ca_pem))
        .env("FASTMCP_POLICIES", s(&policies))
        .start();
    // The REST door (a policy denial is 403 there).
    let call_as = |client: Option<(&Path, &Path)>, jwt: &str| {
        let auth = format!("Bearer {jwt}");
        let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
        let path = "/tools/pipedrive:createDeal/invoke";
        https(gw.port, client_config(&ca_pem, client), "POST", path, &headers, br#"{"title":"t"}"#)
    };
    let agent_jwt = gw.mint(AGENT, "acme", "sales-write");

    // No client certificate: the handshake is refused, nothing is answered.
    // (TLS 1.3: the server's alert reaches the client on its first read.)
    match call_as(None, &agent_jwt) {
        Err(e) => assert!(e.contains("CertificateRequired"), "refused by the server's alert: {e}"),
        Ok(r) => panic!("no client certificate must not get a response: {}", r.status),
    }
    // A certificate from another CA, even naming the right workload: refused.
    match call_as(Some((&foreign_cert, &foreign_key)), &agent_jwt) {
        Err(e) => assert!(e.contains("alert"), "refused by the server's alert: {e}"),
        Ok(r) => panic!("a foreign CA's certificate must not get a response: {}", r.status),
    }
    // Plain HTTP to the TLS listener gets no HTTP answer either.
    let plain = TcpStream::connect(("127.0.0.1", gw.port)).and_then(|mut t| {
        t.set_read_timeout(Some(Duration::from_secs(10)))?;
        t.write_all(b"GET /health HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")?;
        let mut out = Vec::new();
        let _ = t.read_to_end(&mut out);
        Ok(out)
    });
    assert!(!plain.unwrap_or_default().starts_with(b"HTTP/"), "plain HTTP is not served on the TLS listener");

    // A valid certificate, but the JWT is another workload's: the sidecar rule denies, 403.
    let other_jwt = gw.mint("spiffe://acme.example/agent-2", "acme", "sales-write");
    let r = call_as(Some((&agent_cert, &agent_key)), &other_jwt).expect("a valid certificate is accepted");
    assert_eq!(r.status, 403, "{}", body(&r));
    assert!(body(&r).contains("peer-does-not-match-subject"), "{}", body(&r));

    // The matching pair: 200 from the upstream; the DNS SAN matches too (case-insensitively).
    let r = call_as(Some((&agent_cert, &agent_key)), &agent_jwt).expect("valid pair");
    assert_eq!(r.status, 200, "{}", body(&r));
    assert_eq!(r.json()["result"], json!({"id": 7}));
    let dns_jwt = gw.mint("Agent-1.acme.svc", "acme", "sales-write");
    let r = call_as(Some((&agent_cert, &agent_key)), &dns_jwt).expect("valid pair (DNS)");
    assert_eq!(r.status, 200, "{}", body(&r));

    // The MCP door applies the same rule (a refused call is a JSON-RPC error there).
    let mcp = |jwt: &str| {
        let auth = format!("Bearer {jwt}");
        let headers = [
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
        ];
        let call = tools_call(1, "echo", json!({})).to_string();
        let cfg = client_config(&ca_pem, Some((&agent_cert, &agent_key)));
        https(gw.port, cfg, "POST", "/mcp/up", &headers, call.as_bytes()).expect("mcp over mTLS").json()
    };
    let denied = mcp(&gw.mint("spiffe://acme.example/agent-2", "acme", "mcp-admin"));
    assert_eq!(denied["error"]["code"], -32003, "{denied}");
    assert!(denied.to_string().contains("peer-does-not-match-subject"), "{denied}");
    let allowed = mcp(&gw.mint(AGENT, "acme", "mcp-admin"));
    assert_eq!(allowed["result"], json!({"content": []}), "{allowed}");

    // The audit trail names the refused subject with the sidecar rule.
    let audit = std::fs::read_dir(gw.audit_dir())
        .expect("audit dir")
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<String>();
    assert!(audit.contains("peer-does-not-match-subject"), "the denial is audited");
}

#[test]
fn a_rotated_certificate_is_served_to_new_connections_and_open_ones_keep_working() {
    let dir = temp_dir("tls-rotate");
    let ca_pem = ca(&dir, "ca");
    let (cert, key) = server_leaf(&dir, "ca", "served");
    let gw = Gateway::builder("tls-rotate")
        .env("FASTMCP__TLS__CERT_FILE", s(&cert))
        .env("FASTMCP__TLS__KEY_FILE", s(&key))
        .start();
    let cfg = client_config(&ca_pem, None);
    let first = certs(&cert)[0].clone();
    assert_eq!(served_leaf(gw.port, cfg.clone()), first);

    // A keep-alive connection opened before the rotation.
    let mut open = connect(gw.port, cfg.clone());
    open.write_all(&request_bytes("GET", "/health", gw.port, &[], b"", false)).expect("write");
    let mut reader = BufReader::new(open);
    assert_eq!(read_response(&mut reader).status, 200);

    // Rotation as cert-manager does it: new files renamed over the old ones.
    let (new_cert, new_key) = server_leaf(&dir, "ca", "rotated");
    let rotated = certs(&new_cert)[0].clone();
    assert_ne!(rotated, first);
    std::fs::rename(&new_key, &key).expect("rename key");
    std::fs::rename(&new_cert, &cert).expect("rename cert");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if served_leaf(gw.port, cfg.clone()) == rotated {
            break;
        }
        assert!(Instant::now() < deadline, "the rotated certificate was not served within 20 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(gw.log().contains("TLS certificate reloaded"), "{}", gw.log());

    // The connection from before still answers, on its old certificate.
    reader.get_mut().write_all(&request_bytes("GET", "/health", gw.port, &[], b"", false)).expect("write again");
    assert_eq!(read_response(&mut reader).status, 200);
    assert_eq!(reader.get_ref().conn.peer_certificates().expect("cert")[0], first);

    // Plain requests over TLS: the metadata names the gateway with https.
    let r = https(gw.port, cfg, "GET", "/.well-known/oauth-protected-resource/mcp", &[], b"").expect("metadata");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["resource"], format!("https://localhost:{}/mcp", gw.port));
}

#[test]
fn the_admin_listener_speaks_tls_and_can_require_client_certificates() {
    let dir = temp_dir("tls-admin");
    let ca_pem = ca(&dir, "ca");
    let (cert, key) = server_leaf(&dir, "ca", "admin");
    let (ops_cert, ops_key) = leaf(&dir, "ca", "ops", "URI:spiffe://acme.example/ops", "clientAuth");
    let gw = Gateway::builder("tls-admin")
        .env("FASTMCP__ADMIN__TLS__CERT_FILE", s(&cert))
        .env("FASTMCP__ADMIN__TLS__KEY_FILE", s(&key))
        .env("FASTMCP__ADMIN__TLS__CLIENT_CA_FILE", s(&ca_pem))
        .env("FASTMCP__ADMIN__REQUIRE_MTLS", "true")
        .start();
    // The gateway listener stays plain HTTP.
    assert_eq!(http("GET", &gw.url("/health"), &[], b"").status, 200);

    match https(gw.admin_port, client_config(&ca_pem, None), "GET", "/health", &[], b"") {
        Err(e) => assert!(e.contains("CertificateRequired"), "refused by the server's alert: {e}"),
        Ok(r) => panic!("the admin listener requires a client certificate: {}", r.status),
    }
    let with = client_config(&ca_pem, Some((&ops_cert, &ops_key)));
    let r = https(gw.admin_port, with.clone(), "GET", "/health", &[], b"").expect("admin over mTLS");
    assert_eq!(r.status, 200, "{}", body(&r));
    // The certificate opens the connection only: admin routes still need a credential.
    let r = https(gw.admin_port, with.clone(), "GET", "/admin/holds", &[], b"").expect("admin route");
    assert_eq!(r.status, 401, "{}", body(&r));
    let auth = format!("Bearer {}", gw.admin_jwt());
    let r = https(gw.admin_port, with, "GET", "/admin/holds", &[("authorization", &auth)], b"").expect("admin");
    assert_eq!(r.status, 200, "{}", body(&r));
}

struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn behind_a_tls_terminator_the_python_sdk_fetches_the_metadata_at_public_url() {
    let dir = temp_dir("public-url");
    let ca_pem = ca(&dir, "ca");
    let (cert, key) = server_leaf(&dir, "ca", "edge");
    let edge_port = free_port();
    let public = format!("https://localhost:{edge_port}");
    // An authorization server that is not there: the SDK's flow stops after discovery.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let upstream = json_ok_upstream();
    let yaml = format!(
        "mcp:\n  servers:\n    up:\n      url: \"http://127.0.0.1:{upstream}/mcp\"\n      discover: false\n      tool_tags: {{wipe: [destructive]}}\n"
    );
    let gw = Gateway::builder("public-url")
        .config(&yaml)
        .env("FASTMCP__PUBLIC_URL", &public)
        .env("FASTMCP__AUTH__AUTHORIZATION_SERVERS", &format!("[\"{nowhere}\"]"))
        .start();
    let mut edge = Child(
        Command::new(python())
            .arg(repo().join("tests/py/tls_terminator.py"))
            .args(["--port", &edge_port.to_string(), "--cert", s(&cert), "--key", s(&key)])
            .args(["--upstream", &format!("127.0.0.1:{}", gw.port)])
            .stderr(Stdio::from(std::fs::File::create(dir.join("edge.log")).expect("log")))
            .spawn()
            .expect("tls terminator"),
    );
    wait_for_port(edge_port, "tls terminator", Some(&mut edge.0));

    let out = Command::new(python())
        .arg(repo().join("tests/py/oauth_discovery.py"))
        .args(["--url", &format!("{public}/mcp"), "--ca", s(&ca_pem)])
        .output()
        .expect("run oauth_discovery.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line =
        stdout.lines().rev().find(|l| l.starts_with('{')).unwrap_or_else(|| {
            panic!("no JSON from the SDK client: {stdout} {}", String::from_utf8_lossy(&out.stderr))
        });
    let v: Value = serde_json::from_str(line).expect("json");
    let requests = v["requests"].as_array().cloned().unwrap_or_default();
    let first = &requests.first().unwrap_or_else(|| panic!("no request made: {v}"));
    assert_eq!(first["status"], 401, "{v}");
    let metadata = format!("{public}/.well-known/oauth-protected-resource/mcp");
    let fetched = requests.iter().find(|r| r["method"] == "GET" && r["url"] == metadata.as_str());
    assert_eq!(fetched.map(|r| r["status"].clone()), Some(json!(200)), "the SDK fetched {metadata}: {v}");
    assert!(
        requests.iter().all(|r| r["url"].as_str().is_some_and(|u| u.starts_with(&public) || u.starts_with(&nowhere))),
        "every request went to the public URL (or the authorization server): {v}"
    );
    // The SDK accepted the metadata (its `resource` matches the URL it was given, RFC 8707).
    assert_eq!(v["prm"]["resource"], format!("{public}/mcp"), "{v}");

    // The challenge itself names the public URL, whichever Host the gateway saw.
    let r = mcp_post(&gw.url("/mcp"), None, &tools_call(1, "x", json!({})), &[]);
    assert_eq!(r.status, 401);
    let www = r.header("www-authenticate").unwrap_or_default();
    assert!(www.contains(&format!("resource_metadata=\"{metadata}\"")), "{www}");

    // A held call's confirm_url is absolute, on the public origin.
    let admin = gw.mint("root", "acme", "mcp-admin");
    let r = mcp_post(&gw.url("/mcp/up"), Some(&admin), &tools_call(2, "wipe", json!({})), &[]);
    assert_eq!(r.status, 200, "{}", body(&r));
    let held = r.json();
    assert_eq!(held["error"]["data"]["confirm_url"], format!("{public}/tools/mcp:up:wipe/confirm"), "{held}");
}

#[test]
fn forwarded_headers_count_only_from_trusted_proxies() {
    let meta = |gw: &Gateway| {
        let headers = [("x-forwarded-proto", "https"), ("x-forwarded-host", "gw.example.com")];
        let r = http("GET", &gw.url("/.well-known/oauth-protected-resource/mcp"), &headers, b"");
        assert_eq!(r.status, 200, "{}", body(&r));
        r.json()["resource"].as_str().unwrap_or_default().to_string()
    };
    let trusting = Gateway::builder("fwd-trusted").env("FASTMCP__TRUSTED_PROXIES", "[\"127.0.0.0/8\"]").start();
    assert_eq!(meta(&trusting), "https://gw.example.com/mcp");
    let untrusting = Gateway::builder("fwd-untrusted").env("FASTMCP__TRUSTED_PROXIES", "[\"10.0.0.0/8\"]").start();
    assert_eq!(meta(&untrusting), format!("http://127.0.0.1:{}/mcp", untrusting.port));
}
