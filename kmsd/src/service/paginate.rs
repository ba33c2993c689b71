//! Marker pagination for the List operations. Items are sorted by a string
//! key; the marker is the last key returned, so a page boundary stays valid
//! while items are added or removed.

use kmsd_client::KmsError;

pub struct Page<T> {
    pub items: Vec<T>,
    pub next_marker: Option<String>,
}

/// `items` must be sorted by `key`.
pub fn paginate<T>(
    items: impl IntoIterator<Item = T>,
    key: impl Fn(&T) -> String,
    limit: usize,
    marker: Option<&str>,
) -> Result<Page<T>, KmsError> {
    if let Some(m) = marker
        && (m.is_empty() || m.len() > 2048)
    {
        return Err(KmsError::invalid_marker("the marker is not valid"));
    }
    let mut out = Vec::with_capacity(limit.min(128));
    let mut more = false;
    for item in items {
        if marker.is_some_and(|m| key(&item).as_str() <= m) {
            continue;
        }
        if out.len() == limit {
            more = true;
            break;
        }
        out.push(item);
    }
    let next_marker = if more { out.last().map(&key) } else { None };
    Ok(Page {
        items: out,
        next_marker,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_all_pages_exactly_once() {
        let items: Vec<String> = (0..25).map(|i| format!("k{i:03}")).collect();
        let mut seen = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page =
                paginate(items.iter().cloned(), |s| s.clone(), 10, marker.as_deref()).unwrap();
            assert!(page.items.len() <= 10);
            seen.extend(page.items);
            match page.next_marker {
                Some(m) => marker = Some(m),
                None => break,
            }
        }
        assert_eq!(seen, items);
    }

    #[test]
    fn exact_multiple_has_no_dangling_marker() {
        let page = paginate(
            vec!["a".to_string(), "b".to_string()],
            |s| s.clone(),
            2,
            None,
        )
        .unwrap();
        assert_eq!(page.items.len(), 2);
        assert!(page.next_marker.is_none());
        assert!(paginate(Vec::<String>::new(), |s| s.clone(), 1, Some("")).is_err());
    }
}
