//! The kmsfs command line around a mount: background mounting and its
//! readiness, refusing bad mountpoints, `status`, `umount` (busy, lazy,
//! waiting for the process), signals, `-o ro`, and the key cache options.

mod common;
#[path = "common/mount.rs"]
mod mount;

use common::KmsdProcess;
use mount::{Volume, is_mounted, text, wait_exit};
use std::time::Duration;

#[test]
fn mount_returns_ready_and_umount_waits_for_the_process() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let m = vol.mount(&[]);
    // Ready on return: the first access needs no retry.
    std::fs::write(vol.path("x"), b"y").unwrap();
    let pid = m.pid.expect("status reports the pid");
    assert!(is_mounted(&vol.mountpoint));
    let out = vol
        .kmsfs()
        .arg("umount")
        .arg(&vol.mountpoint)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(!is_mounted(&vol.mountpoint));
    assert!(
        wait_exit(pid, Duration::from_millis(100)),
        "umount returned before the process exited"
    );
    // Its control socket is gone with it.
    let out = vol
        .kmsfs()
        .arg("status")
        .arg(&vol.mountpoint)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no kmsfs mount"),
        "{}",
        text(&out)
    );
    drop(m);
}

#[test]
fn bad_mountpoints_and_double_mounts_are_refused() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let mut c = vol.kmsfs();
    let out = c
        .arg("mount")
        .arg(&vol.cipherdir)
        .arg(vol.tmp.path().join("missing"))
        .arg("--socket")
        .arg(&vol.socket)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("mountpoint"),
        "{}",
        text(&out)
    );
    std::fs::create_dir(vol.cipherdir.join("inner")).unwrap();
    let out = vol
        .kmsfs()
        .arg("mount")
        .arg(&vol.cipherdir)
        .arg(vol.cipherdir.join("inner"))
        .arg("--socket")
        .arg(&vol.socket)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("must not be inside"),
        "{}",
        text(&out)
    );
    let out = vol.try_mount(&["-o", "bogus_option"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bogus_option"),
        "{}",
        text(&out)
    );
    let _m = vol.mount(&[]);
    let out = vol
        .kmsfs()
        .arg("mount")
        .arg(&vol.cipherdir)
        .arg(&vol.mountpoint)
        .arg("--socket")
        .arg(&vol.socket)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already a kmsfs mount"),
        "{}",
        text(&out)
    );
}

#[test]
fn busy_mounts_need_lazy_umount() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let m = vol.mount(&[]);
    let pid = m.pid.unwrap();
    let f = std::fs::File::create(vol.path("open")).unwrap();
    let out = vol
        .kmsfs()
        .arg("umount")
        .arg(&vol.mountpoint)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a busy mount unmounted: {}",
        text(&out)
    );
    assert!(is_mounted(&vol.mountpoint));
    let out = vol
        .kmsfs()
        .arg("umount")
        .arg("-z")
        .arg(&vol.mountpoint)
        .output()
        .unwrap();
    assert!(!is_mounted(&vol.mountpoint), "{}", text(&out));
    drop(f);
    assert!(wait_exit(pid, Duration::from_secs(10)));
    drop(m);
}

#[test]
fn umount_waits_a_moment_for_a_mount_that_stops_being_busy() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let m = vol.mount(&[]);
    let pid = m.pid.unwrap();
    let f = std::fs::File::create(vol.path("open")).unwrap();
    let umount = {
        let mut c = vol.kmsfs();
        c.arg("umount").arg(&vol.mountpoint);
        std::thread::spawn(move || c.output().expect("run kmsfs umount"))
    };
    // Busy when the umount starts; the last file closes half a second in.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        is_mounted(&vol.mountpoint),
        "unmounted while a file was open"
    );
    drop(f);
    let out = umount.join().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(!is_mounted(&vol.mountpoint));
    assert!(wait_exit(pid, Duration::from_secs(10)));
    drop(m);
}

#[test]
fn sigterm_unmounts_cleanly() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let m = vol.mount(&[]);
    std::fs::write(vol.path("kept"), b"data").unwrap();
    let pid = m.pid.unwrap();
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    assert!(wait_exit(pid, Duration::from_secs(10)));
    assert!(!is_mounted(&vol.mountpoint));
    assert!(vol.log().contains("unmounted"), "{}", vol.log());
    drop(m);
    let _m = vol.mount(&[]);
    assert_eq!(std::fs::read(vol.path("kept")).unwrap(), b"data");
}

#[test]
fn read_only_mounts_refuse_writes() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let m = vol.mount(&[]);
    std::fs::write(vol.path("f"), b"content").unwrap();
    m.unmount();
    let _m = vol.mount(&["-o", "ro"]);
    assert_eq!(std::fs::read(vol.path("f")).unwrap(), b"content");
    let e = std::fs::write(vol.path("g"), b"x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EROFS));
}

#[test]
fn foreground_mode_serves_until_unmounted() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let mut child = vol
        .kmsfs()
        .arg("mount")
        .arg("--foreground")
        .arg(&vol.cipherdir)
        .arg(&vol.mountpoint)
        .arg("--socket")
        .arg(&vol.socket)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !is_mounted(&vol.mountpoint) {
        assert!(
            std::time::Instant::now() < deadline,
            "foreground mount never came up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The guard unmounts; the foreground process then exits with 0.
    let guard = mount::MountGuard::adopt(&vol);
    std::fs::write(vol.path("f"), b"fg").unwrap();
    guard.unmount();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn status_text_names_every_figure() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let _m = vol.mount(&["--cache-capacity", "2", "--pool-size", "0"]);
    for i in 0..4 {
        std::fs::write(vol.path(&format!("f{i}")), b"x").unwrap();
    }
    let s = vol.status();
    // Four new keys into a cache of two: two evicted.
    assert_eq!(s["cache"]["capacity"], 2, "{s}");
    assert_eq!(s["cache"]["entries"], 2, "{s}");
    assert_eq!(s["cache"]["evictions"], 2, "{s}");
    let out = vol
        .kmsfs()
        .arg("status")
        .arg(&vol.mountpoint)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let t = String::from_utf8_lossy(&out.stdout);
    for word in [
        "entries 2",
        "hits",
        "misses",
        "evictions 2",
        "calls",
        "errors 0",
        "inodes",
    ] {
        assert!(t.contains(word), "status lacks {word:?}:\n{t}");
    }
}

#[test]
fn cat_and_fsck_work_without_a_mount() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let m = vol.mount(&[]);
    let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::create_dir(vol.path("d")).unwrap();
    std::fs::write(vol.path("d/f"), &data).unwrap();
    std::fs::write(vol.path("g"), b"small").unwrap();
    let p = vol.backing("d/f");
    m.unmount();
    let run = |args: &[&str]| {
        vol.kmsfs()
            .args(args)
            .arg("--socket")
            .arg(&vol.socket)
            .output()
            .unwrap()
    };
    let c = vol.cipherdir.to_str().unwrap();
    let out = run(&["cat", c, "d/f"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(out.stdout, data);
    let out = run(&["fsck", c]);
    assert!(out.status.success(), "{}", text(&out));
    // Damage block 2 of d/f.
    let mut raw = std::fs::read(&p).unwrap();
    raw[512 + 2 * 4124 + 100] ^= 1;
    std::fs::write(&p, raw).unwrap();
    let out = run(&["fsck", c]);
    assert!(!out.status.success());
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("d/f") && report.contains("block 2"),
        "{report}"
    );
    let out = run(&["cat", c, "d/f"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("block 2"),
        "{}",
        text(&out)
    );
}
