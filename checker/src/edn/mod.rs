//! An importer for Jepsen / Knossos / Elle histories written in EDN.
//!
//! Two layers, one module each:
//! - [`reader`]: a small EDN reader ([`parse_edn`]) that works on bytes,
//!   borrows from the input wherever it can, and records the 1-based line
//!   where every form starts, so that errors say `file:line: what is wrong`;
//! - [`import`]: the history importer ([`parse_edn_history`]) that turns op
//!   maps into [`Op`](crate::history::Op)s, streaming one op map at a time.
//!
//! # Accepted history shapes
//!
//! One vector (or list) of op maps, or a stream of op maps; an op map may be
//! a tagged record such as `#jepsen.history.Op{...}`:
//!
//! ```text
//! ; a comment
//! [{:process 0, :type :invoke, :f :cas, :value [1 2], :time 1843211}
//!  {:process 0, :type :ok,     :f :cas, :value [1 2]}
//!  {:process :nemesis, :type :info, :f :partition, :value {:n1 [:n3]}}]
//! ```
//!
//! | key | meaning |
//! |---|---|
//! | `:process` | a non-negative integer, or `:nemesis` (required) |
//! | `:type` | `:invoke`, `:ok`, `:fail` or `:info` (required) |
//! | `:f` | a keyword, symbol or string (required) |
//! | `:value` | anything (absent reads as `nil`) |
//! | `:time` | nanoseconds, a non-negative integer (optional) |
//! | `:index` | ignored: ops are renumbered in file order |
//! | `:error` | anything, kept as JSON (optional) |
//! | `:node` | a string or keyword (optional) |
//!
//! Other keys are ignored.
//!
//! # EDN to JSON
//!
//! Keywords and symbols become strings without the colon (`:x` → `"x"`,
//! `:ns/x` → `"ns/x"`), `nil` → `null`, vectors, lists and sets → arrays,
//! maps → objects (keys that are not strings are rendered as text), integers
//! → numbers (an integer outside the `i64`/`u64` range is an error), tagged
//! literals → their form with the tag dropped (`#inst "..."` → the string).
//!
//! # Independent keys
//!
//! Jepsen's `jepsen.independent` workloads put a `[key value]` tuple in each
//! client op's value. A `#jepsen.independent.Tuple{:key k, :value v}` record
//! always becomes [`Op::key`] + [`Op::value`]. A plain two-element vector
//! `[k v]` is split only when the whole history is independent — see
//! [`Independent`].

pub mod import;
pub mod reader;

