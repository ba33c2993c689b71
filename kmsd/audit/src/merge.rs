//! Reading several chains as one: [`merge_by_time`] interleaves the
//! entries of several [`crate::query`]s or [`crate::tail`]s by `eventTime`.

use crate::error::AuditError;
use crate::query::Entry;
use crate::time::EventTime;

type Item = Result<Entry, AuditError>;

/// Merges per-chain streams into one ordered by `eventTime`, as a merge
/// sort's merge step: each input's entries keep their order (a chain stays
/// in log order even where its times are not monotonic), the input whose
/// next entry is earliest goes first, and ties go to the input given
/// first. An entry without a readable time counts as earliest; an error is
/// passed on as soon as it is the next item of its input. Reads one item
/// ahead per input.
pub fn merge_by_time<I>(inputs: impl IntoIterator<Item = I>) -> MergeByTime<I>
where
    I: Iterator<Item = Item>,
{
    let inputs: Vec<I> = inputs.into_iter().collect();
    MergeByTime {
        heads: inputs.iter().map(|_| None).collect(),
        done: vec![false; inputs.len()],
        inputs,
    }
}

/// Iterator returned by [`merge_by_time`].
pub struct MergeByTime<I> {
    inputs: Vec<I>,
    /// The next item of each input, with its sort key (`None` for errors).
    heads: Vec<Option<(Option<Option<EventTime>>, Item)>>,
    done: Vec<bool>,
}

impl<I: Iterator<Item = Item>> Iterator for MergeByTime<I> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        for (i, input) in self.inputs.iter_mut().enumerate() {
            if self.heads[i].is_some() || self.done[i] {
                continue;
            }
            match input.next() {
                Some(item) => {
                    let key = item.as_ref().ok().map(|e| e.record.time());
                    self.heads[i] = Some((key, item));
                }
                None => self.done[i] = true,
            }
        }
        // Errors first (key `None`), then the earliest time; `min_by_key`
        // keeps the first of equal keys.
        let (i, _) = self
            .heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|(key, _)| (i, *key)))
            .min_by_key(|(_, key)| *key)?;
        self.heads[i].take().map(|(_, item)| item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Record;

    fn e(chain: &str, n: u64, time: &str) -> Item {
        let line = format!(
            r#"{{"seq":{n},"prevHash":"","instance":"{chain}","eventTime":"{time}","eventName":"Encrypt"}}"#
        );
        Ok(Entry {
            file: "audit-000001.jsonl".into(),
            line: n,
            record: Record::parse(line.as_bytes()).unwrap(),
            raw: line,
        })
    }

    fn names(items: Vec<Item>) -> Vec<String> {
        items
            .into_iter()
            .map(|r| match r {
                Ok(e) => format!("{}{}", e.record.instance.unwrap(), e.record.seq),
                Err(e) => format!("err({e})"),
            })
            .collect()
    }

    #[test]
    fn interleaves_by_time_keeping_each_chain_in_order_and_ties_stable() {
        let t = |s: u32| format!("2026-01-01T00:00:{s:02}.000Z");
        let a = vec![e("a", 1, &t(1)), e("a", 2, &t(3)), e("a", 3, &t(3))];
        // b's seq 2 is earlier than its seq 1 (serialized before, written
        // after): it stays after it.
        let b = vec![
            e("b", 1, &t(2)),
            e("b", 2, &t(1)),
            e("b", 3, &t(3)),
            e("b", 4, &t(9)),
        ];
        let c: Vec<Item> = Vec::new();
        let got = merge_by_time([a.into_iter(), b.into_iter(), c.into_iter()]).collect();
        assert_eq!(
            names(got),
            ["a1", "b1", "b2", "a2", "a3", "b3", "b4"].map(String::from)
        );
        let one = vec![e("a", 1, &t(5)), e("a", 2, &t(4))];
        let got = merge_by_time([one.into_iter()]).collect();
        assert_eq!(
            names(got),
            ["a1", "a2"].map(String::from),
            "one input: as is"
        );
        let none: Vec<std::vec::IntoIter<Item>> = Vec::new();
        assert_eq!(merge_by_time(none).count(), 0);
    }

    #[test]
    fn errors_come_out_when_their_input_reaches_them() {
        let t = |s: u32| format!("2026-01-01T00:00:{s:02}.000Z");
        let a = vec![
            e("a", 1, &t(5)),
            Err(AuditError::Damaged("bad line".into())),
            e("a", 3, &t(6)),
        ];
        let b = vec![e("b", 1, &t(1)), e("b", 2, &t(7))];
        let got = merge_by_time([a.into_iter(), b.into_iter()]).collect();
        assert_eq!(
            names(got),
            ["b1", "a1", "err(audit log damaged: bad line)", "a3", "b2"].map(String::from)
        );
    }
}
