//! The inode table: the kernel's node ids and the backing files they stand
//! for.
//!
//! Each known inode holds an `O_PATH` descriptor of its backing file, so it
//! stays valid across renames and after unlink. Node ids are the backing
//! files' own inode numbers where they can be (stable across remounts and
//! forgets, so `stat` shows the same number a hard link's other name
//! shows); a backing number that is taken (1 belongs to the root, another
//! device may reuse numbers) gets a synthetic id instead. Lookup counts
//! follow the FUSE protocol: every entry reply adds one, `forget` removes
//! what the kernel says, and at zero the inode and its descriptor go.
//!
//! File handles (NFS export, open_by_handle_at(2)) outlive that: the
//! kernel's handle is our node id and a generation, and it asks us for a
//! node it has forgotten by id alone (a lookup of `.`). So a forgotten
//! inode leaves its backing file's own handle behind, in a bounded table
//! ([`FORGOTTEN`] entries), to open the file again by; the generation,
//! a digest of that handle, tells the file apart from a later one that
//! got the same backing inode number.

use super::sys::{self, BackingHandle};
use crate::format::{DirId, FileCipher};
use fuser::{Errno, FileType, INodeNo};
use lru::LruCache;
use std::collections::HashMap;
use std::fs::File;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};

/// Backing identity of a file: `(st_dev, st_ino)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BackingKey {
    pub dev: u64,
    pub ino: u64,
}

impl BackingKey {
    pub fn of(st: &libc::stat) -> Self {
        BackingKey {
            dev: st.st_dev,
            ino: st.st_ino,
        }
    }
}

/// A regular file's shared I/O descriptor and whether it may write.
pub struct SharedIo {
    pub file: File,
    pub writable: bool,
}

/// One file the kernel knows about.
pub struct Inode {
    pub id: INodeNo,
    pub key: BackingKey,
    pub kind: FileType,
    /// The backing file system's handle of the file, where it gives one
    /// (and the file is on the backing root's file system).
    handle: Option<BackingHandle>,
    /// `O_PATH` from a lookup, or a real descriptor of a file we created:
    /// either serves `fstat`, `fchownat`, `linkat` and `/proc/self/fd`.
    fd: OwnedFd,
    /// Regular files: one read-write descriptor that opens, truncation,
    /// `fchmod`, `futimens` and `f*xattr` share, opened on first need (or
    /// kept from `create`), so most calls skip a `/proc/self/fd` reopen.
    io: OnceLock<SharedIo>,
    /// `security.capability` is known to be absent (the kernel asks before
    /// writes); every change of xattrs goes through us, so this stays true.
    pub no_caps: AtomicBool,
    /// Regular files: serializes writers and truncation against readers.
    /// Readers share it, so concurrent reads run in parallel.
    pub content: RwLock<()>,
    /// Regular files: the content cipher once the header was read (or
    /// written), and when kmsd last agreed to its key. `None` for an empty
    /// format 1 file, which has no key, and for a revoked key.
    pub cipher: Mutex<Option<Checked>>,
    /// When kmsd last refused this file's key (revocation): further
    /// requests fail without asking kmsd again for a second.
    pub refused: Mutex<Option<std::time::Instant>>,
    /// Regular files that are empty and open for writing: the key their
    /// first byte will use (cipher and header), set aside at open so that
    /// a write the kernel sends later never waits on, or fails for, kmsd.
    pub fresh: Mutex<Option<FreshKey>>,
    /// Directories of a format 2 volume: the id their entries' names are
    /// bound to, once read.
    pub dir_id: OnceLock<DirId>,
}

/// A cipher and when kmsd last agreed to its key.
#[derive(Clone)]
pub struct Checked {
    pub cipher: Arc<FileCipher>,
    pub at: std::time::Instant,
}

/// A new file key not yet written anywhere: its cipher and its header.
pub type FreshKey = (Arc<FileCipher>, Vec<u8>);

impl Inode {
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn is_symlink(&self) -> bool {
        self.kind == FileType::Symlink
    }

    /// The shared I/O descriptor if it is open already.
    pub fn io_if_open(&self) -> Option<&SharedIo> {
        self.io.get()
    }

