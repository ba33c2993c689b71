//! TagResource, UntagResource, ListResourceTags.

use super::operation::{Exec, KeyRef, Operation, Planned, Refs, read};
use super::paginate::paginate;
use super::{Result, validate};
use kmsd_client::*;
use kmsd_policy::{Requirement, on_key};

impl Operation for TagResourceRequest {
    const MUTATES: bool = true;
    const CHECKS: &'static [Requirement] = &[on_key("kms:TagResource")];

    fn validate(&self) -> Result<()> {
        validate::tags(&self.tags)
    }

    fn refs(&self) -> Refs<'_> {
        Refs::key(KeyRef::Named(&self.key_id))
    }

    fn execute(self, cx: &Exec<'_>) -> Planned<Empty> {
        cx.update_key(|e, rec| {
            cx.svc.require_not_pending_deletion(e)?;
            for t in self.tags {
                match rec.tags.iter_mut().find(|x| x.tag_key == t.tag_key) {
                    Some(x) => x.tag_value = t.tag_value,
                    None => rec.tags.push(t),
                }
            }
            if rec.tags.len() > validate::MAX_TAGS_PER_KEY {
                return Err(KmsError::limit_exceeded(format!(
                    "a key can have at most {} tags",
                    validate::MAX_TAGS_PER_KEY
                )));
            }
            Ok(Empty {})
        })
    }
}

impl Operation for UntagResourceRequest {
    const MUTATES: bool = true;
    const CHECKS: &'static [Requirement] = &[on_key("kms:UntagResource")];

    fn refs(&self) -> Refs<'_> {
        Refs::key(KeyRef::Named(&self.key_id))
    }

    fn execute(self, cx: &Exec<'_>) -> Planned<Empty> {
        cx.update_key(|e, rec| {
            cx.svc.require_not_pending_deletion(e)?;
            rec.tags.retain(|t| !self.tag_keys.contains(&t.tag_key));
            Ok(Empty {})
        })
    }
}

impl Operation for ListResourceTagsRequest {
    const MUTATES: bool = false;
    const CHECKS: &'static [Requirement] = &[on_key("kms:ListResourceTags")];

    fn validate(&self) -> Result<()> {
        validate::list_limit(self.limit).map(drop)
    }

    fn refs(&self) -> Refs<'_> {
        Refs::key(KeyRef::Named(&self.key_id))
    }

    fn execute(self, cx: &Exec<'_>) -> Planned<ListResourceTagsResponse> {
        let limit = validate::list_limit(self.limit)?;
        let mut tags = cx.entry()?.record.tags.clone();
        tags.sort_by(|a, b| a.tag_key.cmp(&b.tag_key));
        let page = paginate(tags, |t| t.tag_key.clone(), limit, self.marker.as_deref())?;
        read(ListResourceTagsResponse {
            tags: page.items,
            truncated: page.next_marker.is_some(),
            next_marker: page.next_marker,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::service::testkit::*;
    use kmsd_client::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            tag_key: k.into(),
            tag_value: v.into(),
        }
    }

    #[test]
    fn tag_untag_list() {
        let t = TestService::new();
        let id = t.create("t").key_id;
        t.svc
            .run(TagResourceRequest {
                key_id: id.clone(),
                tags: vec![tag("b", "1"), tag("a", "2")],
            })
            .unwrap();
        t.svc
            .run(TagResourceRequest {
                key_id: id.clone(),
                tags: vec![tag("b", "3")],
            })
            .unwrap();
        let l = t
            .svc
            .run(ListResourceTagsRequest {
                key_id: id.clone(),
                limit: None,
                marker: None,
            })
            .unwrap();
        assert_eq!(l.tags, vec![tag("a", "2"), tag("b", "3")]);
        t.svc
            .run(UntagResourceRequest {
                key_id: id.clone(),
                tag_keys: vec!["a".into()],
            })
            .unwrap();
        let l = t
            .svc
            .run(ListResourceTagsRequest {
                key_id: id.clone(),
                limit: None,
                marker: None,
            })
            .unwrap();
        assert_eq!(l.tags, vec![tag("b", "3")]);
        let too_many: Vec<Tag> = (0..50).map(|i| tag(&format!("k{i}"), "")).collect();
        let e = t
            .svc
            .run(TagResourceRequest {
                key_id: id.clone(),
                tags: too_many,
            })
            .err()
            .unwrap();
        assert_eq!(e.kind, ErrorKind::LimitExceededException);
        let e = t
            .svc
            .run(TagResourceRequest {
                key_id: id,
                tags: vec![tag("aws:x", "")],
            })
            .err()
            .unwrap();
        assert_eq!(e.kind, ErrorKind::TagException);
    }
}
