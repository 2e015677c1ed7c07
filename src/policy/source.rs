//! Policy sources: `policies.yml` (seed format, loaded as `data.policies`) and the `*.rego`
//! modules of a directory, each falling back to the copy embedded in the binary.

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
}

impl PolicySources {
    /// Reads `policies_file` and `rego_dirs`; a path that does not exist falls back to the
    /// embedded copy (so the binary runs from any directory).
    pub fn load(policies_file: &Path, rego_dirs: &[PathBuf]) -> Result<PolicySources, String> {
        let (policies_name, policies_yaml) = if policies_file.exists() {
            let text =
                std::fs::read_to_string(policies_file).map_err(|e| format!("{}: {e}", policies_file.display()))?;
            (policies_file.display().to_string(), text)
        } else {
            ("(embedded) policies/policies.yml".to_string(), EMBEDDED_POLICIES.to_string())
        };
        let mut rego = Vec::new();
        let mut any_dir = false;
        for dir in rego_dirs {
            if dir.is_dir() {
                any_dir = true;
                collect_rego(dir, &mut rego)?;
            }
        }
        if !any_dir {
            // The embedded tests are written against the embedded policies.yml: with the
            // operator's own data they would test the wrong thing, so they only come along
            // when the data is embedded too.
            let custom_data = policies_file.exists();
            rego = EMBEDDED_REGO
                .iter()
                .filter(|(n, _)| !(custom_data && is_test_file(n)))
                .map(|(n, t)| (format!("(embedded) {n}"), t.to_string()))
                .collect();
        }
        rego.sort();
        Ok(PolicySources { policies_name, policies_yaml, rego })
    }

    /// The embedded sources.
    pub fn embedded() -> PolicySources {
        Self::load(Path::new("\0nonexistent"), &[]).unwrap_or_else(|_| PolicySources {
            policies_name: String::new(),
            policies_yaml: EMBEDDED_POLICIES.into(),
            rego: vec![],
        })
    }

    /// `policies.yml` as JSON data (`data.policies`), plus its rules pre-parsed for the
    /// evaluator (`data.fastmcp_rules`).
    pub fn data(&self) -> Result<serde_json::Value, String> {
        let doc: serde_json::Value =
            serde_yaml_ng::from_str(&self.policies_yaml).map_err(|e| format!("{}: {e}", self.policies_name))?;
        if !doc.is_object() {
            return Err(format!("{}: expected a mapping with roles and rules", self.policies_name));
        }
        let compiled = super::normalize::normalize(&doc);
        Ok(serde_json::json!({ "policies": doc, "fastmcp_rules": compiled }))
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
