//! Pure cryptography: AES-256-GCM sealing, the ciphertext blob codec, the
//! canonical encryption context and the root key's derived keys.

pub mod aead;
pub mod blob;
pub mod context;
pub mod material;
pub mod rootkey;
pub mod secret;
