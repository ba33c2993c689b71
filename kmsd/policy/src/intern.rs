//! One parsed [`Policy`] and one copy of the text per distinct policy
//! text. Most keys carry the default key policy, whose text differs only by
//! the creator's uid, so thousands of keys share a handful of texts and
//! parsed policies instead of holding one each.

use crate::{Error, Policy};
use std::collections::HashMap;
use std::sync::Arc;

/// Parsed policies by their exact text (not a digest: two texts share a
/// `Policy` only when they are byte-for-byte equal).
#[derive(Default)]
pub struct PolicyInterner {
    by_text: HashMap<Arc<str>, Arc<Policy>>,
}

impl PolicyInterner {
    pub fn new() -> Self {
        Self::default()
    }

    /// The shared copy of `text` and its parsed policy: the ones already
    /// held for the same text, or a fresh parse, kept for the next caller.
    pub fn intern(&mut self, text: &str) -> Result<(Arc<str>, Arc<Policy>), Error> {
        if let Some((t, p)) = self.by_text.get_key_value(text) {
            return Ok((t.clone(), p.clone()));
        }
        let p = Arc::new(Policy::parse(text)?);
        let t: Arc<str> = text.into();
        self.by_text.insert(t.clone(), p.clone());
        Ok((t, p))
    }

    /// Forgets `text` once nothing but the interner holds its policy. Call
    /// after dropping a policy [`intern`](Self::intern) gave out.
    pub fn release(&mut self, text: &str) {
        if self
            .by_text
            .get(text)
            .is_some_and(|p| Arc::strong_count(p) == 1)
        {
            self.by_text.remove(text);
        }
    }

    /// How many distinct texts are held.
    pub fn len(&self) -> usize {
        self.by_text.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_text.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::default_key_policy;

    #[test]
    fn identical_text_shares_one_policy() {
        let mut i = PolicyInterner::new();
        let text = default_key_policy(0, 1000);
        let (ta, a) = i.intern(&text).unwrap();
        let (tb, b) = i.intern(&text.clone()).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(Arc::ptr_eq(&ta, &tb), "the text is shared too");
        assert_eq!(&*ta, text);
        assert_eq!(i.len(), 1);
        let (_, other) = i.intern(&default_key_policy(0, 1001)).unwrap();
        assert!(!Arc::ptr_eq(&a, &other));
        assert_eq!(*other, Policy::parse(&default_key_policy(0, 1001)).unwrap());
        assert_eq!(i.len(), 2);
    }

    #[test]
    fn release_forgets_only_unused_texts() {
        let mut i = PolicyInterner::new();
        let text = default_key_policy(0, 0);
        let (_, a) = i.intern(&text).unwrap();
        let (_, b) = i.intern(&text).unwrap();
        drop(a);
        i.release(&text);
        assert_eq!(i.len(), 1, "b still uses it");
        drop(b);
        i.release(&text);
        assert!(i.is_empty());
        i.release("never interned");
    }

    #[test]
    fn malformed_text_is_an_error_and_not_kept() {
        let mut i = PolicyInterner::new();
        assert!(i.intern("{").is_err());
        assert!(i.is_empty());
    }
}