    /// The shared I/O descriptor, opened read-write (read-only where the
    /// backing file refuses writing) on first use.
    pub fn io(&self) -> Result<&SharedIo, Errno> {
        if let Some(io) = self.io.get() {
            return Ok(io);
        }
        let io = match sys::reopen(self.fd(), libc::O_RDWR) {
            Ok(file) => SharedIo {
                file,
                writable: true,
            },
            Err(e) if e == Errno::EACCES || e == Errno::EROFS || e == Errno::ETXTBSY => SharedIo {
                file: sys::reopen(self.fd(), libc::O_RDONLY)?,
                writable: false,
            },
            Err(e) => return Err(e),
        };
        Ok(self.io.get_or_init(|| io))
    }

    /// Keeps `file` (read-write, opened by `create`) as the shared I/O
    /// descriptor unless one exists.
    pub fn adopt_io(&self, file: File) {
        let _ = self.io.set(SharedIo {
            file,
            writable: true,
        });
    }

    /// The FUSE generation of this node (0 without a backing handle).
    pub fn generation(&self) -> u64 {
        self.handle
            .as_ref()
            .map_or(0, |h| u64::from(h.generation()))
    }

    pub fn is_dir(&self) -> bool {
        self.kind == FileType::Directory
    }

    /// The cached cipher, if any.
    pub fn cached_cipher(&self) -> Option<Arc<FileCipher>> {
        lock(&self.cipher).as_ref().map(|c| c.cipher.clone())
    }

    /// Sets the cipher (a key kmsd just gave: checked now).
    pub fn set_cipher(&self, cipher: Option<Arc<FileCipher>>) {
        *lock(&self.cipher) = cipher.map(|cipher| Checked {
            cipher,
            at: std::time::Instant::now(),
        });
    }
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The file type in a `st_mode`.
pub fn kind_of_mode(mode: libc::mode_t) -> FileType {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => FileType::Directory,
        libc::S_IFLNK => FileType::Symlink,
        libc::S_IFIFO => FileType::NamedPipe,
        libc::S_IFSOCK => FileType::Socket,
        libc::S_IFCHR => FileType::CharDevice,
        libc::S_IFBLK => FileType::BlockDevice,
        _ => FileType::RegularFile,
    }
}

struct Entry {
    inode: Arc<Inode>,
    nlookup: u64,
}

struct Tables {
    by_id: HashMap<u64, Entry>,
    by_key: HashMap<BackingKey, u64>,
    next_synthetic: u64,
    /// Backing handles of forgotten nodes, by node id.
    forgotten: LruCache<u64, BackingHandle>,
}

/// One more kernel reference to the node of backing file `key`, if known.
fn count_known(t: &mut Tables, key: BackingKey) -> Option<Arc<Inode>> {
    let id = t.by_key.get(&key).copied()?;
    let e = t.by_id.get_mut(&id)?;
    e.nlookup += 1;
    Some(e.inode.clone())
}

/// How many forgotten nodes keep their handle (about 40 bytes each): a
/// file handle older than that many forgets goes stale.
pub const FORGOTTEN: NonZeroUsize = NonZeroUsize::new(1 << 16).expect("not zero");

/// First synthetic node id; far above the inode numbers filesystems hand out.
const SYNTHETIC_BASE: u64 = 1 << 62;

pub struct InodeTable {
    tables: Mutex<Tables>,
    root_dev: u64,
}

impl InodeTable {
    /// A table holding the root (node id 1) for the backing root `fd`.
    pub fn new(root_fd: OwnedFd, root_st: &libc::stat) -> Self {
        let key = BackingKey::of(root_st);
        let root = Arc::new(Inode {
            id: INodeNo::ROOT,
            key,
            kind: FileType::Directory,
            handle: None,
            fd: root_fd,
            io: OnceLock::new(),
            no_caps: AtomicBool::new(false),
            content: RwLock::new(()),
            cipher: Mutex::new(None),
            refused: Mutex::new(None),
            fresh: Mutex::new(None),
            dir_id: OnceLock::new(),
        });
        let mut t = Tables {
            by_id: HashMap::new(),
            by_key: HashMap::new(),
            next_synthetic: SYNTHETIC_BASE,
            forgotten: LruCache::new(FORGOTTEN),
        };
        t.by_id.insert(
            INodeNo::ROOT.0,
            Entry {
                inode: root,
                // The root is never forgotten.
                nlookup: u64::MAX / 2,
            },
        );
        t.by_key.insert(key, INodeNo::ROOT.0);
        InodeTable {
            tables: Mutex::new(t),
            root_dev: root_st.st_dev,
        }
    }

