//! tag-resource, untag-resource, list-resource-tags.

use super::paging;
use super::{Ctx, reply};
use crate::args::{KeyPagingArgs, TagResourceArgs, UntagResourceArgs};
use crate::failure::Failure;
use crate::input;
use crate::output::Reply;
use kmsd_client::*;

fn tag_request(a: TagResourceArgs) -> Result<TagResourceRequest, Failure> {
    Ok(TagResourceRequest {
        tags: input::tags("--tags", &a.tags)?,
        key_id: a.key_id,
    })
}

fn untag_request(a: UntagResourceArgs) -> Result<UntagResourceRequest, Failure> {
    Ok(UntagResourceRequest {
        tag_keys: input::list("--tag-keys", &a.tag_keys)?,
        key_id: a.key_id,
    })
}

pub fn tag(ctx: &Ctx, a: TagResourceArgs) -> Result<Reply, Failure> {
    reply(&ctx.call(tag_request(a)?)?)
}

pub fn untag(ctx: &Ctx, a: UntagResourceArgs) -> Result<Reply, Failure> {
    reply(&ctx.call(untag_request(a)?)?)
}

pub fn list(ctx: &Ctx, a: KeyPagingArgs) -> Result<Reply, Failure> {
    let request = ListResourceTagsRequest {
        key_id: a.key_id,
        limit: a.paging.limit,
        marker: a.paging.marker.clone(),
    };
    paging::list(ctx, request, &a.paging)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn requests_from_flags() {
        let r = tag_request(TagResourceArgs {
            key_id: "k".into(),
            tags: strings(&["TagKey=a,TagValue=1", "TagKey=b,TagValue=2"]),
        })
        .unwrap();
        assert_eq!(r.tags.len(), 2);
        assert_eq!(r.tags[1].tag_value, "2");
        let r = untag_request(UntagResourceArgs {
            key_id: "k".into(),
            tag_keys: strings(&["a", "b,c"]),
        })
        .unwrap();
        assert_eq!(r.tag_keys, ["a", "b", "c"]);
    }

    #[test]
    fn bad_tags_name_the_flag() {
        let e = tag_request(TagResourceArgs {
            key_id: "k".into(),
            tags: strings(&["TagKey=a"]),
        })
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Error parsing parameter '--tags'"),
            "{e}"
        );
        let e = untag_request(UntagResourceArgs {
            key_id: "k".into(),
            tag_keys: strings(&[","]),
        })
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Error parsing parameter '--tag-keys'"),
            "{e}"
        );
    }
}
