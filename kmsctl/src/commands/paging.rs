//! List operations, paginated as the AWS CLI does: with neither `--limit`
//! nor `--marker` every page is fetched and the items merged (and
//! `NextMarker`/`Truncated` left out); with either, one page is fetched and
//! shown as kmsd returned it.

use super::{Ctx, reply};
use crate::args::PagingArgs;
use crate::failure::Failure;
use crate::output::Reply;
use kmsd_client::*;
use serde::Serialize;
use std::collections::HashSet;

/// A list response.
pub trait Page: Serialize {
    fn next_marker(&self) -> Option<&str>;
    fn truncated(&self) -> bool;
    /// Adds the next page's items; takes its marker and truncation flag.
    fn append(&mut self, next: Self);
}

/// A list request.
pub trait Paged: Operation + Clone {
    fn set_marker(&mut self, marker: String);
}

macro_rules! pages {
    ($($resp:ty => $items:ident),* $(,)?) => {$(
        impl Page for $resp {
            fn next_marker(&self) -> Option<&str> {
                self.next_marker.as_deref()
            }
            fn truncated(&self) -> bool {
                self.truncated
            }
            fn append(&mut self, next: Self) {
                self.$items.extend(next.$items);
                self.next_marker = next.next_marker;
                self.truncated = next.truncated;
            }
        }
    )*};
}

pages!(
    ListKeysResponse => keys,
    ListKeyRotationsResponse => rotations,
    ListAliasesResponse => aliases,
    ListResourceTagsResponse => tags,
    ListGrantsResponse => grants,
    ListAccessKeysResponse => access_keys,
);

macro_rules! paged {
    ($($req:ty),* $(,)?) => {$(
        impl Paged for $req {
            fn set_marker(&mut self, marker: String) {
                self.marker = Some(marker);
            }
        }
    )*};
}

paged!(
    ListKeysRequest,
    ListKeyRotationsRequest,
    ListAliasesRequest,
    ListResourceTagsRequest,
    ListGrantsRequest,
    ListRetirableGrantsRequest,
    ListAccessKeysRequest,
);

/// Follows `NextMarker` until the last page. A marker seen twice is an
/// error rather than an endless loop.
pub fn fetch_all<R, P>(
    request: R,
    mut fetch: impl FnMut(R) -> Result<P, Failure>,
) -> Result<P, Failure>
where
    R: Paged,
    P: Page,
{
    let mut all = fetch(request.clone())?;
    let mut seen = HashSet::new();
    while all.truncated() {
        let Some(marker) = all.next_marker().map(str::to_string) else {
            break;
        };
        if !seen.insert(marker.clone()) {
            return Err(Failure::Other(format!(
                "kmsd returned the NextMarker {marker:?} twice; stopping pagination"
            )));
        }
        let mut next = request.clone();
        next.set_marker(marker);
        all.append(fetch(next)?);
    }
    Ok(all)
}

/// The document of a merged listing: no marker, no truncation flag.
pub fn merged_document<P: Page>(all: &P) -> Result<Reply, Failure> {
    let Reply::Document(mut doc) = reply(all)? else {
        return Err(Failure::Other("a listing rendered as a line".into()));
    };
    doc.remove("NextMarker");
    doc.remove("Truncated");
    Ok(Reply::Document(doc))
}

pub fn list<R>(ctx: &Ctx, request: R, paging: &PagingArgs) -> Result<Reply, Failure>
where
    R: Paged,
    R::Output: Page,
{
    if paging.explicit() {
        return reply(&ctx.call(request)?);
    }
    let all = fetch_all(request, |r| ctx.call(r))?;
    merged_document(&all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u32) -> KeyListEntry {
        KeyListEntry {
            key_id: format!("k{n}"),
            key_arn: format!("arn:k{n}"),
        }
    }

    /// A fake kmsd with `total` keys served `per_page` at a time.
    fn serve(
        total: u32,
        per_page: u32,
    ) -> impl FnMut(ListKeysRequest) -> Result<ListKeysResponse, Failure> {
        move |r: ListKeysRequest| {
            let start: u32 = r.marker.as_deref().map_or(0, |m| m.parse().unwrap());
            let end = (start + per_page).min(total);
            Ok(ListKeysResponse {
                keys: (start..end).map(entry).collect(),
                next_marker: (end < total).then(|| end.to_string()),
                truncated: end < total,
            })
        }
    }

    #[test]
    fn follows_markers_to_the_end() {
        let mut calls = 0;
        let mut fake = serve(7, 3);
        let all = fetch_all(ListKeysRequest::default(), |r| {
            calls += 1;
            fake(r)
        })
        .unwrap();
        assert_eq!(calls, 3);
        assert_eq!(all.keys, (0..7).map(entry).collect::<Vec<_>>());
        assert!(!all.truncated);
        assert_eq!(all.next_marker, None);
    }

    #[test]
    fn a_single_page_is_one_call() {
        let mut calls = 0;
        let mut fake = serve(2, 100);
        let all = fetch_all(ListKeysRequest::default(), |r| {
            calls += 1;
            fake(r)
        })
        .unwrap();
        assert_eq!((calls, all.keys.len()), (1, 2));
    }

    #[test]
    fn a_repeated_marker_stops_with_an_error() {
        let stuck = |_r: ListKeysRequest| {
            Ok(ListKeysResponse {
                keys: vec![entry(0)],
                next_marker: Some("same".into()),
                truncated: true,
            })
        };
        let e = fetch_all(ListKeysRequest::default(), stuck).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
        assert_eq!(e.exit_code(), 255);
    }

    #[test]
    fn merged_document_drops_marker_and_flag() {
        let all = ListKeysResponse {
            keys: vec![entry(1)],
            next_marker: None,
            truncated: false,
        };
        let out = merged_document(&all)
            .unwrap()
            .render(crate::output::OutputFormat::Json);
        assert_eq!(
            out.as_str(),
            "{\n    \"Keys\": [\n        {\n            \"KeyId\": \"k1\",\n            \"KeyArn\": \"arn:k1\"\n        }\n    ]\n}\n"
        );
    }
}
