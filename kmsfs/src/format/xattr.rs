//! Version 2 extended attributes (docs/FORMAT.md, "Extended attributes"):
//! which namespaces are stored, the associated data that binds a value to
//! its node and name, and the value codec. Regular files use a key derived
//! from their own data key; directories and symlinks one derived from the
//! volume's name key.

use super::ids::{DirId, FileId, LinkId};
use super::kdf::{DataKey, FILE_XATTR_LABEL, NODE_XATTR_LABEL};
use super::offsets::{NONCE_SIZE, TAG_SIZE};
use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit};
use std::fmt;

/// Leading byte of every version 2 stored value.
pub const XATTR_VERSION_2: u8 = 2;
/// Domain separation at the start of a value's associated data.
pub const XATTR_AAD_DOMAIN_V2: &[u8] = b"kmsfs xattr v2\0";
/// Bytes a stored value adds to the plaintext.
pub const XATTR_OVERHEAD_V2: usize = VALUE_OVERHEAD;
/// Bytes [`seal_value`] adds, in either version.
pub const VALUE_OVERHEAD: usize = 1 + NONCE_SIZE + TAG_SIZE;

/// What an attribute name gets in version 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XattrPolicy {
    /// `user.*`, `trusted.*`: the value is encrypted and bound.
    Encrypt,
    /// `security.*`: never stored; get and remove say `ENODATA`, set says
    /// `EOPNOTSUPP`.
    Absent,
    /// `system.*` (POSIX ACLs included) and anything else: `EOPNOTSUPP`.
    Refuse,
}

/// The policy of attribute `name`.
pub fn policy(name: &[u8]) -> XattrPolicy {
    if name.starts_with(b"user.") || name.starts_with(b"trusted.") {
        XattrPolicy::Encrypt
    } else if name.starts_with(b"security.") {
        XattrPolicy::Absent
    } else {
        XattrPolicy::Refuse
    }
}

/// The node a value belongs to: its kind and 16-byte id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Node {
    kind: u8,
    id: [u8; 16],
}

impl Node {
    /// A regular file (the file id of its header).
    pub fn file(id: FileId) -> Node {
        Node {
            kind: b'f',
            id: id.0,
        }
    }

    /// A directory (its `kmsfs.dirid`; the root's is the volume id).
    pub fn dir(id: DirId) -> Node {
        Node {
            kind: b'd',
            id: id.0,
        }
    }

    /// A symlink (the id in front of its stored target).
    pub fn symlink(id: LinkId) -> Node {
        Node {
            kind: b'l',
            id: id.0,
        }
    }
}

/// `XATTR_AAD_DOMAIN_V2 ‖ u8 kind ‖ node id (16) ‖ attribute name`.
pub fn xattr_aad(node: &Node, name: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(XATTR_AAD_DOMAIN_V2.len() + 17 + name.len());
    a.extend_from_slice(XATTR_AAD_DOMAIN_V2);
    a.push(node.kind);
    a.extend_from_slice(&node.id);
    a.extend_from_slice(name);
    a
}

/// Why a value could not be sealed or opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum XattrError {
    /// The stored value does not authenticate for this node and name, or
    /// is malformed (`EIO`).
    Authentication,
    /// The operating system's random generator failed.
    Random,
}

impl fmt::Display for XattrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XattrError::Authentication => f.write_str("xattr value failed authentication"),
            XattrError::Random => f.write_str("no random nonce available from the OS"),
        }
    }
}

impl std::error::Error for XattrError {}

/// An xattr value cipher: one per regular file (from its data key), one
/// per volume for directories and symlinks (from the name key). The
/// expanded key is wiped on drop; no `Debug`.
pub struct XattrCipherV2 {
    aead: Aes256Gcm,
}

impl XattrCipherV2 {
    fn with(key: &DataKey, label: &[u8]) -> Self {
        let k = key.derive(label);
        let aead = match Aes256Gcm::new_from_slice(k.as_ref()) {
            Ok(a) => a,
            Err(_) => unreachable!("AES-256 key is 32 bytes"),
        };
        XattrCipherV2 { aead }
    }

    /// The cipher of one regular file's values.
    pub fn for_file(file_key: &DataKey) -> Self {
        Self::with(file_key, FILE_XATTR_LABEL)
    }

    /// The cipher of every directory's and symlink's values.
    pub fn for_nodes(name_key: &DataKey) -> Self {
        Self::with(name_key, NODE_XATTR_LABEL)
    }

    /// The stored form of `value` of attribute `name` of `node`.
    pub fn seal(&self, node: &Node, name: &[u8], value: &[u8]) -> Result<Vec<u8>, XattrError> {
        let mut nonce = [0u8; NONCE_SIZE];
        getrandom::fill(&mut nonce).map_err(|_| XattrError::Random)?;
        self.seal_with_nonce(node, name, value, &nonce)
    }

    /// [`XattrCipherV2::seal`] with a given nonce (golden vectors).
    pub(crate) fn seal_with_nonce(
        &self,
        node: &Node,
        name: &[u8],
        value: &[u8],
        nonce: &[u8; NONCE_SIZE],
    ) -> Result<Vec<u8>, XattrError> {
        seal_value(
            &self.aead,
            XATTR_VERSION_2,
            nonce,
            &xattr_aad(node, name),
            value,
        )
    }

    /// The plaintext value of a stored one.
    pub fn open(&self, node: &Node, name: &[u8], stored: &[u8]) -> Result<Vec<u8>, XattrError> {
        open_value(&self.aead, XATTR_VERSION_2, &xattr_aad(node, name), stored)
    }
}

