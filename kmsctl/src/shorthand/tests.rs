use super::*;

fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn tag(k: &str, v: &str) -> Tag {
    Tag {
        tag_key: k.into(),
        tag_value: v.into(),
    }
}

#[test]
fn context_shorthand_as_in_the_lab() {
    assert_eq!(
        encryption_context("Purpose=Lab,App=kms-demo").unwrap(),
        ctx(&[("Purpose", "Lab"), ("App", "kms-demo")])
    );
}

#[test]
fn context_shorthand_trims_spaces_and_keeps_equals_in_values() {
    assert_eq!(
        encryption_context(" A = 1 , B=x=y==").unwrap(),
        ctx(&[("A", "1"), ("B", "x=y==")])
    );
}

#[test]
fn context_shorthand_empty_value_is_allowed() {
    assert_eq!(encryption_context("A=").unwrap(), ctx(&[("A", "")]));
}

#[test]
fn context_shorthand_quotes_protect_commas_and_braces() {
    let e = encryption_context(r#"A="x, y}",B='it''s'"#).unwrap_err();
    assert!(
        e.0.contains("',' or end of input"),
        "adjacent quoted strings are not one value: {e}"
    );
    assert_eq!(
        encryption_context(r#"A="x, y}",B='p q',C="q\"d\\""#).unwrap(),
        ctx(&[("A", "x, y}"), ("B", "p q"), ("C", "q\"d\\")])
    );
}

#[test]
fn context_json() {
    assert_eq!(
        encryption_context(r#" {"Purpose":"Lab","App":"kms-demo"}"#).unwrap(),
        ctx(&[("Purpose", "Lab"), ("App", "kms-demo")])
    );
    assert_eq!(encryption_context("{}").unwrap(), ctx(&[]));
}

#[test]
fn context_errors_are_clear() {
    let e = encryption_context("Purpose").unwrap_err();
    assert!(e.0.contains("Expected: '='"), "{e}");
    assert!(e.0.contains("end of input"), "{e}");

    let e = encryption_context("A=1,").unwrap_err();
    assert!(e.0.contains("Expected: '='"), "{e}");

    let e = encryption_context("=1").unwrap_err();
    assert!(e.0.contains("a key before '='"), "{e}");

    let e = encryption_context("A=1,A=2").unwrap_err();
    assert!(e.0.contains("Duplicate key 'A'"), "{e}");

    let e = encryption_context("A={B=1}").unwrap_err();
    assert!(e.0.contains("must be a string"), "{e}");

    let e = encryption_context("A='open").unwrap_err();
    assert!(e.0.contains("closing '"), "{e}");

    let e = encryption_context("").unwrap_err();
    assert!(e.0.contains("Expected: '='"), "{e}");

    let e = encryption_context(r#"{"A":1}"#).unwrap_err();
    assert!(
        e.0.starts_with("Invalid JSON for an encryption context"),
        "{e}"
    );

    let e = encryption_context(r#"{"A":"1""#).unwrap_err();
    assert!(e.0.starts_with("Invalid JSON"), "{e}");
}

#[test]
fn shorthand_nested_structures() {
    let v = parse_shorthand("A={B=1,C='x,y'},D=2,E={}").unwrap();
    assert_eq!(
        v,
        vec![
            (
                "A".to_string(),
                Value::Struct(vec![
                    ("B".to_string(), Value::Scalar("1".into())),
                    ("C".to_string(), Value::Scalar("x,y".into())),
                ])
            ),
            ("D".to_string(), Value::Scalar("2".into())),
            ("E".to_string(), Value::Struct(vec![])),
        ]
    );
    assert!(parse_shorthand("A={B=1").unwrap_err().0.contains("'}'"));
    assert!(
        parse_shorthand("A={B=1}x")
            .unwrap_err()
            .0
            .contains("',' or end of input")
    );
}

#[test]
fn tags_shorthand_several_values() {
    let t = tags(&strings(&[
        "TagKey=Owner,TagValue=alice",
        "TagValue=lab, TagKey=Env",
    ]))
    .unwrap();
    assert_eq!(t, vec![tag("Owner", "alice"), tag("Env", "lab")]);
}

#[test]
fn tags_json_list_and_object() {
    let t = tags(&strings(&[
        r#"[{"TagKey":"a","TagValue":"1"},{"TagKey":"b","TagValue":""}]"#,
    ]))
    .unwrap();
    assert_eq!(t, vec![tag("a", "1"), tag("b", "")]);
    let t = tags(&strings(&[
        r#"{"TagKey":"a","TagValue":"1"}"#,
        "TagKey=b,TagValue=2",
    ]))
    .unwrap();
    assert_eq!(t, vec![tag("a", "1"), tag("b", "2")]);
}

#[test]
fn tags_errors() {
    let e = tags(&strings(&["TagKey=Owner"])).unwrap_err();
    assert!(e.0.contains("both TagKey and TagValue"), "{e}");
    let e = tags(&strings(&["Key=Owner,Value=x"])).unwrap_err();
    assert!(e.0.contains("Unknown key 'Key'"), "{e}");
    let e = tags(&strings(&[r#"[{"TagKey":"a"}]"#])).unwrap_err();
    assert!(e.0.contains("both TagKey and TagValue"), "{e}");
    let e = tags(&strings(&["[1]"])).unwrap_err();
    assert!(e.0.starts_with("Invalid JSON for tags"), "{e}");
}

#[test]
fn string_lists() {
    assert_eq!(
        string_list(&strings(&["Decrypt", "Encrypt,GenerateDataKey"])).unwrap(),
        strings(&["Decrypt", "Encrypt", "GenerateDataKey"])
    );
    assert_eq!(
        string_list(&strings(&[r#"["a,b","c"]"#])).unwrap(),
        strings(&["a,b", "c"])
    );
    assert!(
        string_list(&strings(&["a,,b"]))
            .unwrap_err()
            .0
            .contains("Empty item")
    );
    assert!(
        string_list(&strings(&["[1]"]))
            .unwrap_err()
            .0
            .starts_with("Invalid JSON")
    );
}

#[test]
fn constraints_shorthand_and_json() {
    let c = constraints("EncryptionContextSubset={Purpose=Lab,App=kms-demo}").unwrap();
    assert_eq!(
        c.encryption_context_subset,
        Some(ctx(&[("Purpose", "Lab"), ("App", "kms-demo")]))
    );
    assert_eq!(c.encryption_context_equals, None);

    let c = constraints(r#"{"EncryptionContextEquals":{"A":"1"}}"#).unwrap();
    assert_eq!(c.encryption_context_equals, Some(ctx(&[("A", "1")])));
    assert_eq!(c.encryption_context_subset, None);

    let c = constraints("EncryptionContextEquals={}").unwrap();
    assert_eq!(c.encryption_context_equals, Some(ctx(&[])));
}

#[test]
fn constraints_errors() {
    let e = constraints("EncryptionContextSubset=Purpose").unwrap_err();
    assert!(e.0.contains("must be a structure"), "{e}");
    let e = constraints("Subset={A=1}").unwrap_err();
    assert!(e.0.contains("Unknown constraint 'Subset'"), "{e}");
    let e = constraints("{}").unwrap_err();
    assert!(
        e.0.contains("need EncryptionContextSubset or EncryptionContextEquals"),
        "{e}"
    );
    let e = constraints(r#"{"EncryptionContextSubset":{"A":{}}}"#).unwrap_err();
    assert!(e.0.starts_with("Invalid JSON"), "{e}");
}

#[test]
fn sources_and_prefixes() {
    assert_eq!(
        binary_source("fileb:///tmp/x", None, BinaryFormat::Base64).unwrap(),
        BinarySource::RawFile("/tmp/x".into())
    );
    assert_eq!(
        binary_source("file://rel/x.b64", None, BinaryFormat::Base64).unwrap(),
        BinarySource::Base64File("rel/x.b64".into())
    );
    assert_eq!(
        binary_source("aGVsbG8=", None, BinaryFormat::Base64).unwrap(),
        BinarySource::Inline(b"hello".to_vec())
    );
    assert_eq!(
        binary_source("", None, BinaryFormat::Base64).unwrap(),
        BinarySource::Inline(vec![])
    );
    assert_eq!(
        binary_source("hello world!", None, BinaryFormat::RawInBase64Out).unwrap(),
        BinarySource::Inline(b"hello world!".to_vec())
    );
    let e = binary_source("hello world!", None, BinaryFormat::Base64).unwrap_err();
    assert!(e.0.contains("Invalid base64"), "{e}");
    assert!(e.0.contains("fileb://"), "{e}");
    assert!(
        binary_source("fileb://", None, BinaryFormat::Base64)
            .unwrap_err()
            .0
            .contains("needs a path")
    );

    assert_eq!(
        text_source("file://~/p.json", Some("/home/u")).unwrap(),
        TextSource::File("/home/u/p.json".into())
    );
    assert_eq!(
        text_source(r#"{"Version":"2012-10-17"}"#, None).unwrap(),
        TextSource::Inline(r#"{"Version":"2012-10-17"}"#)
    );
}

#[test]
fn base64_ignores_line_breaks() {
    assert_eq!(decode_base64("aGVs\nbG8=\n").unwrap(), b"hello");
    assert!(
        decode_base64("aGVsbG8").is_err(),
        "missing padding is rejected"
    );
}

#[test]
fn home_expansion() {
    assert_eq!(expand_home("~/a", Some("/h")), PathBuf::from("/h/a"));
    assert_eq!(expand_home("~", Some("/h")), PathBuf::from("/h"));
    assert_eq!(expand_home("~/a", None), PathBuf::from("~/a"));
    assert_eq!(expand_home("/a/~/b", Some("/h")), PathBuf::from("/a/~/b"));
}
