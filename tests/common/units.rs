//! The systemd units of deploy/systemd/ for tests: their settings, their
//! command lines expanded as systemd expands them (for the forms the
//! units use), copies with the cargo-built binaries in `ExecStart=`, and
//! systemd-analyze.
//!
//! Use from a test file with
//! `mod common; #[path = "common/units.rs"] mod units;`.
#![allow(dead_code)]

use crate::common::bin;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Where the units live in the repository.
pub fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/systemd")
}

/// The path the units name for `binary` (as installed per the README).
pub fn installed(binary: &str) -> String {
    format!("/usr/local/bin/{binary}")
}

/// One unit file: `(section, key, value)` in file order.
pub struct Unit {
    pub entries: Vec<(String, String, String)>,
}

impl Unit {
    pub fn read(name: &str) -> Unit {
        let p = deploy_dir().join(name);
        let text =
            std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
        Unit::parse(&text)
    }

    /// systemd's syntax as the units use it: `[Section]`, `Key=value`,
    /// comments (`#`, `;`) on lines of their own.
    pub fn parse(text: &str) -> Unit {
        let mut section = String::new();
        let mut entries = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = s.to_string();
                continue;
            }
            assert!(
                !line.ends_with('\\'),
                "continuation lines are not read by this test helper: {line}"
            );
            let (k, v) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("not Key=value: {line}"));
            entries.push((section.clone(), k.trim().to_string(), v.trim().to_string()));
        }
        Unit { entries }
    }

    /// The last value of `key` in `section` (a later assignment wins).
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.all(section, key).pop()
    }

    pub fn all(&self, section: &str, key: &str) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|(s, k, _)| s == section && k == key)
            .map(|(_, _, v)| v.as_str())
            .collect()
    }

    /// `[Service] key`, which must be set.
    pub fn service(&self, key: &str) -> &str {
        self.get("Service", key)
            .unwrap_or_else(|| panic!("the unit sets no {key}="))
    }

    /// The variables of every `Environment=` line (`A=1 B=`; no quoting).
    pub fn environment(&self) -> HashMap<String, String> {
        let mut env = HashMap::new();
        for line in self.all("Service", "Environment") {
            assert!(!line.contains('"'), "quoted Environment= not read here");
            for word in line.split_whitespace() {
                let (k, v) = word.split_once('=').expect("VAR=value");
                env.insert(k.to_string(), v.to_string());
            }
        }
        env
    }
}

/// An EnvironmentFile's assignments.
pub fn read_env_file(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .map(|l| {
            let (k, v) = l.split_once('=').expect("VAR=value");
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect()
}

/// An `Exec*=` command line expanded as systemd does (systemd.service(5),
/// "Command lines"): `${VAR}` as a word is exactly one argument (empty when
/// unset), `$VAR` as a word splits at whitespace into zero or more, `%x`
/// specifiers from `specifiers`, `%%` a percent sign. Quoting is not used
/// by the units and refused here.
pub fn expand_exec(
    line: &str,
    env: &HashMap<String, String>,
    specifiers: &[(char, String)],
) -> Vec<String> {
    assert!(
        !line.contains('"') && !line.contains('\''),
        "quoted command lines are not expanded by this test helper: {line}"
    );
    let mut out = Vec::new();
    for word in line.split_whitespace() {
        let word = expand_specifiers(word, specifiers);
        if let Some(name) = word.strip_prefix("${").and_then(|w| w.strip_suffix('}')) {
            out.push(env.get(name).cloned().unwrap_or_default());
        } else if let Some(name) = word.strip_prefix('$') {
            if let Some(v) = env.get(name) {
                out.extend(v.split_whitespace().map(str::to_string));
            }
        } else {
            assert!(!word.contains('$'), "a variable inside a word: {word}");
            out.push(word);
        }
    }
    out
}

fn expand_specifiers(word: &str, specifiers: &[(char, String)]) -> String {
    let mut out = String::new();
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let s = chars.next().expect("a specifier after %");
        if s == '%' {
            out.push('%');
            continue;
        }
        let (_, v) = specifiers
            .iter()
            .find(|(k, _)| *k == s)
            .unwrap_or_else(|| panic!("specifier %{s} not provided"));
        out.push_str(v);
    }
    out
}

/// Copies every unit of deploy/systemd/ into `dir` with the installed
/// binary paths replaced by the cargo-built ones (systemd-analyze verify
/// checks that `ExecStart=` is executable); returns the file names.
pub fn stage_units(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(deploy_dir()).expect("list deploy/systemd") {
        let e = e.expect("list deploy/systemd");
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".service") {
            continue;
        }
        let mut text = std::fs::read_to_string(e.path()).expect("read unit");
        for b in ["kmsd", "kmsfs", "kmsctl"] {
            text = text.replace(&installed(b), &bin(b).display().to_string());
        }
        assert!(
            !text.contains("/usr/local/bin/"),
            "{name} names a binary the test does not build"
        );
        std::fs::write(dir.join(&name), text).expect("write unit");
        names.push(name);
    }
    names.sort();
    names
}

/// Whether systemd-analyze can be run at all.
pub fn systemd_analyze_present() -> bool {
    Command::new("systemd-analyze")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Fails the calling test without systemd-analyze: CI installs it
/// (.ci/run); a test that cannot run must not pass.
pub fn require_systemd_analyze() {
    assert!(
        systemd_analyze_present(),
        "systemd-analyze is missing: install Debian's systemd package (.ci/run does); \
         this test fails rather than pass without running"
    );
}

/// `systemd-analyze ARGS` in `dir`, without colours or pager.
pub fn systemd_analyze(dir: &Path, args: &[&str]) -> Output {
    Command::new("systemd-analyze")
        .args(args)
        .current_dir(dir)
        .env("SYSTEMD_COLORS", "0")
        .env("SYSTEMD_PAGER", "")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .expect("run systemd-analyze")
}

/// `systemd-analyze verify` of `units` in `dir`: `Err` with its report
/// when it exits non-zero or prints anything at all (it reports unknown
/// keys and ordering cycles as warnings with exit status 0).
pub fn verify(dir: &Path, units: &[&str]) -> Result<(), String> {
    let mut args = vec!["verify", "--man=no"];
    args.extend(units);
    let out = systemd_analyze(dir, &args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() && stdout.trim().is_empty() && stderr.trim().is_empty() {
        return Ok(());
    }
    Err(format!(
        "systemd-analyze verify {}: {}\n{}{}",
        units.join(" "),
        out.status,
        stdout,
        stderr
    ))
}

/// `systemd-escape ARGS`, its one line of output.
pub fn systemd_escape(args: &[&str]) -> String {
    let out = Command::new("systemd-escape")
        .args(args)
        .output()
        .expect("run systemd-escape");
    assert!(out.status.success(), "systemd-escape {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

/// systemd-fstab-generator, where Debian installs it.
pub fn fstab_generator() -> PathBuf {
    [
        "/usr/lib/systemd/system-generators",
        "/lib/systemd/system-generators",
    ]
    .iter()
    .map(|d| Path::new(d).join("systemd-fstab-generator"))
    .find(|p| p.exists())
    .expect("systemd-fstab-generator is missing: install Debian's systemd package (.ci/run does)")
}
