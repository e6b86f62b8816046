use std::collections::BTreeMap;
use std::io::Write as _;

use super::*;
use crate::history::parse_jsonl;
use crate::pair::pair;

/// What `linearizable::check` partitions from the same text: the calls
/// paired from whole-history ops, grouped by key in check order.
fn reference(text: &str) -> Vec<(Option<String>, Vec<String>)> {
    let ops = parse_jsonl(text, Path::new("h")).unwrap();
    let calls = pair(&ops).unwrap();
    if calls.iter().all(|c| c.key.is_none()) {
        return vec![(None, calls.iter().map(|c| format!("{c:?}")).collect())];
    }
    let mut by_key: BTreeMap<(u8, i128, Option<String>), Vec<String>> = BTreeMap::new();
    for call in &calls {
        let order = match call.key.map(str::parse::<i128>) {
            None => (0, 0),
            Some(Ok(n)) => (1, n),
            Some(Err(_)) => (2, 0),
        };
        let key = (order.0, order.1, call.key.map(str::to_string));
        by_key.entry(key).or_default().push(format!("{call:?}"));
    }
    by_key.into_iter().map(|((_, _, k), v)| (k, v)).collect()
}

fn streamed(history: &KeyedHistory) -> Vec<(Option<String>, Vec<String>)> {
    history
        .partitions()
        .into_iter()
        .map(|(k, calls)| {
            let calls = calls.iter().map(|c| format!("{c:?}")).collect();
            (k.map(str::to_string), calls)
        })
        .collect()
}

/// Keys numeric and not, a key only on the completion, nemesis events,
/// blank lines, fail / info / never-completed calls, completions out of
/// invocation order, and values of every shape.
const MIXED: &str = concat!(
    "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"10\",\"value\":1,\"time\":5}\n",
    "{\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"key\":\"b\",\"value\":null}\n",
    "\n",
    "{\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"partition\",\"value\":{\"n1\":[\"n2\"]}}\n",
    "{\"process\":2,\"type\":\"invoke\",\"f\":\"cas\",\"key\":\"9\",\"value\":[1,2]}\n",
    "{\"process\":1,\"type\":\"ok\",\"f\":\"read\",\"key\":\"b\",\"value\":\"x\\\"y\"}\n",
    "{\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"key\":\"10\",\"value\":1,\"time\":9}\n",
    "{\"process\":3,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n",
    "{\"process\":2,\"type\":\"fail\",\"f\":\"cas\",\"key\":\"9\",\"value\":[1,2]}\n",
    "{\"process\":4,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"9\",\"value\":[1,2,3.5]}\n",
    "{\"process\":5,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"10\",\"value\":{\"a\":[1]}}\n",
    "{\"process\":6,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"-3\",\"value\":18446744073709551615}\n",
    "\n",
    "\n",
    "{\"process\":3,\"type\":\"ok\",\"f\":\"read\",\"key\":\"b\",\"value\":[]}\n",
    "{\"process\":5,\"type\":\"info\",\"f\":\"write\",\"key\":\"10\"}\n",
    "{\"process\":4,\"type\":\"ok\",\"f\":\"write\",\"key\":\"9\",\"value\":[1,2,3.5]}\n",
    "{\"process\":7,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"10\",\"value\":true,\"node\":\"n1\",\"error\":[1]}\n",
);

#[test]
fn streamed_partitions_are_the_checkers_partitions_of_the_whole_history() {
    let history = KeyedHistory::parse_jsonl(MIXED, Path::new("h")).unwrap();
    assert_eq!(streamed(&history), reference(MIXED));
    assert_eq!(history.ops(), 8);
    assert_eq!(history.len(), 15);
    assert_eq!(history.partition_count(), 4);
}

#[test]
fn a_history_without_keys_is_one_partition_even_when_empty() {
    let text = concat!(
        "{\"process\":1,\"type\":\"invoke\",\"f\":\"read\"}\n",
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":3}\n",
        "{\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":3}\n",
        "{\"process\":1,\"type\":\"ok\",\"f\":\"read\",\"value\":3}\n",
    );
    let history = KeyedHistory::parse_jsonl(text, Path::new("h")).unwrap();
    assert_eq!(streamed(&history), reference(text));
    let empty = KeyedHistory::parse_jsonl("", Path::new("h")).unwrap();
    assert_eq!(streamed(&empty), vec![(None, vec![])]);
    assert!(empty.is_empty());
}

