//! TagResource, UntagResource, ListResourceTags.

use super::paginate::paginate;
use super::{KeyService, Result, validate};
use kmsd_client::*;

impl KeyService {
    pub fn tag_resource(&self, req: TagResourceRequest) -> Result<Empty> {
        validate::tags(&req.tags)?;
        self.update_key(&req.key_id, |e, rec, _| {
            self.require_not_pending_deletion(e)?;
            for t in req.tags {
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

    pub fn untag_resource(&self, req: UntagResourceRequest) -> Result<Empty> {
        self.update_key(&req.key_id, |e, rec, _| {
            self.require_not_pending_deletion(e)?;
            rec.tags.retain(|t| !req.tag_keys.contains(&t.tag_key));
            Ok(Empty {})
        })
    }

    pub fn list_resource_tags(
        &self,
        req: ListResourceTagsRequest,
    ) -> Result<ListResourceTagsResponse> {
        let limit = validate::list_limit(req.limit)?;
        let st = self.read();
        let id = self.resolve(&st, &req.key_id)?;
        let mut tags = self.entry(&st, id)?.record.tags.clone();
        tags.sort_by(|a, b| a.tag_key.cmp(&b.tag_key));
        let page = paginate(tags, |t| t.tag_key.clone(), limit, req.marker.as_deref())?;
        Ok(ListResourceTagsResponse {
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
            .tag_resource(TagResourceRequest {
                key_id: id.clone(),
                tags: vec![tag("b", "1"), tag("a", "2")],
            })
            .unwrap();
        t.svc
            .tag_resource(TagResourceRequest {
                key_id: id.clone(),
                tags: vec![tag("b", "3")],
            })
            .unwrap();
        let l = t
            .svc
            .list_resource_tags(ListResourceTagsRequest {
                key_id: id.clone(),
                limit: None,
                marker: None,
            })
            .unwrap();
        assert_eq!(l.tags, vec![tag("a", "2"), tag("b", "3")]);
        t.svc
            .untag_resource(UntagResourceRequest {
                key_id: id.clone(),
                tag_keys: vec!["a".into()],
            })
            .unwrap();
        let l = t
            .svc
            .list_resource_tags(ListResourceTagsRequest {
                key_id: id.clone(),
                limit: None,
                marker: None,
            })
            .unwrap();
        assert_eq!(l.tags, vec![tag("b", "3")]);
        let too_many: Vec<Tag> = (0..50).map(|i| tag(&format!("k{i}"), "")).collect();
        let e = t
            .svc
            .tag_resource(TagResourceRequest {
                key_id: id.clone(),
                tags: too_many,
            })
            .err()
            .unwrap();
        assert_eq!(e.kind, ErrorKind::LimitExceededException);
        let e = t
            .svc
            .tag_resource(TagResourceRequest {
                key_id: id,
                tags: vec![tag("aws:x", "")],
            })
            .err()
            .unwrap();
        assert_eq!(e.kind, ErrorKind::TagException);
    }
}
