//! A candidate policy bundle: `policies.yml` and `*.rego` files, sent to
//! `POST /admin/policy/shadow` as a JSON object `{file name: content}`, read from
//! `policy.shadow_dir`, or given to `fastmcp policy diff --candidate DIR`.
//!
//! A candidate is the live sources with the bundle's parts put in their place: the bundle's
//! `policies.yml` replaces the data, and its Rego files (when it has any) replace every Rego
//! module. A bundle of only `policies.yml` therefore runs the live Rego (without the embedded
//! tests, which are written against the embedded data).

use std::path::Path;

use serde_json::Value;

use super::source::{is_test_file, PolicySources};

/// The files of one bundle, checked: names are relative, without `..`, and end in `.rego`
/// or are `policies.yml` / `policies.yaml`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bundle {
    pub policies_yaml: Option<String>,
    /// (file name, Rego text), sorted by name.
    pub rego: Vec<(String, String)>,
}

/// Why a bundle is not one.
#[derive(Debug, Clone, PartialEq)]
pub struct BundleError(pub String);

impl std::fmt::Display for BundleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

const MAX_FILES: usize = 256;

impl Bundle {
    /// Parses the JSON body of `POST /admin/policy/shadow`.
    pub fn from_json(body: &[u8]) -> Result<Bundle, BundleError> {
        let doc: Value =
            serde_json::from_slice(body).map_err(|e| BundleError(format!("the bundle is not JSON: {e}")))?;
        let Value::Object(files) = doc else {
            return Err(BundleError("the bundle must be a JSON object {\"file name\": \"content\"}".into()));
        };
        if files.len() > MAX_FILES {
            return Err(BundleError(format!("a bundle holds at most {MAX_FILES} files")));
        }
        let mut bundle = Bundle::default();
        for (name, content) in files {
            let Value::String(text) = content else {
                return Err(BundleError(format!("{name}: the content must be a string")));
            };
            bundle.add(&name, text)?;
        }
        bundle.finish()
    }

    /// Reads a bundle directory: `policies.yml` (or `.yaml`) at its top, `*.rego` anywhere
    /// below it.
    pub fn from_dir(dir: &Path) -> Result<Bundle, BundleError> {
        if !dir.is_dir() {
            return Err(BundleError(format!("{}: not a directory", dir.display())));
        }
        let mut bundle = Bundle::default();
        for name in ["policies.yml", "policies.yaml"] {
            let path = dir.join(name);
            if path.is_file() {
                let text =
                    std::fs::read_to_string(&path).map_err(|e| BundleError(format!("{}: {e}", path.display())))?;
                bundle.add(name, text)?;
            }
        }
        collect(dir, dir, &mut bundle)?;
        bundle.finish()
    }

    fn add(&mut self, name: &str, text: String) -> Result<(), BundleError> {
        let bad = name.is_empty()
            || name.starts_with('/')
            || name.contains('\\')
            || name.split('/').any(|p| p.is_empty() || p == "." || p == "..")
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b));
        if bad {
            return Err(BundleError(format!("{name:?}: not a relative file name")));
        }
        if name == "policies.yml" || name == "policies.yaml" {
            if self.policies_yaml.is_some() {
                return Err(BundleError("the bundle holds policies.yml twice".into()));
            }
            self.policies_yaml = Some(text);
        } else if name.ends_with(".rego") {
            self.rego.push((format!("(candidate) {name}"), text));
        } else {
            return Err(BundleError(format!("{name}: a bundle holds policies.yml and *.rego files only")));
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Bundle, BundleError> {
        if self.policies_yaml.is_none() && self.rego.is_empty() {
            return Err(BundleError("the bundle is empty: send policies.yml and/or *.rego files".into()));
        }
        self.rego.sort();
        Ok(self)
    }

    /// The candidate: `live` with this bundle's parts in place of its own.
    pub fn over(&self, live: &PolicySources) -> PolicySources {
        let mut out = live.clone();
        if let Some(yaml) = &self.policies_yaml {
            out.policies_name = "(candidate) policies.yml".into();
            out.policies_yaml = yaml.clone();
        }
        if !self.rego.is_empty() {
            out.rego = self.rego.clone();
        } else if self.policies_yaml.is_some() {
            // The embedded tests assert the embedded data's decisions: not the candidate's.
            out.rego.retain(|(n, _)| !(n.starts_with("(embedded)") && is_test_file(n)));
        }
        out
    }
}

fn collect(root: &Path, dir: &Path, out: &mut Bundle) -> Result<(), BundleError> {
    let entries = std::fs::read_dir(dir).map_err(|e| BundleError(format!("{}: {e}", dir.display())))?;
    for entry in entries {
        let path = entry.map_err(|e| BundleError(e.to_string()))?.path();
        if path.is_dir() {
            collect(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "rego") {
            let text = std::fs::read_to_string(&path).map_err(|e| BundleError(format!("{}: {e}", path.display())))?;
            let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            out.add(&rel, text)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for bad in [
            r#"{"../x.rego": ""}"#,
            r#"{"/etc/x.rego": ""}"#,
            r#"{"a.txt": ""}"#,
            r#"{"a.rego": 1}"#,
            "[]",
            "{}",
            "nope",
        ] {
            assert!(Bundle::from_json(bad.as_bytes()).is_err(), "{bad}");
        }
        let b = Bundle::from_json(
            br#"{"policies.yml": "roles: {}", "fastmcp/b.rego": "package b", "a.rego": "package a"}"#,
        )
        .expect("bundle");
        assert_eq!(b.policies_yaml.as_deref(), Some("roles: {}"));
        assert_eq!(b.rego[0].0, "(candidate) a.rego");
    }

    #[test]
    fn only_data_keeps_the_live_rego_without_embedded_tests() {
        let live = PolicySources::embedded();
        let b = Bundle { policies_yaml: Some("roles: {}\nrules: []\n".into()), rego: vec![] };
        let c = b.over(&live);
        assert!(c.rego.iter().all(|(n, _)| !is_test_file(n)));
        assert!(c.rego.iter().any(|(n, _)| n.ends_with("authz.rego")));
        assert_ne!(c.revision(), live.revision());
        let rego_only = Bundle { policies_yaml: None, rego: vec![("(candidate) x.rego".into(), "package x".into())] };
        let c = rego_only.over(&live);
        assert_eq!(c.policies_yaml, live.policies_yaml);
        assert_eq!(c.rego.len(), 1);
    }
}