#[test]
fn line_of_counts_blank_lines() {
    let history = KeyedHistory::parse_jsonl(MIXED, Path::new("h")).unwrap();
    let lines = crate::import::op_lines(MIXED, None);
    for (index, &line) in lines.iter().enumerate() {
        assert_eq!(history.line_of(index), Some(line), "op {index}");
    }
    assert_eq!(history.line_of(lines.len()), None);
}

fn err(text: &str) -> String {
    KeyedHistory::parse_jsonl(text, Path::new("h.jsonl"))
        .unwrap_err()
        .to_string()
}

#[test]
fn bad_lines_and_pairings_name_file_and_line_as_the_whole_reader_does() {
    let ok = "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n";
    for bad in [
        format!("{ok}\n{{\"process\":0,\"type\":\"okay\",\"f\":\"read\"}}\n"),
        format!("{ok}{{\"process\":-1,\"type\":\"ok\",\"f\":\"read\"}}\n"),
        format!("{ok}{{\"type\":\"ok\",\"f\":\"read\"}}\n"),
        format!("{ok}{{\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"key\":3}}\n"),
        format!("{ok}{{\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"value\":100000000000000000000}}\n"),
        format!("{ok}{{\"process\":0,\"ty\n"),
    ] {
        let whole = parse_jsonl(&bad, Path::new("h.jsonl")).unwrap_err().to_string();
        assert_eq!(err(&bad), whole, "{bad}");
    }
    let e = err(&format!("{ok}{ok}"));
    assert!(
        e.starts_with("h.jsonl:2: op 1: process 0 invokes \"read\" while its op 0"),
        "{e}"
    );
    let e = err("\n{\"process\":0,\"type\":\"ok\",\"f\":\"read\"}\n");
    assert!(
        e.starts_with("h.jsonl:2: op 0: process 0 completes \"read\" but has no"),
        "{e}"
    );
    let e = err(&format!(
        "{ok}{{\"process\":0,\"type\":\"ok\",\"f\":\"write\"}}\n"
    ));
    assert!(
        e.starts_with("h.jsonl:2: op 1: process 0 completes \"write\" but invoked \"read\""),
        "{e}"
    );
}

#[test]
fn the_first_error_in_file_order_wins() {
    let ok = "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n";
    let e = err(&format!(
        "{ok}{ok}{{\"process\":0,\"type\":\"okay\",\"f\":\"read\"}}\n"
    ));
    assert!(e.starts_with("h.jsonl:2: "), "{e}");
}

#[test]
fn a_last_line_cut_short_by_a_crash_is_dropped() {
    let ok = "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n";
    let history = KeyedHistory::parse_jsonl(&format!("{ok}{{\"process\":0,\"ty"), Path::new("h"));
    assert_eq!(history.unwrap().len(), 1);
    assert!(err(&format!("{ok}{{\"process\":0,\"ty\n")).starts_with("h.jsonl:2:"));
    let whole = KeyedHistory::parse_jsonl(ok.trim_end(), Path::new("h")).unwrap();
    assert_eq!(whole.len(), 1);
}

#[test]
fn a_file_read_in_small_blocks_is_the_text_parsed_at_once() {
    let dir = std::env::temp_dir().join(format!("faultline-stream-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("h.jsonl");
    let mut text = String::new();
    for i in 0..200 {
        let (p, k) = (i % 7, i % 13);
        text.push_str(&format!("{{\"process\":{p},\"type\":\"invoke\",\"f\":\"write\",\"key\":\"{k}\",\"value\":{i}}}\n"));
        if i % 5 == 0 {
            text.push('\n');
        }
        let end = if i % 3 == 0 { "info" } else { "ok" };
        text.push_str(&format!("{{\"process\":{p},\"type\":\"{end}\",\"f\":\"write\",\"key\":\"{k}\",\"value\":{i}}}\n"));
    }
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    for block in [64, 1000, 1 << 20] {
        let history = KeyedHistory::read_file_in_blocks(&path, block).unwrap();
        assert_eq!(streamed(&history), reference(&text), "blocks of {block}");
        assert_eq!(history.line_of(399), Some(440));
    }
    std::fs::write(
        &path,
        b"\n{\"process\":1,\"type\":\"invoke\",\"f\":\"r\xffad\"}\n",
    )
    .unwrap();
    let e = KeyedHistory::read_file(&path).unwrap_err().to_string();
    assert!(
        e.ends_with(":2: invalid UTF-8 at column 36: a history is UTF-8 text"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
