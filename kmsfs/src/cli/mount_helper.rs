//! The mount(8) helper: the kmsfs binary run as `mount.fuse.kmsfs` (fstab
//! type `fuse.kmsfs`) or `mount.kmsfs` (type `kmsfs`), usually through a
//! symlink in /sbin. util-linux runs it as
//!
//! ```text
//! /sbin/mount.fuse.kmsfs SOURCE TARGET [-sfnv] [-N NAMESPACE] [-o OPTIONS] [-t TYPE]
//! ```
//!
//! and this translates that into `kmsfs mount SOURCE TARGET [flags] [-o
//! OPTIONS]` (a background mount that returns once the mount is ready) and
//! executes it in place. The options of the fstab line map as
//! [`map_option`] says: kmsfs's own `key=value` settings become flags,
//! options that are for mount(8) or systemd only are dropped, and the rest
//! goes to `-o`, whose parser rejects what it does not know. `-f` (fake)
//! translates without mounting, `-v` prints the command, `-s` (sloppy)
//! drops options kmsfs does not know instead of failing, `-n` is ignored
//! (kmsfs writes no mtab), `-t` is accepted and ignored; `-N` (another
//! mount namespace) is refused.
//!
//! [`translate`] is pure; [`main`] does the I/O.

use std::ffi::{OsStr, OsString};
use std::process::ExitCode;

/// The names under which the binary acts as the helper.
pub const HELPER_NAMES: [&str; 2] = ["mount.fuse.kmsfs", "mount.kmsfs"];

/// Whether `argv0` (a path or a bare name) names the helper.
pub fn is_helper(argv0: &OsStr) -> bool {
    let name = std::path::Path::new(argv0)
        .file_name()
        .unwrap_or_default()
        .to_string_lossy();
    HELPER_NAMES.contains(&name.as_ref())
}

/// The helper's command line, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Invocation {
    pub source: OsString,
    pub target: OsString,
    /// Each `-o` list, split into options, in order.
    pub options: Vec<String>,
    /// `-f`: translate, do not mount.
    pub fake: bool,
    /// `-v`: print the kmsfs command.
    pub verbose: bool,
    /// `-s`: drop unknown options instead of failing.
    pub sloppy: bool,
}

const USAGE: &str = "usage: mount.fuse.kmsfs CIPHERDIR MOUNTPOINT [-sfnv] [-o OPTIONS]";

/// Parses the helper's arguments (without argv[0]).
pub fn parse_args(args: &[OsString]) -> Result<Invocation, String> {
    let mut inv = Invocation::default();
    let mut positional: Vec<OsString> = Vec::new();
    let mut i = 0;
    let mut only_positional = false;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        let bytes = a.as_encoded_bytes();
        if only_positional || bytes.len() < 2 || bytes[0] != b'-' {
            positional.push(a.clone());
            continue;
        }
        if bytes == b"--" {
            only_positional = true;
            continue;
        }
        let s = a
            .to_str()
            .ok_or_else(|| format!("option {} is not UTF-8", a.to_string_lossy()))?;
        // A cluster of flags (-sv), possibly ending in one that takes a
        // value, attached (-oallow_other) or as the next argument.
        for (at, c) in s[1..].char_indices() {
            match c {
                's' => inv.sloppy = true,
                'f' => inv.fake = true,
                'n' => {}
                'v' => inv.verbose = true,
                'h' => return Err(USAGE.to_string()),
                'o' | 't' | 'N' => {
                    let rest = &s[1 + at + 1..];
                    let value = if !rest.is_empty() {
                        rest.to_string()
                    } else {
                        let v = args
                            .get(i)
                            .ok_or_else(|| format!("option -{c} needs a value\n{USAGE}"))?;
                        i += 1;
                        v.to_str()
                            .ok_or_else(|| format!("the value of -{c} is not UTF-8"))?
                            .to_string()
                    };
                    match c {
                        'o' => inv.options.extend(split_options(&value)?),
                        't' => {}
                        _ => {
                            return Err(format!(
                                "-N {value}: mounting in another mount namespace is not supported"
                            ));
                        }
                    }
                    break;
                }
                _ => return Err(format!("unknown option -{c}\n{USAGE}")),
            }
        }
    }
    let mut positional = positional.into_iter();
    inv.source = positional
        .next()
        .ok_or_else(|| format!("the cipher directory (SOURCE) is missing\n{USAGE}"))?;
    inv.target = positional
        .next()
        .ok_or_else(|| format!("the mountpoint (TARGET) is missing\n{USAGE}"))?;
    if let Some(extra) = positional.next() {
        return Err(format!(
            "unexpected argument {}\n{USAGE}",
            extra.to_string_lossy()
        ));
    }
    if inv.source.is_empty() || inv.target.is_empty() {
        return Err(format!("SOURCE and TARGET must not be empty\n{USAGE}"));
    }
    inv.source = not_an_option(inv.source);
    inv.target = not_an_option(inv.target);
    Ok(inv)
}

