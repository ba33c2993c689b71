//! Mounted end-to-end tests of kmsfs: POSIX behaviour through a real FUSE
//! mount backed by a real kmsd.

mod common;
#[path = "common/mount.rs"]
mod mount;

use common::KmsdProcess;
use mount::Volume;

#[test]
fn smoke_write_read_remount() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let m = vol.mount(&[]);
    std::fs::write(vol.path("hello.txt"), b"hello world").unwrap();
    assert_eq!(
        std::fs::read(vol.path("hello.txt")).unwrap(),
        b"hello world"
    );
    m.unmount();
    let _m = vol.mount(&[]);
    assert_eq!(
        std::fs::read(vol.path("hello.txt")).unwrap(),
        b"hello world"
    );
}