pub use import::{parse_edn_history, parse_edn_history_with, Independent};
pub use reader::{parse_edn, Edn, EdnError, Node};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Op, OpType, Process};
    use serde_json::{json, Value};
    use std::path::Path;

    fn parse(text: &str) -> Vec<Op> {
        parse_edn_history(text, Path::new("h.edn")).unwrap()
    }

    fn parse_err(text: &str) -> String {
        parse_edn_history(text, Path::new("h.edn"))
            .unwrap_err()
            .to_string()
    }

    fn json_of(text: &str) -> Value {
        let mut forms = parse_edn(text).unwrap();
        assert_eq!(forms.len(), 1, "{text}");
        forms.pop().unwrap().into_json().unwrap()
    }

    #[test]
    fn scalars_and_keywords_convert_to_json() {
        assert_eq!(json_of("nil"), Value::Null);
        assert_eq!(json_of("true"), json!(true));
        assert_eq!(json_of("false"), json!(false));
        assert_eq!(json_of("-42"), json!(-42));
        assert_eq!(json_of("+7"), json!(7));
        assert_eq!(json_of("12N"), json!(12));
        assert_eq!(json_of("18446744073709551615N"), json!(u64::MAX));
        assert_eq!(json_of("1.5"), json!(1.5));
        assert_eq!(json_of("-2e3"), json!(-2000.0));
        assert_eq!(json_of("2.5M"), json!(2.5));
        assert_eq!(json_of(":x"), json!("x"));
        assert_eq!(json_of(":ns/x"), json!("ns/x"));
        assert_eq!(json_of("foo.bar/baz"), json!("foo.bar/baz"));
        assert_eq!(json_of(r#""a\"b\\c\nd\u0041""#), json!("a\"b\\c\ndA"));
        assert_eq!(json_of(r"\a"), json!("a"));
        assert_eq!(json_of(r"\newline"), json!("\n"));
        assert_eq!(json_of(r"\u00e9"), json!("é"));
        assert_eq!(json_of("#{1 2}"), json!([1, 2]));
        assert_eq!(json_of("(1 :a)"), json!([1, "a"]));
        assert_eq!(json_of("#inst \"2020-01-01\""), json!("2020-01-01"));
        assert_eq!(
            json_of("{:a 1, \"b\" 2, 3 4, [1 2] nil}"),
            json!({"a": 1, "b": 2, "3": 4, "[1 2]": null})
        );
        assert_eq!(json_of("[1 #_ 2 #_#_ 3 4 5]"), json!([1, 5]));
    }

    #[test]
    fn nested_txn_vectors_convert() {
        assert_eq!(
            json_of("[[:read :x nil] [:write :y 2]]"),
            json!([["read", "x", null], ["write", "y", 2]])
        );
        let ops = parse(
            "[{:process 0, :type :invoke, :f :txn, :value [[:read :x nil] [:write :y 2]]}\n\
              {:process 0, :type :ok, :f :txn, :value [[:read :x 1] [:write :y 2]]}]",
        );
        assert_eq!(
            ops[0].value,
            json!([["read", "x", null], ["write", "y", 2]])
        );
        assert_eq!(ops[1].value, json!([["read", "x", 1], ["write", "y", 2]]));
        assert_eq!(ops[0].key, None);
    }

    #[test]
    fn reads_all_op_fields() {
        let ops = parse(
            "[{:type :invoke, :f :write, :value 3, :process 1, :time 99, :index 7, \
               :node \"n1\", :extra {:a 1}}\n\
              {:type :fail, :f :write, :value 3, :process 1, :error [:timeout \"slow\"]}]",
        );
        assert_eq!(ops.len(), 2);
        let a = &ops[0];
        assert_eq!(a.index, 0);
        assert_eq!(a.time, Some(99));
        assert_eq!(a.process, Process::Client(1));
        assert_eq!(a.op_type, OpType::Invoke);
        assert_eq!(a.f, "write");
        assert_eq!(a.value, json!(3));
        assert_eq!(a.node.as_deref(), Some("n1"));
        assert_eq!(a.error, None);
        let b = &ops[1];
        assert_eq!(b.index, 1);
        assert_eq!(b.op_type, OpType::Fail);
        assert_eq!(b.time, None);
        assert_eq!(b.error, Some(json!(["timeout", "slow"])));
    }

    #[test]
    fn comments_and_commas_are_whitespace() {
        let ops = parse(
            "; a history\n\
             [{:process 0, :type :invoke, :f :read, :value nil} ; trailing\n\
              ; between ops\n\
              #_{:process 9, :type :invoke, :f :read}\n\
              {:process 0,,, :type :ok :f :read :value 4}]\n\
             ; after\n",
        );
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[1].value, json!(4));
    }

    #[test]
    fn stream_vector_and_list_give_the_same_ops() {
        let body = "{:process 0, :type :invoke, :f :read, :value nil}\n\
                    {:process 0, :type :ok, :f :read, :value 1}\n";
        let stream = parse(body);
        let vector = parse(&format!("[{body}]"));
        let list = parse(&format!("({body})"));
        assert_eq!(stream.len(), 2);
        assert_eq!(stream, vector);
        assert_eq!(stream, list);
        assert!(parse("").is_empty());
        assert!(parse("; nothing\n[]").is_empty());
    }

    #[test]
    fn records_are_op_maps() {
        let ops = parse(
            "#jepsen.history.Op{:index 0, :time 5, :type :invoke, :process 2, :f :read, :value nil}\n\
             #jepsen.history.Op{:index 1, :time 6, :type :ok, :process 2, :f :read, :value 0}",
        );
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[1].value, json!(0));
        assert_eq!(ops[1].time, Some(6));
    }

    #[test]
    fn nemesis_process() {
        let ops = parse(
            "[{:process :nemesis, :type :info, :f :partition, :value {:n1 [:n3] :n2 #{:n4}}}\n\
              {:process \"nemesis\", :type :info, :f \"start\", :value \"fully connected\"}]",
        );
        assert!(ops.iter().all(Op::is_nemesis));
        assert_eq!(ops[0].f, "partition");
        assert_eq!(ops[0].value, json!({"n1": ["n3"], "n2": ["n4"]}));
        assert_eq!(ops[1].value, json!("fully connected"));
    }

    const INDEPENDENT: &str = "\
        [{:process 0, :type :invoke, :f :write, :value [1 3]}\n\
         {:process 0, :type :ok, :f :write, :value [1 3]}\n\
         {:process :nemesis, :type :info, :f :kill, :value nil}\n\
         {:process 1, :type :invoke, :f :read, :value [:k2 nil]}\n\
         {:process 1, :type :ok, :f :read, :value [:k2 nil]}\n\
         {:process 2, :type :invoke, :f :cas, :value [\"k3\" [0 1]]}]";

    #[test]
    fn independent_vectors_split_when_every_client_op_is_a_pair_and_there_is_a_read() {
        let ops = parse(INDEPENDENT);
        assert_eq!(ops[0].key.as_deref(), Some("1"));
        assert_eq!(ops[0].value, json!(3));
        assert_eq!(ops[2].key, None);
        assert_eq!(ops[2].value, Value::Null);
        assert_eq!(ops[3].key.as_deref(), Some("k2"));
        assert_eq!(ops[3].value, Value::Null);
        assert_eq!(ops[5].key.as_deref(), Some("k3"));
        assert_eq!(ops[5].value, json!([0, 1]));

        let unsplit = parse_edn_history_with(INDEPENDENT, Path::new("h"), Independent::No).unwrap();
        assert!(unsplit.iter().all(|op| op.key.is_none()));
        assert_eq!(unsplit[0].value, json!([1, 3]));
    }

    #[test]
    fn an_ops_own_key_names_its_key_and_keeps_its_value_whole() {
        // Porcupine's kv histories: op maps with `:key`, values strings.
        let ops = parse(
            "{:process 0, :type :invoke, :f :append, :key \"4\", :value \"x 0 1 y\"}\n\
             {:process 0, :type :ok, :f :append, :key \"4\", :value \"x 0 1 y\"}\n\
             {:process 1, :type :invoke, :f :read, :key :k, :value [1 2]}\n\
             {:process 1, :type :ok, :f :read, :key 7, :value nil}",
        );
        assert_eq!(ops[0].key.as_deref(), Some("4"));
        assert_eq!(ops[0].value, json!("x 0 1 y"));
        assert_eq!(ops[2].key.as_deref(), Some("k"));
        assert_eq!(
            ops[2].value,
            json!([1, 2]),
            "not split as a [key value] pair"
        );
        assert_eq!(ops[3].key.as_deref(), Some("7"));
        let bad = parse_edn_history(
            "{:process 0, :type :invoke, :f :get, :key [1], :value nil}",
            Path::new("h"),
        );
        assert!(bad.unwrap_err().to_string().contains(":key must be"));
    }

    #[test]
    fn cas_register_values_are_not_split() {
        // Reads carry nil, so the [from to] cas values stay whole.
        let text = "[{:process 0, :type :invoke, :f :cas, :value [1 2]}\n\
                     {:process 0, :type :ok, :f :cas, :value [1 2]}\n\
                     {:process 1, :type :invoke, :f :read, :value nil}\n\
                     {:process 1, :type :ok, :f :read, :value 2}]";
        let ops = parse(text);
        assert!(ops.iter().all(|op| op.key.is_none()));
        assert_eq!(ops[0].value, json!([1, 2]));

        // Only cas ops (no read at all): still not split.
        let only_cas = "[{:process 0, :type :invoke, :f :cas, :value [1 2]}\n\
                         {:process 0, :type :ok, :f :cas, :value [1 2]}]";
        assert!(parse(only_cas).iter().all(|op| op.key.is_none()));
        // ...unless the caller says it is independent.
        let forced = parse_edn_history_with(only_cas, Path::new("h"), Independent::Yes).unwrap();
        assert_eq!(forced[0].key.as_deref(), Some("1"));
        assert_eq!(forced[0].value, json!(2));
    }

    #[test]
    fn forced_independence_rejects_a_value_that_is_not_a_pair() {
        let text = "[{:process 0, :type :invoke, :f :write, :value [1 3]}\n\
                     {:process 1, :type :invoke, :f :read, :value nil}]";
        let err = parse_edn_history_with(text, Path::new("h.edn"), Independent::Yes)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("h.edn:2: "), "{err}");
        assert!(err.contains("[key value]"), "{err}");
    }

    #[test]
    fn tuples_always_split() {
        let text = "[{:process 0, :type :invoke, :f :write, \
                        :value #jepsen.independent.Tuple{:key 5, :value 1}}\n\
                     {:process 0, :type :ok, :f :cas, \
                        :value #jepsen.independent.Tuple{:key :a, :value [1 2]}}]";
        for mode in [Independent::Auto, Independent::Yes, Independent::No] {
            let ops = parse_edn_history_with(text, Path::new("h"), mode).unwrap();
            assert_eq!(ops[0].key.as_deref(), Some("5"));
            assert_eq!(ops[0].value, json!(1));
            assert_eq!(ops[1].key.as_deref(), Some("a"));
            assert_eq!(ops[1].value, json!([1, 2]));
        }
    }

    #[test]
    fn errors_name_file_line_and_problem() {
        let e = parse_err("[{:process 0, :type :invoke, :f :read}\n{:process 0, :type :ok,\n :f :read, :value \"abc]\n\n");
        assert!(e.starts_with("h.edn:3: unterminated string"), "{e}");

        let e = parse_err("[{:process 0, :type :invoke, :f :read}\n]]");
        assert_eq!(e, "h.edn:2: unexpected form after the history vector that ends before it (a history is one vector of op maps, or a stream of op maps)");

        let e = parse_err("{:process 0, :type :invoke, :f :read}\n]");
        assert_eq!(e, "h.edn:2: unexpected `]`");

        let e = parse_err("[{:process 0, :type :invoke, :f :read\n]");
        assert!(
            e.starts_with("h.edn:2: expected `}` to close the map opened at line 1, found `]`"),
            "{e}"
        );

        let e = parse_err("\n[{:process 0, :type :invoke, :f :read}\n");
        assert!(e.starts_with("h.edn:2: unterminated history vector"), "{e}");

        let e = parse_err("[\n{:process 0, :type :invoke :f}]");
        assert!(
            e.starts_with("h.edn:2: map has an odd number of forms"),
            "{e}"
        );

        let e = parse_err("[{:process 0, :type :invoke, :f :read}\n {:type :ok, :f :read}]");
        assert_eq!(e, "h.edn:2: op map has no :process");

        let e = parse_err("[{:process -1, :type :invoke, :f :read}]");
        assert_eq!(
            e,
            "h.edn:1: :process must be a non-negative integer or :nemesis, got -1"
        );

        let e = parse_err("\n\n{:process 1, :type :okay, :f :read}");
        assert_eq!(
            e,
            "h.edn:3: :type must be :invoke, :ok, :fail or :info, got :okay"
        );

        let e = parse_err("{:process 1, :type :ok, :f 3}");
        assert_eq!(e, "h.edn:1: :f must be a keyword or a string, got 3");

        let e = parse_err("{:process 1, :type :ok}");
        assert_eq!(e, "h.edn:1: op map has no :f");

        let e = parse_err("[{:process 1, :type :ok, :f :read}\n [1 2]]");
        assert_eq!(e, "h.edn:2: expected an op map, found a vector");

        let e =
            parse_err("{:process 1, :type :ok, :f :read,\n :value 123456789012345678901234567890}");
        assert_eq!(
            e,
            "h.edn:2: integer 123456789012345678901234567890 is too large (outside the 64-bit range)"
        );

        let e = parse_err("{:process 1, :type :ok, :f :read, :value 12abc}");
        assert_eq!(e, "h.edn:1: invalid number `12abc`");

        let e = parse_err("{:process 1, :type :ok, :f :read, :value \"a\\qb\"}");
        assert_eq!(e, "h.edn:1: invalid escape `\\q` in string");
    }

    #[test]
    fn edn_reader_rejects_bad_forms() {
        assert_eq!(parse_edn("[1 2").unwrap_err().line, 1);
        assert_eq!(
            parse_edn("\n\n)").unwrap_err().to_string(),
            "line 3: unexpected `)`"
        );
        assert!(parse_edn("#_").is_err());
        assert!(parse_edn("#foo").is_err());
        assert!(parse_edn(&"[".repeat(10_000)).is_err());
    }

    #[test]
    fn printing_reads_back() {
        let text = r#"{:a [1 -2 3.5 nil true "q\"s" \x #{:k} (sym) 9999999999999999999999N], "k" #t {:x 1}}"#;
        let forms = parse_edn(text).unwrap();
        let printed = forms[0].to_string();
        let again = parse_edn(&printed).unwrap();
        // Lines are all 1 in both.
        assert_eq!(forms, again);
    }

    /// Every history in `../shared/corpus/knossos` parses, with one op per
    /// `:process` key in the file and plausible invoke/completion pairing.
    #[test]
    #[ignore = "needs ../shared/corpus; run with --ignored"]
    fn parses_the_whole_knossos_corpus() {
        let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus"));
        let knossos = root.join("knossos");
        assert!(
            knossos.is_dir(),
            "the shared corpus is missing: expected a directory at {} \
             (the corpus lives outside the repository, in ../shared/corpus)",
            knossos.display()
        );
        let mut files = Vec::new();
        let mut dirs = vec![knossos];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let p = entry.unwrap().path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|e| e == "edn") {
                    files.push(p);
                }
            }
        }
        files.sort();
        assert!(files.len() >= 100, "only {} .edn files found", files.len());
        let mut total = 0;
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap();
            let ops = parse_edn_history(&text, file).unwrap_or_else(|e| panic!("{e}"));
            let expected = text.matches(":process").count();
            assert_eq!(ops.len(), expected, "{}: op count", file.display());
            assert!(!ops.is_empty(), "{}: no ops", file.display());
            let mut outstanding = std::collections::HashSet::new();
            for op in ops.iter().filter(|op| !op.is_nemesis()) {
                assert!(op.key.is_none(), "{}: unexpected key", file.display());
                if op.op_type == OpType::Invoke {
                    assert!(
                        outstanding.insert(op.process),
                        "{}: op {} invokes on a busy process",
                        file.display(),
                        op.index
                    );
                } else {
                    assert!(
                        outstanding.remove(&op.process),
                        "{}: op {} completes nothing",
                        file.display(),
                        op.index
                    );
                }
            }
            total += ops.len();
        }
        assert!(total > 40_000, "only {total} ops in the corpus");
    }
}