/// A relative path beginning with `-` as `./-...`, so that `kmsfs mount`
/// does not take it for a flag.
fn not_an_option(path: OsString) -> OsString {
    if path.as_encoded_bytes().first() == Some(&b'-') {
        let mut p = OsString::from("./");
        p.push(&path);
        return p;
    }
    path
}

/// Splits a mount option list at commas outside double quotes (libmount's
/// quoting: `fsname="a,b"`); quotes are removed, empty items skipped.
pub fn split_options(list: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in list.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if quoted {
        return Err(format!("unbalanced quote in the options {list:?}"));
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

/// What becomes of one option of the fstab line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mapped {
    /// A `kmsfs mount` flag with its value.
    Flag(&'static str, String),
    /// For mount(8) or systemd, not for the file system.
    Drop,
    /// A mount option for `kmsfs mount -o`.
    Pass(String),
}

/// kmsfs's own settings in fstab form and the `kmsfs mount` flag of each.
/// The `--kms aws` family selects the AWS KMS backend.
pub const FLAG_OPTIONS: [(&str, &str); 12] = [
    ("key", "--key-id"),
    ("socket", "--socket"),
    ("cache_ttl", "--cache-ttl"),
    ("cache_capacity", "--cache-capacity"),
    ("pool_size", "--pool-size"),
    ("threads", "--threads"),
    ("read_ahead_kb", "--read-ahead-kb"),
    ("log", "--log"),
    ("kms", "--kms"),
    ("endpoint_url", "--endpoint-url"),
    ("profile", "--profile"),
    ("region", "--region"),
];

/// Options that only mount(8), fstab or systemd read: dropped.
const DROPPED: [&str; 10] = [
    "defaults", "auto", "noauto", "user", "users", "nouser", "owner", "group", "_netdev", "nofail",
];

/// Prefixes of dropped options (`x-systemd.requires=…`, `comment=…`,
/// libmount's `user=NAME` of a user mount).
const DROPPED_PREFIXES: [&str; 3] = ["x-", "comment=", "user="];

/// The fate of one option.
pub fn map_option(opt: &str) -> Result<Mapped, String> {
    let (name, value) = match opt.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (opt, None),
    };
    if let Some(&(_, flag)) = FLAG_OPTIONS.iter().find(|(n, _)| *n == name) {
        return match value {
            Some(v) if !v.is_empty() => Ok(Mapped::Flag(flag, v.to_string())),
            _ => Err(format!("option {name} needs a value ({name}=...)")),
        };
    }
    if DROPPED.contains(&opt) || DROPPED_PREFIXES.iter().any(|p| opt.starts_with(p)) {
        return Ok(Mapped::Drop);
    }
    Ok(Mapped::Pass(opt.to_string()))
}

/// The `kmsfs` arguments (after argv[0]) for `inv`, and the options a
/// sloppy mount dropped as unknown. `known` tells whether `kmsfs mount -o`
/// accepts an option (consulted for `-s` only).
pub fn translate(
    inv: &Invocation,
    known: impl Fn(&str) -> bool,
) -> Result<(Vec<OsString>, Vec<String>), String> {
    let mut flags: Vec<(&'static str, String)> = Vec::new();
    let mut pass: Vec<String> = Vec::new();
    let mut unknown = Vec::new();
    for opt in &inv.options {
        match map_option(opt)? {
            Mapped::Flag(flag, value) => {
                // As in mount(8), the last of a repeated setting wins.
                flags.retain(|(f, _)| *f != flag);
                flags.push((flag, value));
            }
            Mapped::Drop => {}
            Mapped::Pass(o) if inv.sloppy && !known(&o) => unknown.push(o),
            Mapped::Pass(o) if o.contains(',') => {
                return Err(format!(
                    "option {o:?} holds a comma, which kmsfs mount -o cannot carry"
                ));
            }
            Mapped::Pass(o) => pass.push(o),
        }
    }
    let mut args: Vec<OsString> = vec!["mount".into(), inv.source.clone(), inv.target.clone()];
    for (flag, value) in flags {
        args.push(flag.into());
        args.push(value.into());
    }
    if !pass.is_empty() {
        args.push("-o".into());
        args.push(pass.join(",").into());
    }
    Ok((args, unknown))
}

/// Whether `kmsfs mount -o` accepts `opt`.
fn known_mount_option(opt: &str) -> bool {
    crate::fs::mount::parse_options(&[opt]).is_ok()
}

/// Runs the helper: parses, translates and executes `kmsfs mount` in this
/// process (exit status 1 with a message on bad input).
pub fn main(argv0: &OsStr, args: &[OsString]) -> ExitCode {
    let me = std::path::Path::new(argv0)
        .file_name()
        .unwrap_or(argv0)
        .to_string_lossy()
        .into_owned();
    let fail = |msg: String| {
        eprintln!("{me}: {msg}");
        ExitCode::FAILURE
    };
    let inv = match parse_args(args) {
        Ok(inv) => inv,
        Err(e) => return fail(e),
    };
    let (kmsfs_args, unknown) = match translate(&inv, known_mount_option) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    if !unknown.is_empty() {
        eprintln!(
            "{me}: sloppy mount: ignoring unknown options {}",
            unknown.join(",")
        );
    }
    if inv.verbose || inv.fake {
        let shown: Vec<_> = kmsfs_args.iter().map(|a| a.to_string_lossy()).collect();
        eprintln!("{me}: kmsfs {}", shown.join(" "));
    }
    if inv.fake {
        return ExitCode::SUCCESS;
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return fail(format!("cannot find the kmsfs binary: {e}")),
    };
    use std::os::unix::process::CommandExt;
    // Only returns on failure.
    let e = std::process::Command::new(&exe)
        .arg0("kmsfs")
        .args(&kmsfs_args)
        .exec();
    fail(format!("cannot run {}: {e}", exe.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    fn strs(v: &[OsString]) -> Vec<String> {
        v.iter().map(|a| a.to_string_lossy().into_owned()).collect()
    }

    fn everything_known(_: &str) -> bool {
        true
    }

    #[test]
    fn helper_names_are_recognised_by_basename() {
        assert!(is_helper(OsStr::new("/sbin/mount.fuse.kmsfs")));
        assert!(is_helper(OsStr::new("mount.kmsfs")));
        assert!(is_helper(OsStr::new("/usr/sbin/mount.kmsfs")));
        assert!(!is_helper(OsStr::new("/usr/local/bin/kmsfs")));
        assert!(!is_helper(OsStr::new("kmsfs")));
        assert!(!is_helper(OsStr::new("/sbin/mount.fuse")));
        assert!(!is_helper(OsStr::new("")));
    }

    #[test]
    fn mounts_argv_parses_in_every_order_mount_uses() {
        let i = parse_args(&os(&["/c", "/m", "-o", "key=alias/x,allow_other"])).unwrap();
        assert_eq!(i.source, "/c");
        assert_eq!(i.target, "/m");
        assert_eq!(i.options, ["key=alias/x", "allow_other"]);
        assert!(!i.fake && !i.verbose && !i.sloppy);

        let i = parse_args(&os(&[
            "/c",
            "/m",
            "-s",
            "-f",
            "-n",
            "-v",
            "-o",
            "ro",
            "-t",
            "fuse.kmsfs",
        ]))
        .unwrap();
        assert!(i.fake && i.verbose && i.sloppy);
        assert_eq!(i.options, ["ro"]);

        let i = parse_args(&os(&["-sv", "-oallow_other", "/c", "-o", "ro", "/m"])).unwrap();
        assert!(i.sloppy && i.verbose && !i.fake);
        assert_eq!(i.options, ["allow_other", "ro"]);
        assert_eq!(i.source, "/c");
        assert_eq!(i.target, "/m");

        let i = parse_args(&os(&["/c", "--", "-odd-name"])).unwrap();
        assert_eq!(i.target, "./-odd-name");
        let (args, _) = translate(&i, everything_known).unwrap();
        assert_eq!(strs(&args), ["mount", "/c", "./-odd-name"]);
    }

    #[test]
    fn bad_helper_arguments_are_errors_that_say_what_is_wrong() {
        let e = parse_args(&os(&["/c"])).unwrap_err();
        assert!(e.contains("TARGET) is missing"), "{e}");
        let e = parse_args(&os(&[])).unwrap_err();
        assert!(e.contains("SOURCE) is missing"), "{e}");
        let e = parse_args(&os(&["/c", "/m", "/x"])).unwrap_err();
        assert!(e.contains("unexpected argument /x"), "{e}");
        let e = parse_args(&os(&["/c", "/m", "-o"])).unwrap_err();
        assert!(e.contains("-o needs a value"), "{e}");
        let e = parse_args(&os(&["/c", "/m", "-q"])).unwrap_err();
        assert!(e.contains("unknown option -q"), "{e}");
        let e = parse_args(&os(&["/c", "/m", "-N", "/proc/1/ns/mnt"])).unwrap_err();
        assert!(e.contains("namespace is not supported"), "{e}");
        let e = parse_args(&os(&["/c", "/m", "-o", "fsname=\"a,b"])).unwrap_err();
        assert!(e.contains("unbalanced quote"), "{e}");
    }

    #[test]
    fn options_split_at_commas_outside_quotes() {
        assert_eq!(
            split_options("a,,b=1,fsname=\"x,y\",c").unwrap(),
            ["a", "b=1", "fsname=x,y", "c"]
        );
        assert!(split_options("").unwrap().is_empty());
    }

    #[test]
    fn each_option_maps_to_a_flag_is_dropped_or_passes() {
        for (name, flag) in FLAG_OPTIONS {
            assert_eq!(
                map_option(&format!("{name}=v1")).unwrap(),
                Mapped::Flag(flag, "v1".into()),
                "{name}"
            );
            let e = map_option(name).unwrap_err();
            assert!(e.contains("needs a value"), "{name}: {e}");
            assert!(map_option(&format!("{name}=")).is_err(), "{name}=");
        }
        for o in [
            "_netdev",
            "nofail",
            "noauto",
            "auto",
            "user",
            "users",
            "defaults",
            "x-systemd.requires=kmsd.service",
            "x-systemd.automount",
            "x-anything",
            "comment=systemd.automount",
            "user=alice",
        ] {
            assert_eq!(map_option(o).unwrap(), Mapped::Drop, "{o}");
        }
        for o in [
            "allow_other",
            "ro",
            "rw",
            "noexec",
            "nosuid",
            "nodev",
            "noatime",
            "fsname=vault",
            "frobnicate=3",
        ] {
            assert_eq!(map_option(o).unwrap(), Mapped::Pass(o.into()), "{o}");
        }
    }

    #[test]
    fn an_fstab_line_translates_into_kmsfs_mount() {
        let inv = parse_args(&os(&[
            "/srv/.data",
            "/srv/data",
            "-o",
            "key=alias/x,socket=/run/kmsd/kmsd.sock,allow_other,_netdev,\
             x-systemd.requires=kmsd.service,cache_ttl=60,noatime",
        ]))
        .unwrap();
        let (args, unknown) = translate(&inv, everything_known).unwrap();
        assert_eq!(
            strs(&args),
            [
                "mount",
                "/srv/.data",
                "/srv/data",
                "--key-id",
                "alias/x",
                "--socket",
                "/run/kmsd/kmsd.sock",
                "--cache-ttl",
                "60",
                "-o",
                "allow_other,noatime",
            ]
        );
        assert!(unknown.is_empty());
    }

    #[test]
    fn the_aws_backend_options_become_its_flags() {
        let inv = Invocation {
            source: "/c".into(),
            target: "/m".into(),
            options: split_options(
                "kms=aws,endpoint_url=https://kms.example:8443,profile=ops,region=eu-west-1,key=alias/x",
            )
            .unwrap(),
            ..Invocation::default()
        };
        let (args, _) = translate(&inv, everything_known).unwrap();
        assert_eq!(
            strs(&args),
            [
                "mount",
                "/c",
                "/m",
                "--kms",
                "aws",
                "--endpoint-url",
                "https://kms.example:8443",
                "--profile",
                "ops",
                "--region",
                "eu-west-1",
                "--key-id",
                "alias/x",
            ]
        );
    }

    #[test]
    fn the_last_of_a_repeated_setting_wins_and_no_options_means_no_dash_o() {
        let inv = Invocation {
            source: "/c".into(),
            target: "/m".into(),
            options: split_options("key=a,defaults,key=b,_netdev").unwrap(),
            ..Invocation::default()
        };
        let (args, _) = translate(&inv, everything_known).unwrap();
        assert_eq!(strs(&args), ["mount", "/c", "/m", "--key-id", "b"]);
    }

    #[test]
    fn unknown_options_fail_in_kmsfs_unless_the_mount_is_sloppy() {
        let mut inv = Invocation {
            source: "/c".into(),
            target: "/m".into(),
            options: split_options("allow_other,frobnicate=3,relatime").unwrap(),
            ..Invocation::default()
        };
        // Not sloppy: passed on, for kmsfs mount's parser to refuse.
        let (args, unknown) = translate(&inv, known_mount_option).unwrap();
        assert_eq!(
            strs(&args),
            [
                "mount",
                "/c",
                "/m",
                "-o",
                "allow_other,frobnicate=3,relatime"
            ]
        );
        assert!(unknown.is_empty());
        let e = crate::fs::mount::parse_options(&["allow_other,frobnicate=3,relatime"])
            .map(|_| ())
            .unwrap_err();
        assert!(e.contains("frobnicate"), "{e}");
        // Sloppy: dropped, and named.
        inv.sloppy = true;
        let (args, unknown) = translate(&inv, known_mount_option).unwrap();
        assert_eq!(strs(&args), ["mount", "/c", "/m", "-o", "allow_other"]);
        assert_eq!(unknown, ["frobnicate=3", "relatime"]);
    }

    #[test]
    fn a_passed_option_holding_a_comma_is_refused() {
        let inv = Invocation {
            source: "/c".into(),
            target: "/m".into(),
            options: split_options("fsname=\"a,b\"").unwrap(),
            ..Invocation::default()
        };
        let e = translate(&inv, everything_known).unwrap_err();
        assert!(e.contains("comma"), "{e}");
    }

    #[test]
    fn a_bad_setting_is_an_error_not_a_panic() {
        let inv = parse_args(&os(&["/c", "/m", "-o", "key"])).unwrap();
        let e = translate(&inv, everything_known).unwrap_err();
        assert!(e.contains("key needs a value"), "{e}");
    }
}