    pub fn get(&self, id: INodeNo) -> Result<Arc<Inode>, Errno> {
        lock(&self.tables)
            .by_id
            .get(&id.0)
            .map(|e| e.inode.clone())
            .ok_or(Errno::ESTALE)
    }

    pub fn root(&self) -> Arc<Inode> {
        // The root entry is inserted at construction and never removed.
        lock(&self.tables)
            .by_id
            .get(&INodeNo::ROOT.0)
            .map(|e| e.inode.clone())
            .unwrap_or_else(|| unreachable!("the root inode is never forgotten"))
    }

    /// Records one more kernel reference to the backing file `fd` with
    /// status `st`, reusing the existing inode when the file is known (the
    /// new descriptor is then dropped).
    pub fn remember(&self, fd: OwnedFd, st: &libc::stat) -> Arc<Inode> {
        let key = BackingKey::of(st);
        if let Some(known) = count_known(&mut lock(&self.tables), key) {
            return known;
        }
        // New: its backing handle, a system call, outside the lock; then
        // known after all if another thread got there meanwhile.
        let handle = (key.dev == self.root_dev)
            .then(|| sys::backing_handle(fd.as_fd()))
            .flatten();
        let mut t = lock(&self.tables);
        if let Some(known) = count_known(&mut t, key) {
            return known;
        }
        let id = self.choose_id(&mut t, key);
        t.forgotten.pop(&id);
        let inode = Arc::new(Inode {
            id: INodeNo(id),
            key,
            kind: kind_of_mode(st.st_mode),
            handle,
            fd,
            io: OnceLock::new(),
            no_caps: AtomicBool::new(false),
            content: RwLock::new(()),
            cipher: Mutex::new(None),
            refused: Mutex::new(None),
            fresh: Mutex::new(None),
            dir_id: OnceLock::new(),
        });
        t.by_id.insert(
            id,
            Entry {
                inode: inode.clone(),
                nlookup: 1,
            },
        );
        t.by_key.insert(key, id);
        inode
    }

    fn choose_id(&self, t: &mut Tables, key: BackingKey) -> u64 {
        let natural = key.ino;
        if key.dev == self.root_dev
            && natural != INodeNo::ROOT.0
            && natural != 0
            && natural < SYNTHETIC_BASE
            && !t.by_id.contains_key(&natural)
        {
            return natural;
        }
        loop {
            let id = t.next_synthetic;
            t.next_synthetic += 1;
            if !t.by_id.contains_key(&id) {
                return id;
            }
        }
    }

    /// Drops `n` kernel references; the inode goes at zero.
    pub fn forget(&self, id: INodeNo, n: u64) {
        let mut t = lock(&self.tables);
        let Some(e) = t.by_id.get_mut(&id.0) else {
            return;
        };
        e.nlookup = e.nlookup.saturating_sub(n);
        if e.nlookup == 0 && id != INodeNo::ROOT {
            let key = e.inode.key;
            let handle = e.inode.handle.clone();
            t.by_id.remove(&id.0);
            if t.by_key.get(&key) == Some(&id.0) {
                t.by_key.remove(&key);
            }
            if let Some(h) = handle {
                t.forgotten.put(id.0, h);
            }
        }
    }

    /// The backing handle node `id` left when the kernel forgot it.
    pub fn forgotten(&self, id: INodeNo) -> Option<BackingHandle> {
        lock(&self.tables).forgotten.get(&id.0).cloned()
    }

    /// The regular files holding a cipher checked before `before`.
    pub fn checked_before(&self, before: std::time::Instant) -> Vec<Arc<Inode>> {
        lock(&self.tables)
            .by_id
            .values()
            .filter(|e| {
                lock(&e.inode.cipher)
                    .as_ref()
                    .is_some_and(|c| c.at < before)
            })
            .map(|e| e.inode.clone())
            .collect()
    }

