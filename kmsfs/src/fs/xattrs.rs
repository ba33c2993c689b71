//! Extended attributes. Format 1: `user.*` values encrypted under a volume
//! key ([`super::xattr::XattrCipher`]), other namespaces passed through.
//! Format 2 (docs/FORMAT.md "Extended attributes"): `user.*` and
//! `trusted.*` values encrypted under the node's own key and bound to its
//! id and the name; `security.*` absent; everything else refused. Both:
//! POSIX ACLs stored as they are on the backing inode (below, [`acl_get`]).

use super::inode::Inode;
use super::sys::{self, XattrTarget};
use super::xattr::{is_encrypted, is_posix_acl};
use super::{KmsFs, Layout};
use crate::format::FileCipher;
use crate::format::xattr::{Node, XattrCipherV2, XattrPolicy, policy};
use fuser::{Errno, FileType, INodeNo};
use std::ffi::CStr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The xattr the kernel asks for before writes.
const CAPS: &[u8] = b"security.capability";

/// Where an inode's xattr calls go: its shared descriptor when open (no
/// `/proc` path lookup). Format 2 stores a symlink's values on the backing
/// symlink (its `O_PATH` descriptor); format 1 stores none there.
fn xattr_target<'a>(inode: &'a Inode, layout: &Layout) -> XattrTarget<'a> {
    if inode.is_symlink() {
        return match layout {
            Layout::V2(_) => XattrTarget::Path(inode.fd()),
            Layout::V1 { .. } => XattrTarget::Symlink,
        };
    }
    match inode.io_if_open() {
        Some(io) => XattrTarget::Open(io.file.as_fd()),
        None => XattrTarget::Path(inode.fd()),
    }
}

/// An ACL of `inode` as the backing file system holds it. A backing file
/// system without ACLs answers `EOPNOTSUPP`, which becomes "no ACL"
/// (`ENODATA`): the kernel asks for the access ACL when it checks a
/// caller's permissions, and an error there would deny everyone but the
/// owner; with no ACL the mode bits decide, as on ext4 mounted `noacl`.
/// Setting one still fails with `EOPNOTSUPP`.
fn acl_get(t: XattrTarget<'_>, name: &CStr) -> Result<Vec<u8>, Errno> {
    match sys::getxattr(t, name) {
        Err(e) if e == Errno::EOPNOTSUPP => Err(Errno::ENODATA),
        r => r,
    }
}

/// The cipher of one node's values (format 2).
enum Sealer<'a> {
    Shared(&'a XattrCipherV2),
    File(Arc<FileCipher>),
}

impl Sealer<'_> {
    fn cipher(&self) -> Result<&XattrCipherV2, Errno> {
        match self {
            Sealer::Shared(c) => Ok(c),
            Sealer::File(f) => f.xattr().ok_or(Errno::EIO),
        }
    }
}

/// A `listxattr` result with only the names `keep` accepts.
fn filter_list(list: Vec<u8>, keep: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(list.len());
    for name in list.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        if keep(name) {
            out.extend_from_slice(name);
            out.push(0);
        }
    }
    out
}

/// Format 2: whether `name` can be read or removed (`user.*`,
/// `trusted.*`); `security.*` is absent, anything else refused.
fn readable(name: &[u8]) -> Result<(), Errno> {
    match policy(name) {
        XattrPolicy::Encrypt => Ok(()),
        XattrPolicy::Absent => Err(Errno::ENODATA),
        XattrPolicy::Refuse => Err(Errno::EOPNOTSUPP),
    }
}

impl KmsFs {
    /// The node id and cipher of `inode`'s values (format 2): a regular
    /// file's own key, else the volume's node key; FIFOs, sockets and
    /// devices have no id (`EOPNOTSUPP`).
    fn sealer(&self, inode: &Inode) -> Result<(Node, Sealer<'_>), Errno> {
        let Layout::V2(v2) = &self.layout else {
            return Err(Errno::EOPNOTSUPP);
        };
        match inode.kind {
            FileType::Directory => Ok((
                Node::dir(self.dir_id(inode, true)?),
                Sealer::Shared(&v2.node_xattr),
            )),
            FileType::Symlink => Ok((
                Node::symlink(self.link_id(inode)?),
                Sealer::Shared(&v2.node_xattr),
            )),
            FileType::RegularFile => {
                let c = self.file_cipher(inode)?;
                Ok((Node::file(c.file_id()), Sealer::File(c)))
            }
            _ => Err(Errno::EOPNOTSUPP),
        }
    }

