//! File handles (name_to_handle_at(2) / open_by_handle_at(2), what an NFS
//! export uses) keep working after the kernel has forgotten the inode:
//! kmsfs answers the kernel's lookup of a node by id (`FUSE_EXPORT_SUPPORT`,
//! kmsfs/src/fs/export.rs). Checked on the two name layouts, after the
//! kernel's caches are dropped (the mount's own inode count shows it
//! forgot them): a file read back by handle, after a rename to another
//! directory too; a directory listed by handle; a deleted file's handle
//! stale (`ESTALE`).

mod common;
#[path = "common/mount.rs"]
mod mount;

use common::KmsdProcess;
use common::sys::{cpath, errno};
use mount::Volume;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::Path;
use std::time::{Duration, Instant};

/// `struct file_handle` with room for the largest handle.
#[repr(C)]
struct Handle {
    bytes: u32,
    kind: i32,
    data: [u8; 128],
}

fn handle_of(p: &Path) -> Handle {
    let mut h = Handle {
        bytes: 128,
        kind: 0,
        data: [0; 128],
    };
    let mut mount_id = 0;
    let c = cpath(p);
    // SAFETY: valid path and a buffer of `bytes` bytes.
    let r = unsafe {
        libc::name_to_handle_at(
            libc::AT_FDCWD,
            c.as_ptr(),
            (&mut h as *mut Handle).cast(),
            &mut mount_id,
            0,
        )
    };
    assert_eq!(r, 0, "name_to_handle_at {}: errno {}", p.display(), errno());
    h
}

/// open_by_handle_at(2) on the mount: the file, or the errno.
fn open_by(mount: &File, h: &mut Handle, flags: i32) -> Result<File, i32> {
    // SAFETY: valid fd and handle.
    let fd =
        unsafe { libc::open_by_handle_at(mount.as_raw_fd(), (h as *mut Handle).cast(), flags) };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: a descriptor we own from here on.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Drops the kernel's dentries and inodes until the mount has forgotten
/// all but `at_most` of its nodes.
fn forget_all(vol: &Volume, at_most: u64) {
    let t0 = Instant::now();
    loop {
        std::fs::write("/proc/sys/vm/drop_caches", "2").expect("drop caches");
        let n = vol.status()["fs"]["inodes"]
            .as_u64()
            .expect("status fs.inodes");
        if n <= at_most {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the kernel still holds {n} nodes of the mount"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn read_all(mut f: File) -> Vec<u8> {
    let mut v = Vec::new();
    f.read_to_end(&mut v).unwrap();
    v
}

fn handles_outlive_the_kernel_cache(init_args: &[&str]) {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create_init(&kmsd, init_args);
    let _m = vol.mount(&[]);
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::create_dir_all(vol.path("a/b")).unwrap();
    std::fs::create_dir(vol.path("c")).unwrap();
    std::fs::write(vol.path("a/b/file"), &data).unwrap();
    std::fs::write(vol.path("a/moved"), b"moved content").unwrap();
    std::fs::write(vol.path("a/deleted"), b"gone").unwrap();
    let mut file = handle_of(&vol.path("a/b/file"));
    let mut moved = handle_of(&vol.path("a/moved"));
    let mut deleted = handle_of(&vol.path("a/deleted"));
    let mut dir = handle_of(&vol.path("a/b"));
    std::fs::rename(vol.path("a/moved"), vol.path("c/moved")).unwrap();
    std::fs::remove_file(vol.path("a/deleted")).unwrap();
    let mount = File::open(&vol.mountpoint).unwrap();
    // The root, and nothing else.
    forget_all(&vol, 1);

    let f = open_by(&mount, &mut file, libc::O_RDONLY)
        .unwrap_or_else(|e| panic!("open the file by handle: errno {e}; log:\n{}", vol.log()));
    assert_eq!(read_all(f), data, "content by handle");
    let f = open_by(&mount, &mut moved, libc::O_RDONLY).expect("open the moved file by handle");
    assert_eq!(
        read_all(f),
        b"moved content",
        "content of a moved file by handle"
    );
    let d = open_by(&mount, &mut dir, libc::O_RDONLY | libc::O_DIRECTORY)
        .expect("open the directory by handle");
    let names: Vec<String> = std::fs::read_dir(format!("/proc/self/fd/{}", d.as_raw_fd()))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["file".to_string()], "listing by handle");
    assert_eq!(
        open_by(&mount, &mut deleted, libc::O_RDONLY).err(),
        Some(libc::ESTALE),
        "a deleted file's handle"
    );
    drop(d);

    // Forgotten again, with the directory reached by handle connected to
    // the tree (`..`): its path is the real one.
    forget_all(&vol, 1);
    let d = open_by(&mount, &mut dir, libc::O_RDONLY | libc::O_DIRECTORY).unwrap();
    let path = std::fs::read_link(format!("/proc/self/fd/{}", d.as_raw_fd())).unwrap();
    assert_eq!(
        path,
        vol.path("a/b"),
        "the path of a directory opened by handle"
    );
}

#[test]
fn file_handles_outlive_the_kernel_cache_with_encrypted_names() {
    handles_outlive_the_kernel_cache(&[]);
}

#[test]
fn file_handles_outlive_the_kernel_cache_with_plaintext_names() {
    handles_outlive_the_kernel_cache(&["--plaintext-names"]);
}

#[test]
fn file_handles_outlive_the_kernel_cache_on_format_1() {
    handles_outlive_the_kernel_cache(&["--format", "1"]);
}