    /// How many inodes are known (the root included).
    pub fn len(&self) -> usize {
        lock(&self.tables).by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The kernel's reference count of `id` (tests and diagnostics).
    pub fn lookups(&self, id: INodeNo) -> u64 {
        lock(&self.tables).by_id.get(&id.0).map_or(0, |e| e.nlookup)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::sys;
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;

    fn setup() -> (tempfile::TempDir, InodeTable) {
        let tmp = tempfile::tempdir().unwrap();
        let p = CString::new(tmp.path().as_os_str().as_bytes()).unwrap();
        let fd = sys::open_root(&p).unwrap();
        let st = sys::fstat(fd.as_fd()).unwrap();
        (tmp, InodeTable::new(fd, &st))
    }

    fn remember(t: &InodeTable, name: &std::ffi::CStr) -> Arc<Inode> {
        let root = t.root();
        let fd = sys::open_path_at(root.fd(), name).unwrap();
        let st = sys::fstat(fd.as_fd()).unwrap();
        t.remember(fd, &st)
    }

    #[test]
    fn ids_are_backing_inode_numbers_and_hard_links_share_one() {
        let (tmp, t) = setup();
        std::fs::write(tmp.path().join("a"), b"").unwrap();
        std::fs::hard_link(tmp.path().join("a"), tmp.path().join("b")).unwrap();
        let a = remember(&t, c"a");
        let b = remember(&t, c"b");
        assert!(Arc::ptr_eq(&a, &b));
        let st = std::fs::metadata(tmp.path().join("a")).unwrap();
        assert_eq!(a.id.0, std::os::unix::fs::MetadataExt::ino(&st));
        assert_eq!(t.lookups(a.id), 2);
        assert_eq!(a.kind, FileType::RegularFile);
    }

    #[test]
    fn forget_drops_at_zero_and_never_drops_the_root() {
        let (tmp, t) = setup();
        std::fs::create_dir(tmp.path().join("d")).unwrap();
        let d = remember(&t, c"d");
        remember(&t, c"d");
        assert_eq!(d.kind, FileType::Directory);
        t.forget(d.id, 1);
        assert!(t.get(d.id).is_ok());
        t.forget(d.id, 1);
        assert_eq!(t.get(d.id).err(), Some(Errno::ESTALE));
        assert_eq!(t.len(), 1);
        t.forget(INodeNo::ROOT, u64::MAX);
        assert!(t.get(INodeNo::ROOT).is_ok());
        // A forgotten file comes back under the same id.
        let again = remember(&t, c"d");
        assert_eq!(again.id, d.id);
    }

    #[test]
    fn a_forgotten_node_leaves_a_handle_that_opens_its_file_again() {
        let (tmp, t) = setup();
        std::fs::write(tmp.path().join("f"), b"x").unwrap();
        let f = remember(&t, c"f");
        let generation = f.generation();
        assert!(t.forgotten(f.id).is_none(), "known, not forgotten");
        t.forget(f.id, 1);
        let h = t.forgotten(f.id).expect("a handle left behind");
        assert_eq!(u64::from(h.generation()), generation);
        // Renamed meanwhile: the handle names the file, not its path.
        std::fs::rename(tmp.path().join("f"), tmp.path().join("g")).unwrap();
        let mount = std::fs::File::open(tmp.path()).unwrap();
        let fd = sys::open_by_handle(mount.as_fd(), &h).expect("open by handle (root)");
        let st = sys::fstat(fd.as_fd()).unwrap();
        assert_eq!(st.st_ino, f.id.0);
        // Remembered again: back in the table, out of the forgotten ones,
        // with the same generation.
        let again = t.remember(fd, &st);
        assert_eq!((again.id, again.generation()), (f.id, generation));
        assert!(t.forgotten(f.id).is_none());
        // Deleted, and no descriptor left open: the handle is stale.
        let id = f.id;
        t.forget(id, 1);
        drop((f, again));
        std::fs::remove_file(tmp.path().join("g")).unwrap();
        let h = t.forgotten(id).unwrap();
        assert_eq!(
            sys::open_by_handle(mount.as_fd(), &h).err(),
            Some(Errno::ESTALE)
        );
    }

    #[test]
    fn taken_ids_get_synthetic_numbers() {
        let (tmp, t) = setup();
        std::fs::write(tmp.path().join("a"), b"").unwrap();
        let a = remember(&t, c"a");
        // Same number on another device.
        let root = t.root();
        let fd = sys::open_path_at(root.fd(), c"a").unwrap();
        let mut st = sys::fstat(fd.as_fd()).unwrap();
        st.st_dev ^= 0xffff;
        let other = t.remember(fd, &st);
        assert_ne!(other.id, a.id);
        assert!(other.id.0 >= SYNTHETIC_BASE);
        assert_eq!(t.len(), 3);
    }
}