    fn damaged_xattr(&self, inode: &Inode, name: &CStr) -> Errno {
        self.stats.count_damaged_read();
        tracing::error!(
            "{}: extended attribute {} failed authentication; returning EIO",
            self.display_path(inode),
            kmsd_client::logsafe::escape_bytes(name.to_bytes())
        );
        Errno::EIO
    }

    pub(super) fn do_getxattr(&self, ino: INodeNo, name: &CStr) -> Result<Vec<u8>, Errno> {
        let n = name.to_bytes();
        let inode = self.inode(ino)?;
        if is_posix_acl(n) {
            return acl_get(xattr_target(&inode, &self.layout), name);
        }
        let caps = n == CAPS;
        if caps && inode.no_caps.load(Ordering::Relaxed) {
            return Err(Errno::ENODATA);
        }
        if let Layout::V2(_) = &self.layout {
            readable(n)?;
            let (node, sealer) = self.sealer(&inode)?;
            let raw = sys::getxattr(xattr_target(&inode, &self.layout), name)?;
            return sealer
                .cipher()?
                .open(&node, n, &raw)
                .map_err(|_| self.damaged_xattr(&inode, name));
        }
        let raw = match sys::getxattr(xattr_target(&inode, &self.layout), name) {
            Err(e) if caps && e == Errno::ENODATA => {
                inode.no_caps.store(true, Ordering::Relaxed);
                return Err(e);
            }
            r => r?,
        };
        let Layout::V1 { xattr } = &self.layout else {
            return Err(Errno::EIO);
        };
        if !is_encrypted(n) {
            return Ok(raw);
        }
        xattr
            .open(n, &raw)
            .map_err(|_| self.damaged_xattr(&inode, name))
    }

    pub(super) fn do_setxattr(
        &self,
        ino: INodeNo,
        name: &CStr,
        value: &[u8],
        flags: i32,
    ) -> Result<(), Errno> {
        let n = name.to_bytes();
        let inode = self.inode(ino)?;
        if is_posix_acl(n) {
            // The backing file system validates the ACL and sets the
            // mode's group bits from its mask (and may store no xattr at
            // all when the ACL says no more than the mode).
            sys::setxattr(xattr_target(&inode, &self.layout), name, value, flags)?;
            self.attrs_changed(&inode);
            return Ok(());
        }
        let sealed = match &self.layout {
            Layout::V2(_) => {
                if policy(n) != XattrPolicy::Encrypt {
                    return Err(Errno::EOPNOTSUPP);
                }
                let (node, sealer) = self.sealer(&inode)?;
                sealer
                    .cipher()?
                    .seal(&node, n, value)
                    .map_err(|_| Errno::EIO)?
            }
            Layout::V1 { xattr } => {
                if n == CAPS {
                    inode.no_caps.store(false, Ordering::Relaxed);
                }
                if !is_encrypted(n) {
                    return sys::setxattr(xattr_target(&inode, &self.layout), name, value, flags);
                }
                xattr.seal(n, value)?
            }
        };
        sys::setxattr(xattr_target(&inode, &self.layout), name, &sealed, flags)
    }

    pub(super) fn do_listxattr(&self, ino: INodeNo) -> Result<Vec<u8>, Errno> {
        let inode = self.inode(ino)?;
        let list = sys::listxattr(xattr_target(&inode, &self.layout))?;
        Ok(match &self.layout {
            Layout::V1 { .. } => list,
            Layout::V2(_) => filter_list(list, |n| {
                is_posix_acl(n) || policy(n) == XattrPolicy::Encrypt
            }),
        })
    }

    pub(super) fn do_removexattr(&self, ino: INodeNo, name: &CStr) -> Result<(), Errno> {
        let n = name.to_bytes();
        let inode = self.inode(ino)?;
        if is_posix_acl(n) {
            sys::removexattr(xattr_target(&inode, &self.layout), name)?;
            self.attrs_changed(&inode);
            return Ok(());
        }
        if let Layout::V2(_) = &self.layout {
            readable(n)?;
        }
        sys::removexattr(xattr_target(&inode, &self.layout), name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_keep_only_accepted_names() {
        let l =
            b"user.a\0security.selinux\0trusted.b\0system.x\0system.posix_acl_access\0".to_vec();
        assert_eq!(
            filter_list(l.clone(), |n| policy(n) == XattrPolicy::Encrypt),
            b"user.a\0trusted.b\0"
        );
        assert_eq!(
            filter_list(l, |n| is_posix_acl(n) || policy(n) == XattrPolicy::Encrypt),
            b"user.a\0trusted.b\0system.posix_acl_access\0"
        );
        assert_eq!(filter_list(Vec::new(), |_| true), b"");
    }
}
