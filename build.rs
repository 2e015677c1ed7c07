//! Build script: the git revision for `fastmcp_build_info{revision}` (src/metrics.rs).
//! `FASTMCP_REVISION` in the build environment wins (a container build has no `.git`);
//! otherwise `git rev-parse --short=12 HEAD`; "unknown" when neither is available.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=FASTMCP_REVISION");
    // Rebuild when HEAD moves: HEAD itself (a branch switch), the branch's ref, packed refs.
    for name in ["HEAD", "packed-refs"] {
        // A path that does not exist would make cargo rerun this script on every build.
        if let Some(p) = git(&["rev-parse", "--git-path", name]).filter(|p| std::path::Path::new(p).exists()) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    if let Some(p) = git(&["symbolic-ref", "-q", "HEAD"])
        .and_then(|r| git(&["rev-parse", "--git-path", &r]))
        .filter(|p| std::path::Path::new(p).exists())
    {
        println!("cargo:rerun-if-changed={p}");
    }
    let revision = std::env::var("FASTMCP_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=FASTMCP_REVISION={revision}");
}