/// A stored value in either format version: `version (1) ‖ nonce (12) ‖
/// AES-256-GCM(value) ‖ tag (16)`. The versions differ only in the
/// version byte, the key and the associated data.
pub fn seal_value(
    aead: &Aes256Gcm,
    version: u8,
    nonce: &[u8; NONCE_SIZE],
    aad: &[u8],
    value: &[u8],
) -> Result<Vec<u8>, XattrError> {
    let mut out = vec![0u8; VALUE_OVERHEAD + value.len()];
    out[0] = version;
    out[1..1 + NONCE_SIZE].copy_from_slice(nonce);
    let (body, tag_out) = out[1 + NONCE_SIZE..].split_at_mut(value.len());
    body.copy_from_slice(value);
    let tag = aead
        .encrypt_inout_detached(&(*nonce).into(), aad, body.into())
        .map_err(|_| XattrError::Authentication)?;
    tag_out.copy_from_slice(&tag);
    Ok(out)
}

/// The plaintext of a value [`seal_value`] stored with `version`.
pub fn open_value(
    aead: &Aes256Gcm,
    version: u8,
    aad: &[u8],
    stored: &[u8],
) -> Result<Vec<u8>, XattrError> {
    if stored.len() < VALUE_OVERHEAD || stored[0] != version {
        return Err(XattrError::Authentication);
    }
    let mut nonce = [0u8; NONCE_SIZE];
    nonce.copy_from_slice(&stored[1..1 + NONCE_SIZE]);
    let (body, tag) = stored[1 + NONCE_SIZE..].split_at(stored.len() - VALUE_OVERHEAD);
    let mut t = [0u8; TAG_SIZE];
    t.copy_from_slice(tag);
    let mut out = body.to_vec();
    aead.decrypt_inout_detached(
        &nonce.into(),
        aad,
        out.as_mut_slice().into(),
        &aes_gcm::Tag::from(t),
    )
    .map_err(|_| XattrError::Authentication)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies() {
        assert_eq!(policy(b"user.mime"), XattrPolicy::Encrypt);
        assert_eq!(policy(b"trusted.overlay.opaque"), XattrPolicy::Encrypt);
        assert_eq!(policy(b"security.capability"), XattrPolicy::Absent);
        assert_eq!(policy(b"security.selinux"), XattrPolicy::Absent);
        assert_eq!(policy(b"system.posix_acl_access"), XattrPolicy::Refuse);
        assert_eq!(policy(b"system.posix_acl_default"), XattrPolicy::Refuse);
        assert_eq!(policy(b"system.nfs4_acl"), XattrPolicy::Refuse);
        assert_eq!(policy(b"user"), XattrPolicy::Refuse);
        assert_eq!(policy(b"userx.a"), XattrPolicy::Refuse);
    }

    #[test]
    fn aad_layout() {
        let a = xattr_aad(&Node::file(FileId([7; 16])), b"user.a");
        assert_eq!(a.len(), 15 + 1 + 16 + 6);
        assert_eq!(&a[..15], b"kmsfs xattr v2\0");
        assert_eq!(a[15], b'f');
        assert_eq!(&a[16..32], &[7; 16]);
        assert_eq!(&a[32..], b"user.a");
        assert_eq!(xattr_aad(&Node::dir(DirId([7; 16])), b"")[15], b'd');
        assert_eq!(xattr_aad(&Node::symlink(LinkId([7; 16])), b"")[15], b'l');
    }

    #[test]
    fn values_are_bound_to_node_kind_id_and_name() {
        let fk = DataKey::from_slice(&[1; 32]).unwrap();
        let c = XattrCipherV2::for_file(&fk);
        let f = Node::file(FileId([0x31; 16]));
        for v in [&b""[..], b"x", &[9u8; 5000]] {
            let s = c.seal(&f, b"user.a", v).unwrap();
            assert_eq!(s.len(), v.len() + XATTR_OVERHEAD_V2);
            assert_eq!(c.open(&f, b"user.a", &s).unwrap(), v);
            assert_eq!(c.open(&f, b"user.b", &s), Err(XattrError::Authentication));
        }
        let s = c.seal(&f, b"user.a", b"secret value").unwrap();
        assert!(!s.windows(6).any(|w| w == b"secret"));
        // Moved to another file: another id fails even under the same key,
        // and another file's key fails.
        let g = Node::file(FileId([0x32; 16]));
        assert_eq!(c.open(&g, b"user.a", &s), Err(XattrError::Authentication));
        let other = XattrCipherV2::for_file(&DataKey::from_slice(&[2; 32]).unwrap());
        assert_eq!(
            other.open(&f, b"user.a", &s),
            Err(XattrError::Authentication)
        );
        // The same id as a directory or symlink under the node key.
        let nodes = XattrCipherV2::for_nodes(&DataKey::from_slice(&[3; 32]).unwrap());
        let d = Node::dir(DirId([0x31; 16]));
        let l = Node::symlink(LinkId([0x31; 16]));
        let sd = nodes.seal(&d, b"trusted.x", b"v").unwrap();
        assert_eq!(nodes.open(&d, b"trusted.x", &sd).unwrap(), b"v");
        assert_eq!(
            nodes.open(&l, b"trusted.x", &sd),
            Err(XattrError::Authentication)
        );
        // Edited, truncated, wrong version.
        let mut t = s.clone();
        t[20] ^= 1;
        assert_eq!(c.open(&f, b"user.a", &t), Err(XattrError::Authentication));
        assert_eq!(
            c.open(&f, b"user.a", &s[..10]),
            Err(XattrError::Authentication)
        );
        let mut v1 = s.clone();
        v1[0] = 1;
        assert_eq!(c.open(&f, b"user.a", &v1), Err(XattrError::Authentication));
    }
}
