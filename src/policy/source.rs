//! Policy sources: `policies.yml` (seed format, loaded as `data.policies`) and the `*.rego`
//! modules of a directory, each falling back to the copy embedded in the binary when its path
//! does not exist at startup. On a reload there is no fallback: a served file that vanished
//! or cannot be read is an error and the current policy keeps serving.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub const EMBEDDED_POLICIES: &str = include_str!("../../policies/policies.yml");
pub const EMBEDDED_REGO: &[(&str, &str)] = &[
    ("rego/fastmcp/abac.rego", include_str!("../../rego/fastmcp/abac.rego")),
    ("rego/fastmcp/abac_test.rego", include_str!("../../rego/fastmcp/abac_test.rego")),
    ("rego/fastmcp/authz.rego", include_str!("../../rego/fastmcp/authz.rego")),
    ("rego/fastmcp/authz_test.rego", include_str!("../../rego/fastmcp/authz_test.rego")),
];

/// The text of every source, with the names errors and coverage refer to.
#[derive(Debug, Clone)]
pub struct PolicySources {
    pub policies_name: String,
    pub policies_yaml: String,
    /// (file name, Rego text), sorted by name.
    pub rego: Vec<(String, String)>,
    /// Which sources came from the configured paths (the rest are embedded copies).
    pub provenance: Provenance,
}

/// Which sources were read from the operator's paths rather than the embedded copies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Provenance {
    /// `policies.yml` came from the configured file.
    pub policies_file: bool,
    /// The Rego modules came from the configured directory.
    pub rego_dir: bool,
}

/// Whether `path` exists: `Ok(false)` only when it is not there; any other failure (a
/// directory that cannot be searched) is an error, never "missing".
fn present(path: &Path) -> Result<bool, String> {
    match std::fs::metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

impl PolicySources {
    /// Reads `policies_file` and `rego_dirs`; a path that does not exist falls back to the
    /// embedded copy (so the binary runs from any directory). For startup and the CLI only: a
    /// reload uses [`PolicySources::reload`].
    pub fn load(policies_file: &Path, rego_dirs: &[PathBuf]) -> Result<PolicySources, String> {
        Self::load_with(policies_file, rego_dirs, None)
    }

    /// Like [`PolicySources::load`] for a running gateway whose policy came from `serving`: a
    /// source that was read from its path must still be there and readable — a file that
    /// disappeared is an error (the serving policy stays), never a fallback to the embedded
    /// copy. A source that was embedded stays embedded until a file appears at its path.
    pub fn reload(policies_file: &Path, rego_dirs: &[PathBuf], serving: Provenance) -> Result<PolicySources, String> {
        Self::load_with(policies_file, rego_dirs, Some(serving))
    }

    fn load_with(
        policies_file: &Path,
        rego_dirs: &[PathBuf],
        serving: Option<Provenance>,
    ) -> Result<PolicySources, String> {
        let strict = serving.is_some();
        let serving = serving.unwrap_or_default();
        let policies_there = if strict { present(policies_file)? } else { policies_file.exists() };
        let (policies_name, policies_yaml) = if policies_there {
            let text =
                std::fs::read_to_string(policies_file).map_err(|e| format!("{}: {e}", policies_file.display()))?;
            (policies_file.display().to_string(), text)
        } else if serving.policies_file {
            return Err(format!(
                "{}: the policy file the gateway serves is gone (deleted or moved); keeping the current policy",
                policies_file.display()
            ));
        } else {
            ("(embedded) policies/policies.yml".to_string(), EMBEDDED_POLICIES.to_string())
        };
        let mut rego = Vec::new();
        let mut any_dir = false;
        for dir in rego_dirs {
            let there = if strict { present(dir)? } else { dir.exists() };
            if there && dir.is_dir() {
                any_dir = true;
                collect_rego(dir, &mut rego)?;
            }
        }
        if !any_dir && serving.rego_dir {
            let names: Vec<String> = rego_dirs.iter().map(|d| d.display().to_string()).collect();
            return Err(format!(
                "{}: the Rego directory the gateway serves is gone (deleted or moved); keeping the current policy",
                names.join(", ")
            ));
        }
        if !any_dir {
            // The embedded tests are written against the embedded policies.yml: with the
            // operator's own data they would test the wrong thing, so they only come along
            // when the data is embedded too.
            let custom_data = policies_there;
            rego = EMBEDDED_REGO
                .iter()
                .filter(|(n, _)| !(custom_data && is_test_file(n)))
                .map(|(n, t)| (format!("(embedded) {n}"), t.to_string()))
                .collect();
        }
        rego.sort();
        let provenance = Provenance { policies_file: policies_there, rego_dir: any_dir };
        Ok(PolicySources { policies_name, policies_yaml, rego, provenance })
    }

    /// The embedded sources.
    pub fn embedded() -> PolicySources {
        Self::load(Path::new("\0nonexistent"), &[]).unwrap_or_else(|_| PolicySources {
            policies_name: String::new(),
            policies_yaml: EMBEDDED_POLICIES.into(),
            rego: vec![],
            provenance: Provenance::default(),
        })
    }

    /// `policies.yml` as JSON data (`data.policies`), plus its rules pre-parsed for the
    /// evaluator (`data.fastmcp_rules`) and indexed by action, tool and provider
    /// (`data.fastmcp_index`).
    pub fn data(&self) -> Result<serde_json::Value, String> {
        let doc: serde_json::Value =
            serde_yaml_ng::from_str(&self.policies_yaml).map_err(|e| format!("{}: {e}", self.policies_name))?;
        if !doc.is_object() {
            return Err(format!("{}: expected a mapping with roles and rules", self.policies_name));
        }
        let compiled = super::normalize::normalize(&doc);
        let index = super::normalize::index(&doc);
        Ok(serde_json::json!({ "policies": doc, "fastmcp_rules": compiled, "fastmcp_index": index }))
    }

    /// A regorus engine loaded with the data and the modules (test files only if asked).
    pub fn engine(&self, with_tests: bool) -> Result<regorus::Engine, String> {
        let mut engine = regorus::Engine::new();
        engine.set_rego_v0(false);
        for (name, text) in &self.rego {
            if !with_tests && is_test_file(name) {
                continue;
            }
            engine.add_policy(name.clone(), text.clone()).map_err(|e| e.to_string())?;
        }
        let data = regorus::Value::from_json_str(&self.data()?.to_string()).map_err(|e| e.to_string())?;
        engine.add_data(data).map_err(|e| e.to_string())?;
        Ok(engine)
    }

    /// Short content hash over every source.
    pub fn revision(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.policies_yaml.as_bytes());
        for (name, text) in &self.rego {
            let base = name.rsplit('/').next().unwrap_or(name);
            h.update(base.as_bytes());
            h.update([0]);
            h.update(text.as_bytes());
        }
        hex::encode(&h.finalize()[..8])
    }
}

pub fn is_test_file(name: &str) -> bool {
    name.ends_with("_test.rego")
}

fn collect_rego(dir: &Path, out: &mut Vec<(String, String)>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_dir() {
            collect_rego(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rego") {
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            out.push((path.display().to_string(), text));
        }
    }
    Ok(())
}
